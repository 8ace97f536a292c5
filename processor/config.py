"""The processor's config (`ProcessorConfig`) from the environment only: exactly what the ECS task definition sets."""
from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass

from processor.workloads import NAMES


class ConfigError(Exception):
    """A misconfiguration; the message is the one line the operator sees."""


def _flag(value: str, name: str) -> bool:
    lowered = value.strip().lower()
    if lowered in {"1", "true", "yes", "on"}:
        return True
    if lowered in {"0", "false", "no", "off"}:
        return False
    raise ConfigError(f"{name} must be true or false, not {value!r}")


def _number(env: Mapping[str, str], name: str, default: float, low: float, high: float, unit: str) -> float:
    text = env.get(name, "").strip()
    if not text:
        return default
    try:
        value = float(text)
    except ValueError:
        raise ConfigError(f"{name} must be a number of {unit}, not {text!r}") from None
    if not low <= value <= high:
        raise ConfigError(f"{name} must be between {low:g} and {high:g} {unit}, not {text}")
    return value


def _port(value: str, name: str) -> int:
    if not value.isdigit() or not 0 < int(value) < 65536:
        raise ConfigError(f"{name} must be a TCP port, not {value!r}")
    return int(value)


@dataclass(frozen=True)
class ProcessorConfig:
    workload: str
    stream_name: str
    region: str
    db_host: str
    db_port: int
    db_name: str
    db_secret_arn: str | None
    db_user: str | None
    db_password: str | None
    db_sslmode: str
    db_sslrootcert: str | None
    redis_host: str
    redis_port: int
    redis_tls: bool
    redis_auth_secret_arn: str | None
    redis_password: str | None
    consumer_group: str
    metrics_namespace: str
    batch_limit: int = 1000
    lease_duration_s: float = 20.0  # a dead worker's shards wait this long before another takes them
    heartbeat_s: float = 2.0  # renew leases, rebalance, report: at most lease_duration_s / 3
    read_interval_at_tip_s: float = 1.0  # one GetRecords a second per shard at the tip (processor/pacing.py)
    max_reads_per_shard_per_s: float = 3.0  # behind: back to back, but no faster (Kinesis allows 5, shared)
    cache_ttl_s: int = 3600
    db_iam_auth: bool = False  # sign in as db_user with an IAM token (the service's application role)
    app_db_user: str | None = None  # `migrate` only: the application role it creates and grants
    schema_wait_s: float = 600.0  # how long a new task waits for the migration before it gives up
    incident_topic_arn: str | None = None  # factory: where incidents are published (none: they wait in the outbox)
    incident_window_s: float = 300.0  # what fires on one line within this much event time is one incident
    incident_quiet_s: float = 900.0  # an open incident no batch has touched for this long (wall time) closes
    # The CA Redis' certificate is verified against (name included); None: the system's store,
    # which holds ElastiCache's issuer (Amazon Trust Services). Locally: the local CA.
    redis_ssl_ca_certs: str | None = None

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None) -> ProcessorConfig:
        env = os.environ if env is None else env

        def required(name: str) -> str:
            value = env.get(name, "").strip()
            if not value:
                raise ConfigError(f"{name} is not set")
            return value

        workload = required("WORKLOAD")
        if workload not in NAMES:
            raise ConfigError(f"WORKLOAD must be one of {', '.join(NAMES)}, not {workload!r}")
        db_secret_arn = env.get("DB_SECRET_ARN") or None
        db_user, db_password = env.get("DB_USER") or None, env.get("DB_PASSWORD") or None
        iam_auth = _flag(env.get("DB_IAM_AUTH", "false"), "DB_IAM_AUTH")
        if iam_auth and not db_user:
            raise ConfigError("DB_IAM_AUTH needs DB_USER: the database role to sign in as")
        if not iam_auth and not db_secret_arn and not (db_user and db_password):
            raise ConfigError("set DB_SECRET_ARN, or DB_USER with DB_PASSWORD or DB_IAM_AUTH=true")
        redis_secret, redis_password = env.get("REDIS_AUTH_SECRET_ARN") or None, env.get("REDIS_PASSWORD") or None
        sslmode = env.get("DB_SSLMODE", "verify-full")
        if sslmode not in {"disable", "allow", "prefer", "require", "verify-ca", "verify-full"}:
            raise ConfigError(f"DB_SSLMODE {sslmode!r} is not a libpq sslmode")
        region = env.get("AWS_REGION") or env.get("AWS_DEFAULT_REGION") or ""
        if not region:
            raise ConfigError("AWS_REGION is not set")
        batch_limit = env.get("BATCH_LIMIT", "1000")
        if not batch_limit.isdigit() or not 1 <= int(batch_limit) <= 10_000:
            raise ConfigError("BATCH_LIMIT must be an integer between 1 and 10000 (the GetRecords limit)")
        lease_s = _number(env, "LEASE_DURATION_S", 20.0, 1, 600, "seconds")
        heartbeat_s = _number(env, "HEARTBEAT_S", min(2.0, lease_s / 10), 0.05, lease_s / 3, "seconds")
        max_reads = _number(env, "MAX_READS_PER_SHARD_PER_S", 3.0, 0.1, 5, "calls a second")
        tip_s = _number(env, "READ_INTERVAL_AT_TIP_S", max(1.0, 1 / max_reads), 1 / max_reads, 60, "seconds")
        return cls(
            workload=workload,
            lease_duration_s=lease_s,
            heartbeat_s=heartbeat_s,
            read_interval_at_tip_s=tip_s,
            max_reads_per_shard_per_s=max_reads,
            stream_name=required("STREAM_NAME"),
            region=region,
            db_host=required("DB_HOST"),
            db_port=_port(env.get("DB_PORT", "5432"), "DB_PORT"),
            db_name=required("DB_NAME"),
            db_secret_arn=db_secret_arn,
            db_user=db_user,
            db_password=db_password,
            db_sslmode=sslmode,
            db_sslrootcert=env.get("DB_SSLROOTCERT") or default_ca_bundle(),
            redis_host=required("REDIS_HOST"),
            redis_port=_port(env.get("REDIS_PORT", "6379"), "REDIS_PORT"),
            redis_tls=_flag(env.get("REDIS_TLS", "true"), "REDIS_TLS"),
            redis_auth_secret_arn=redis_secret,
            redis_password=redis_password,
            consumer_group=env.get("CONSUMER_GROUP") or f"{workload}-processor",
            metrics_namespace=env.get("METRICS_NAMESPACE") or f"Pipeline/{workload}",
            batch_limit=int(batch_limit),
            db_iam_auth=iam_auth,
            app_db_user=env.get("APP_DB_USER") or None,
            schema_wait_s=_number(env, "SCHEMA_WAIT_S", 600.0, 0, 86_400, "seconds"),
            redis_ssl_ca_certs=env.get("REDIS_SSL_CA_CERTS") or None,
            incident_topic_arn=_topic_arn(env.get("INCIDENT_TOPIC_ARN", "")),
            incident_window_s=_number(env, "INCIDENT_WINDOW_S", 300.0, 1, 86_400, "seconds"),
            incident_quiet_s=_number(env, "INCIDENT_QUIET_S", 900.0, 60, 7 * 86_400, "seconds"),
        )


def _topic_arn(text: str) -> str | None:
    text = text.strip()
    if not text:
        return None
    parts = text.split(":")
    if len(parts) != 6 or parts[0] != "arn" or parts[2] != "sns" or not parts[5]:
        raise ConfigError(f"INCIDENT_TOPIC_ARN must be an SNS topic ARN (arn:aws:sns:REGION:ACCOUNT:NAME), not {text!r}")
    return text


def default_ca_bundle() -> str | None:
    """The RDS CA bundle shipped in the image (see Dockerfile), if present."""
    path = os.path.join(os.path.dirname(__file__), "certs", "rds-global-bundle.pem")
    return path if os.path.exists(path) else None
