"""Settings from the environment only: exactly what the ECS task definition sets."""
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


def _port(value: str, name: str) -> int:
    if not value.isdigit() or not 0 < int(value) < 65536:
        raise ConfigError(f"{name} must be a TCP port, not {value!r}")
    return int(value)


@dataclass(frozen=True)
class Settings:
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
    lease_duration_s: float = 20.0
    poll_interval_s: float = 0.2
    cache_ttl_s: int = 3600

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None) -> Settings:
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
        if not db_secret_arn and not (db_user and db_password):
            raise ConfigError("set DB_SECRET_ARN, or both DB_USER and DB_PASSWORD")
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
        lease = env.get("LEASE_DURATION_S", "20")
        try:
            lease_s = float(lease)
        except ValueError:
            raise ConfigError(f"LEASE_DURATION_S must be a number of seconds, not {lease!r}") from None
        if not 1 <= lease_s <= 600:
            raise ConfigError("LEASE_DURATION_S must be between 1 and 600 seconds")
        return cls(
            workload=workload,
            lease_duration_s=lease_s,
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
        )


def default_ca_bundle() -> str | None:
    """The RDS CA bundle shipped in the image (see Dockerfile), if present."""
    path = os.path.join(os.path.dirname(__file__), "certs", "rds-global-bundle.pem")
    return path if os.path.exists(path) else None
