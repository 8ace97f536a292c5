"""`python -m processor catalog-api`: the catalog read API (processor/catalog_api.py) served by uvicorn over
TLS, configured from the environment only, exactly what its ECS task definition sets
(pipeline_lib/catalog_read_api.py):

| variable | what |
|---|---|
| `DB_HOST`, `DB_PORT`, `DB_NAME` | the catalog's PostgreSQL |
| `DB_SSLMODE`, `DB_SSLROOTCERT` | verified TLS (default `verify-full` against the image's RDS bundle) |
| `DB_USER`, `DB_PASSWORD` | the SELECT-only reader role and its password (an ECS secret) |
| `REDIS_HOST`, `REDIS_PORT`, `REDIS_TLS`, `REDIS_SSL_CA_CERTS` | the cache, TLS verified (system store by default) |
| `REDIS_PASSWORD` | the Redis AUTH token (an ECS secret) |
| `CATALOG_API_TOKENS` | the callers' bearer tokens, comma-separated (an ECS secret) |
| `CATALOG_API_TLS` | PEM: the serving certificate's private key and chain (an ECS secret; the ALB does not verify it) |
| `CATALOG_API_HOST`, `CATALOG_API_PORT` | where to listen (default 0.0.0.0:8443, the task's ENI) |
| `CATALOG_API_DB_POOL` | PostgreSQL connections per task (default 4) |

A missing or malformed setting stops the start with one line naming it (exit 2).
"""
from __future__ import annotations

import logging
import os
import tempfile
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from processor.config import ConfigError, _flag, _port, default_ca_bundle

if TYPE_CHECKING:
    from processor.catalog_api import Catalog

logger = logging.getLogger(__name__)

DEFAULT_PORT = 8443
DEFAULT_POOL = 4
# Above the ALB's idle timeout (60 s): the balancer, not the task, closes an idle connection,
# so it never sends a request down a connection the task has just closed.
KEEP_ALIVE_S = 65
# On SIGTERM: finish the requests in hand, then close kept-alive connections after this long at the most,
# inside ECS' stop timeout (30 s, pipeline_lib/processor_service.py) and the target group's deregistration delay.
GRACEFUL_SHUTDOWN_S = 20
SSLMODES = {"disable", "allow", "prefer", "require", "verify-ca", "verify-full"}


@dataclass(frozen=True)
class CatalogApiConfig:
    db_host: str
    db_port: int
    db_name: str
    db_user: str
    db_password: str = field(repr=False)
    db_sslmode: str
    db_sslrootcert: str | None
    redis_host: str
    redis_port: int
    redis_tls: bool
    redis_password: str | None = field(repr=False)
    redis_ssl_ca_certs: str | None
    tokens: tuple[str, ...] = field(repr=False)
    tls_pem: str = field(repr=False)
    host: str = "0.0.0.0"  # the task's own ENI; the security group admits the ALB only
    port: int = DEFAULT_PORT
    pool_size: int = DEFAULT_POOL

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None) -> CatalogApiConfig:
        env = os.environ if env is None else env

        def required(name: str, why: str = "") -> str:
            value = env.get(name, "").strip()
            if not value:
                raise ConfigError(f"{name} is not set{why}")
            return value

        sslmode = env.get("DB_SSLMODE", "verify-full")
        if sslmode not in SSLMODES:
            raise ConfigError(f"DB_SSLMODE {sslmode!r} is not a libpq sslmode")
        tokens = tuple(t.strip() for t in required(
            "CATALOG_API_TOKENS", " (the callers' bearer tokens, comma-separated)").split(",") if t.strip())
        if not tokens:
            raise ConfigError("CATALOG_API_TOKENS holds no token")
        tls_pem = required("CATALOG_API_TLS", " (PEM: the serving certificate's key and chain)")
        if ("PRIVATE KEY-----" not in tls_pem or "BEGIN CERTIFICATE-----" not in tls_pem):
            raise ConfigError("CATALOG_API_TLS must be PEM holding the private key and the certificate")
        pool = env.get("CATALOG_API_DB_POOL", str(DEFAULT_POOL))
        if not pool.isdigit() or not 1 <= int(pool) <= 64:
            raise ConfigError(f"CATALOG_API_DB_POOL must be 1 to 64 connections, not {pool!r}")
        return cls(
            db_host=required("DB_HOST"),
            db_port=_port(env.get("DB_PORT", "5432"), "DB_PORT"),
            db_name=required("DB_NAME"),
            db_user=required("DB_USER", " (the catalog reader role)"),
            db_password=required("DB_PASSWORD", " (the catalog reader's password, from its secret)"),
            db_sslmode=sslmode,
            db_sslrootcert=env.get("DB_SSLROOTCERT") or default_ca_bundle(),
            redis_host=required("REDIS_HOST"),
            redis_port=_port(env.get("REDIS_PORT", "6379"), "REDIS_PORT"),
            redis_tls=_flag(env.get("REDIS_TLS", "true"), "REDIS_TLS"),
            redis_password=env.get("REDIS_PASSWORD") or None,
            redis_ssl_ca_certs=env.get("REDIS_SSL_CA_CERTS") or None,
            tokens=tokens,
            tls_pem=tls_pem,
            host=env.get("CATALOG_API_HOST", "").strip() or "0.0.0.0",
            port=_port(env.get("CATALOG_API_PORT", str(DEFAULT_PORT)), "CATALOG_API_PORT"),
            pool_size=int(pool),
        )


