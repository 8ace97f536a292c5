"""PostgreSQL and Redis connections, with credentials from Secrets Manager or the environment."""
from __future__ import annotations

import json
import logging
import os

import psycopg2
import redis
import redis.retry

from processor.config import ConfigError, ProcessorConfig
from processor.redis_rest import REDIS_RETRIES, REDIS_RETRY_BACKOFF

logger = logging.getLogger(__name__)


def _secret(arn: str, region: str) -> str:
    import boto3  # imported here: only needed when a secret ARN is configured

    client = boto3.client("secretsmanager", region_name=region)
    return client.get_secret_value(SecretId=arn)["SecretString"]


def db_credentials(settings: ProcessorConfig) -> tuple[str, str]:
    """Fresh on every (re)connect: an IAM token lives 15 minutes, and the RDS-managed
    secret rotates every 30 days."""
    if settings.db_iam_auth:
        import boto3

        token = boto3.client("rds", region_name=settings.region).generate_db_auth_token(
            DBHostname=settings.db_host, Port=settings.db_port, DBUsername=settings.db_user, Region=settings.region)
        return settings.db_user or "", token
    if settings.db_secret_arn:
        secret = json.loads(_secret(settings.db_secret_arn, settings.region))
        return secret["username"], secret["password"]
    return settings.db_user or "", settings.db_password or ""


def catalog_reader_password(settings: ProcessorConfig) -> str:
    """The catalog reader's password, from the secret an operator created (the whole secret string)."""
    if not settings.catalog_reader_secret_arn:
        raise ConfigError("CATALOG_READER_SECRET_ARN is not set")
    password = _secret(settings.catalog_reader_secret_arn, settings.region).strip()
    if not password:
        raise ConfigError(f"the catalog reader's secret {settings.catalog_reader_secret_arn} is empty")
    return password


def connect_postgres(settings: ProcessorConfig) -> psycopg2.extensions.connection:
    user, password = db_credentials(settings)
    kwargs = {}
    if settings.db_sslmode in {"verify-ca", "verify-full"} and settings.db_sslrootcert:
        kwargs["sslrootcert"] = settings.db_sslrootcert
    conn = psycopg2.connect(
        host=settings.db_host, port=settings.db_port, dbname=settings.db_name, user=user, password=password,
        sslmode=settings.db_sslmode, connect_timeout=5, application_name=f"{settings.workload}-processor",
        keepalives=1, keepalives_idle=10, keepalives_interval=5, keepalives_count=3, **kwargs,
    )
    conn.autocommit = False
    return conn


def is_auth_failure(error: BaseException) -> bool:
    text = str(error)
    return getattr(error, "pgcode", None) == "28P01" or "password authentication failed" in text or (
        "PAM authentication failed" in text)  # an expired or refused IAM token


def redis_password(settings: ProcessorConfig) -> str | None:
    if settings.redis_password:
        return settings.redis_password
    if settings.redis_auth_secret_arn:
        return _secret(settings.redis_auth_secret_arn, settings.region)
    return None


def redis_tls_options(ca_file: str | None) -> dict[str, object]:
    """redis-py options for TLS with the certificate and its name verified against `ca_file` (None: the
    system's store). The processor's, and the local deployment's clients of its local Redis."""
    return {"ssl": True, "ssl_cert_reqs": "required", "ssl_check_hostname": True, "ssl_ca_certs": ca_file}


def connect_redis(settings: ProcessorConfig) -> redis.Redis:
    tls = redis_tls_options(settings.redis_ssl_ca_certs) if settings.redis_tls else {}
    return redis.Redis(
        host=settings.redis_host, port=settings.redis_port, password=redis_password(settings),
        socket_timeout=2, socket_connect_timeout=2, health_check_interval=15, **tls,
        retry=redis.retry.Retry(REDIS_RETRY_BACKOFF, REDIS_RETRIES),  # a silent Redis: two timeouts, not eleven
    )


def ensure_reachable(settings: ProcessorConfig) -> psycopg2.extensions.connection:
    """Connect once at start; a failure here is a misconfiguration worth one clear line."""
    try:
        return connect_postgres(settings)
    except psycopg2.OperationalError as error:
        raise ConfigError(
            f"cannot reach PostgreSQL at {settings.db_host}:{settings.db_port}: {first_line(error)}"
        ) from error
    except (KeyError, ValueError) as error:
        raise ConfigError(f"database secret is not JSON with username and password: {error}") from error


def first_line(error: BaseException) -> str:
    """The first non-empty line of an error, or its class name: one line for a log or stderr."""
    lines = str(error).strip().splitlines()
    return lines[0] if lines else error.__class__.__name__


def local_hostname() -> str:
    return os.environ.get("HOSTNAME") or os.uname().nodename
