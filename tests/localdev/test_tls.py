"""The local servers speak TLS only, as RDS (rds.force_ssl=1) and ElastiCache (transit encryption
required) do, and the processor's own connections verify them: a plaintext connection is refused
and a certificate from another CA fails with a line that says so."""
from __future__ import annotations

from pathlib import Path

import psycopg2
import pytest
import redis

from localdev.servers import PostgresServer, RedisServer
from localdev.tls import TlsFiles, make_ca, make_named_certificate, postgres_tls, redis_tls
from processor.config import ConfigError, ProcessorConfig
from processor.connections import connect_redis, ensure_reachable


@pytest.fixture(scope="module")
def other_ca(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return make_ca(tmp_path_factory.mktemp("other-ca"), "someone else's CA")[0]


def settings(postgres: PostgresServer, cache: RedisServer, ca: Path) -> ProcessorConfig:
    return ProcessorConfig.from_env({
        "WORKLOAD": "retail", "STREAM_NAME": "s", "AWS_REGION": "us-east-1", "DB_HOST": "127.0.0.1",
        "DB_PORT": str(postgres.port), "DB_NAME": "postgres", "DB_USER": "test", "DB_PASSWORD": postgres.password,
        "DB_SSLMODE": "verify-full", "DB_SSLROOTCERT": str(ca), "REDIS_HOST": "127.0.0.1",
        "REDIS_PORT": str(cache.port), "REDIS_TLS": "true", "REDIS_PASSWORD": cache.password,
        "REDIS_SSL_CA_CERTS": str(ca)})


def test_postgres_serves_verified_tls_and_refuses_plaintext(secure_postgres: PostgresServer, tls: TlsFiles) -> None:
    with psycopg2.connect(**secure_postgres.dsn()) as conn, conn.cursor() as cur:
        cur.execute("SELECT ssl FROM pg_stat_ssl WHERE pid = pg_backend_pid()")
        assert cur.fetchone() == (True,)
    plain = {**secure_postgres.dsn(), "sslmode": "disable"}
    with pytest.raises(psycopg2.OperationalError, match="no encryption"):
        psycopg2.connect(**plain)
    assert postgres_tls(str(tls.ca)) == {"sslmode": "verify-full", "sslrootcert": str(tls.ca)}


def test_redis_serves_verified_tls_and_refuses_plaintext(secure_redis: RedisServer, tls: TlsFiles) -> None:
    assert redis.Redis(host="127.0.0.1", port=secure_redis.port, password=secure_redis.password, **redis_tls(str(tls.ca))).ping()
    with pytest.raises(redis.exceptions.ConnectionError):
        redis.Redis(host="127.0.0.1", port=secure_redis.port, password=secure_redis.password, socket_timeout=2).ping()


def test_the_processor_connects_over_tls_with_the_deployed_settings(secure_postgres: PostgresServer, secure_redis: RedisServer,
                                                                    tls: TlsFiles) -> None:
    configured = settings(secure_postgres, secure_redis, tls.ca)
    assert configured.db_sslmode == "verify-full" and configured.redis_tls is True
    conn = ensure_reachable(configured)
    with conn.cursor() as cur:
        cur.execute("SELECT ssl FROM pg_stat_ssl WHERE pid = pg_backend_pid()")
        assert cur.fetchone() == (True,)
    conn.close()
    assert connect_redis(configured).ping()


def test_a_certificate_from_another_ca_fails_with_a_clear_line(secure_postgres: PostgresServer, secure_redis: RedisServer,
                                                               other_ca: Path) -> None:
    wrong = settings(secure_postgres, secure_redis, other_ca)
    with pytest.raises(ConfigError, match=r"cannot reach PostgreSQL at 127\.0\.0\.1:\d+: .*certificate verify failed"):
        ensure_reachable(wrong)
    with pytest.raises(redis.exceptions.ConnectionError, match="CERTIFICATE_VERIFY_FAILED"):
        connect_redis(wrong).ping()


def test_a_named_certificate_verifies_for_its_name_only_against_the_local_ca(tls: TlsFiles) -> None:
    """What the local deployment imports into ACM for the catalog read API's name (localdev/deploy.py)."""
    import subprocess

    cert, key = make_named_certificate(tls, "catalog-local.retail.internal")

    def verify(name: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(["openssl", "verify", "-CAfile", str(tls.ca), "-verify_hostname", name, str(cert)],
                              capture_output=True, text=True, check=False)

    assert verify("catalog-local.retail.internal").returncode == 0
    assert verify("localhost").returncode != 0  # the name it was made for, and no other
    assert key.stat().st_mode & 0o077 == 0
    assert make_named_certificate(tls, "catalog-local.retail.internal") == (cert, key)  # reused while valid