def build_catalog(settings: CatalogApiConfig) -> Catalog:
    """The catalog over a pool of verified-TLS PostgreSQL connections and two verified-TLS Redis clients (hits on
    the event loop, fills in worker threads)."""
    import psycopg2

    from processor.cache import CatalogCache
    from processor.catalog_api import Catalog, ConnectionPool, redis_clients
    from processor.connections import redis_tls_options

    def connect() -> psycopg2.extensions.connection:
        extra = ({"sslrootcert": settings.db_sslrootcert}
                 if settings.db_sslmode in {"verify-ca", "verify-full"} and settings.db_sslrootcert else {})
        conn = psycopg2.connect(host=settings.db_host, port=settings.db_port, dbname=settings.db_name,
                                user=settings.db_user, password=settings.db_password, sslmode=settings.db_sslmode,
                                connect_timeout=5, application_name="catalog-api", keepalives=1,
                                keepalives_idle=10, keepalives_interval=5, keepalives_count=3, **extra)
        conn.set_session(readonly=True)
        return conn

    tls = redis_tls_options(settings.redis_ssl_ca_certs) if settings.redis_tls else {}
    where = {"host": settings.redis_host, "port": settings.redis_port, "password": settings.redis_password,
             "socket_timeout": 2, "socket_connect_timeout": 2, "health_check_interval": 15, **tls}
    fills, hits = redis_clients(**where)
    return Catalog(ConnectionPool(connect, size=settings.pool_size), CatalogCache(fills), hits)


def serve(settings: CatalogApiConfig) -> None:
    """Run uvicorn until SIGTERM (ECS stops a task with it; uvicorn finishes the requests in hand)."""
    import uvicorn

    from processor.catalog_api import create_app, settle_heap

    catalog = build_catalog(settings)
    # uvicorn loads a certificate from a file: written owner-only (mkstemp) to the task's /tmp
    # volume, loaded, then removed, so the key is on disk for no longer than the start.
    handle, pem_path = tempfile.mkstemp(prefix="catalog-api-", suffix=".pem")
    with os.fdopen(handle, "w") as pem:
        pem.write(settings.tls_pem + "\n")
    config = uvicorn.Config(create_app(catalog, settings.tokens), host=settings.host, port=settings.port,
                            ssl_certfile=pem_path, access_log=False, timeout_keep_alive=KEEP_ALIVE_S,
                            timeout_graceful_shutdown=GRACEFUL_SHUTDOWN_S, log_config=None)
    try:
        config.load()
    finally:
        os.unlink(pem_path)
    settle_heap()
    logger.info("catalog API serving", extra={"port": settings.port})
    try:
        uvicorn.Server(config).run()
    finally:
        catalog.pool.close()
