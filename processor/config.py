"""The processor's config (`ProcessorConfig`) from the environment only: exactly what the ECS task definition sets."""
from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass

from processor.task_settings import (
    BATCH_LIMIT,
    HEARTBEAT_S,
    INCIDENT_QUIET_S,
    INCIDENT_WINDOW_S,
    LEASE_DURATION_S,
    MAX_READS_PER_SHARD_PER_S,
    READ_INTERVAL_AT_TIP_S,
    SCHEMA_WAIT_S,
    SettingError,
    heartbeat_default,
    heartbeat_high,
    read_interval_low,
)
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
    # The tuning the stack sets, and the processor's own: each declared in processor/task_settings.py.
    batch_limit: int = int(BATCH_LIMIT.default)
    lease_duration_s: float = LEASE_DURATION_S.default
    heartbeat_s: float = HEARTBEAT_S.default
    read_interval_at_tip_s: float = READ_INTERVAL_AT_TIP_S.default
    max_reads_per_shard_per_s: float = MAX_READS_PER_SHARD_PER_S.default
    cache_ttl_s: int = 3600
    db_iam_auth: bool = False  # sign in as db_user with an IAM token (the service's application role)
    app_db_user: str | None = None  # `migrate` only: the application role it creates and grants
    # `migrate` only (retail): the catalog read API's SELECT-only role, and the secret with its password.
    catalog_reader_user: str | None = None
    catalog_reader_secret_arn: str | None = None
    schema_wait_s: float = SCHEMA_WAIT_S.default
    incident_topic_arn: str | None = None  # factory: where incidents are published (none: they wait in the outbox)
    incident_window_s: float = INCIDENT_WINDOW_S.default
    incident_quiet_s: float = INCIDENT_QUIET_S.default
    # The CA Redis' certificate is verified against (name included); None: the system's store,
    # which holds ElastiCache's issuer (Amazon Trust Services). Locally: the local CA.
    redis_ssl_ca_certs: str | None = None

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None) -> ProcessorConfig:
        try:
            return cls._from_env(os.environ if env is None else env)
        except SettingError as error:
            raise ConfigError(str(error)) from None

    @classmethod
    def _from_env(cls, env: Mapping[str, str]) -> ProcessorConfig:

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
        lease_s = LEASE_DURATION_S.read(env)
        heartbeat_s = HEARTBEAT_S.read(env, default=heartbeat_default(lease_s), high=heartbeat_high(lease_s))
        max_reads = MAX_READS_PER_SHARD_PER_S.read(env)
        tip_low = read_interval_low(max_reads)
        tip_s = READ_INTERVAL_AT_TIP_S.read(env, default=max(READ_INTERVAL_AT_TIP_S.default, tip_low), low=tip_low)
        reader_user = env.get("CATALOG_READER_USER", "").strip() or None
        reader_secret = env.get("CATALOG_READER_SECRET_ARN", "").strip() or None
        if bool(reader_user) != bool(reader_secret):
            raise ConfigError("CATALOG_READER_USER and CATALOG_READER_SECRET_ARN go together: the catalog reader "
                              "role and the secret holding its password")
        return cls(
            catalog_reader_user=reader_user,
            catalog_reader_secret_arn=reader_secret,
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
            batch_limit=int(BATCH_LIMIT.read(env)),
            db_iam_auth=iam_auth,
            app_db_user=env.get("APP_DB_USER") or None,
            schema_wait_s=SCHEMA_WAIT_S.read(env),
            redis_ssl_ca_certs=env.get("REDIS_SSL_CA_CERTS") or None,
            incident_topic_arn=_topic_arn(env.get("INCIDENT_TOPIC_ARN", "")),
            incident_window_s=INCIDENT_WINDOW_S.read(env),
            incident_quiet_s=INCIDENT_QUIET_S.read(env),
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
