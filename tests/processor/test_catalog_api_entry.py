"""`python -m processor catalog-api` as its ECS task runs it: configured from the environment alone, serving
TLS, reading a TLS-only PostgreSQL that checks passwords as the migration's SELECT-only reader, and a
TLS-only Redis with AUTH; and the migrate command making that reader from its secret."""
from __future__ import annotations

import signal
import subprocess
import sys
import time
import uuid
from pathlib import Path

import boto3
import psycopg2
import pytest
import requests
from psycopg2 import errors

from localdev.servers import MotoServer, PostgresServer, RedisServer, free_port
from localdev.tls import TlsFiles
from processor.catalog_api_main import CatalogApiConfig
from processor.config import ConfigError
from processor.samples import encode, product, stock
from processor.schema import ensure_catalog_reader
from processor.sinks import run_batch
from processor.sinks.retail import RetailSink
from processor.workloads import RETAIL
from tests.processor.conftest import ROOT, processor_env

READER, READER_PASSWORD, TOKEN = "catalog_reader", "reader-pw-1", "storefront-token"


def fresh_database(server: PostgresServer) -> str:
    name = f"c_{uuid.uuid4().hex[:8]}"
    admin = psycopg2.connect(**server.dsn())
    admin.autocommit = True
    with admin.cursor() as cur:
        cur.execute(f"CREATE DATABASE {name}")
    admin.close()
    return name


def task_env(tls: TlsFiles, postgres: PostgresServer, redis_server: RedisServer, database: str,
             port: int) -> dict[str, str]:
    """What the task definition sets and ECS injects, pointed at the test servers."""
    return {
        "PATH": "/usr/bin:/bin", "DB_HOST": "127.0.0.1", "DB_PORT": str(postgres.port), "DB_NAME": database,
        "DB_SSLMODE": "verify-full", "DB_SSLROOTCERT": str(tls.ca), "DB_USER": READER, "DB_PASSWORD": READER_PASSWORD,
        "REDIS_HOST": "127.0.0.1", "REDIS_PORT": str(redis_server.port), "REDIS_TLS": "true",
        "REDIS_SSL_CA_CERTS": str(tls.ca), "REDIS_PASSWORD": str(redis_server.password),
        "CATALOG_API_TOKENS": f"other-caller, {TOKEN}", "CATALOG_API_TLS": tls.key.read_text() + tls.cert.read_text(),
        "CATALOG_API_HOST": "127.0.0.1", "CATALOG_API_PORT": str(port),
    }


def wait_healthy(caller: requests.Session, url: str, ca: Path, process: subprocess.Popen) -> requests.Response:
    deadline = time.monotonic() + 30
    while True:
        try:
            return caller.get(f"{url}/healthz", verify=str(ca), timeout=5)
        except requests.ConnectionError:
            if process.poll() is not None or time.monotonic() > deadline:
                raise
            time.sleep(0.1)


def test_the_served_read_api_answers_over_verified_tls_as_the_select_only_reader(
        tls: TlsFiles, secure_postgres: PostgresServer, secure_redis: RedisServer) -> None:
    database = fresh_database(secure_postgres)
    admin = psycopg2.connect(**secure_postgres.dsn(database))
    RETAIL.migrate(admin)
    ensure_catalog_reader(admin, READER, READER_PASSWORD)
    run_batch(admin, RetailSink(None), [RETAIL.decode(encode(b)) for b in
                                        (product("SKU-E1", price="4.25"), stock("SKU-E1", "A", 3))])
    admin.close()
    port = free_port()
    process = subprocess.Popen([sys.executable, "-m", "processor", "catalog-api"], cwd=ROOT,
                               env=task_env(tls, secure_postgres, secure_redis, database, port),
                               stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    url = f"https://localhost:{port}"  # the certificate's name, verified against the local CA
    try:
        with requests.Session() as caller:
            caller.headers["connection"] = "close"  # none left open at the stop, which uvicorn would wait for
            assert wait_healthy(caller, url, tls.ca, process).json()["status"] == "ok"
            caller.headers["authorization"] = f"Bearer {TOKEN}"
            found = caller.get(f"{url}/v1/products/SKU-E1", verify=str(tls.ca), timeout=5)
            assert (found.status_code, found.json()["total_quantity"], found.json()["price"]) == (200, 3, "4.25")
            assert caller.get(f"{url}/v1/products/SKU-NONE", verify=str(tls.ca), timeout=5).status_code == 404
            assert caller.get(f"{url}/v1/products/SKU-E1", headers={"authorization": "Bearer nope"},
                              verify=str(tls.ca), timeout=5).status_code == 401
    finally:
        process.terminate()
        output, _ = process.communicate(timeout=30)
    assert process.returncode == -signal.SIGTERM and "Application shutdown complete" in output, output
    assert READER_PASSWORD not in output and TOKEN not in output


@pytest.mark.parametrize(("missing", "named"), [
    ("DB_PASSWORD", "DB_PASSWORD is not set (the catalog reader's password, from its secret)"),
    ("DB_USER", "DB_USER is not set (the catalog reader role)"),
    ("REDIS_HOST", "REDIS_HOST is not set"),
    ("CATALOG_API_TOKENS", "CATALOG_API_TOKENS is not set (the callers' bearer tokens, comma-separated)"),
    ("CATALOG_API_TLS", "CATALOG_API_TLS is not set (PEM: the serving certificate's key and chain)"),
])
def test_a_missing_setting_stops_the_start_with_a_line_naming_it(
        tls: TlsFiles, secure_postgres: PostgresServer, secure_redis: RedisServer, missing: str, named: str) -> None:
    env = task_env(tls, secure_postgres, secure_redis, "catalog", free_port())
    del env[missing]
    result = subprocess.run([sys.executable, "-m", "processor", "catalog-api"], cwd=ROOT, env=env,
                            capture_output=True, text=True, timeout=60)
    assert (result.returncode, result.stderr.strip()) == (2, f"processor: {named}")


@pytest.mark.parametrize(("name", "value", "message"), [
    ("CATALOG_API_TLS", "not a pem", "CATALOG_API_TLS must be PEM holding the private key and the certificate"),
    ("CATALOG_API_TOKENS", " , ", "CATALOG_API_TOKENS holds no token"),
    ("CATALOG_API_PORT", "http", "CATALOG_API_PORT must be a TCP port, not 'http'"),
    ("CATALOG_API_DB_POOL", "0", "CATALOG_API_DB_POOL must be 1 to 64 connections, not '0'"),
    ("DB_SSLMODE", "sometimes", "DB_SSLMODE 'sometimes' is not a libpq sslmode"),
])
def test_a_malformed_setting_is_refused_by_name(tls: TlsFiles, secure_postgres: PostgresServer,
                                                 secure_redis: RedisServer, name: str, value: str, message: str) -> None:
    env = {**task_env(tls, secure_postgres, secure_redis, "catalog", 8443), name: value}
    with pytest.raises(ConfigError) as error:
        CatalogApiConfig.from_env(env)
    assert str(error.value) == message


def test_the_migrate_command_makes_the_catalog_reader_from_its_secret(
        moto: MotoServer, postgres: PostgresServer, database: str, redis_server: RedisServer,
        conn: psycopg2.extensions.connection) -> None:
    secret = boto3.client("secretsmanager", region_name="us-east-1", endpoint_url=moto.url).create_secret(
        Name=f"retail-t-{uuid.uuid4().hex[:6]}/catalog-reader", SecretString=READER_PASSWORD)["ARN"]
    env = processor_env("retail", "s", moto=moto, postgres=postgres, database=database, redis_server=redis_server,
                        CATALOG_READER_USER="reader_m", CATALOG_READER_SECRET_ARN=secret)
    result = subprocess.run([sys.executable, "-m", "processor", "migrate"], cwd=ROOT, env=env, capture_output=True,
                            text=True, timeout=60)
    assert result.returncode == 0, result.stderr
    with conn, conn.cursor() as cur:
        cur.execute("SELECT table_name, privilege_type FROM information_schema.role_table_grants WHERE grantee = %s",
                    ("reader_m",))
        assert set(cur.fetchall()) == {("products", "SELECT"), ("inventory", "SELECT")}
        cur.execute("SELECT rolpassword IS NOT NULL FROM pg_authid WHERE rolname = %s", ("reader_m",))
        assert cur.fetchone() == (True,)  # it signs in with the secret's password
    reader = psycopg2.connect(**{**postgres.dsn(database), "user": "reader_m"})
    try:
        with pytest.raises(errors.InsufficientPrivilege), reader, reader.cursor() as cur:
            cur.execute("INSERT INTO products (sku) VALUES ('X')")
    finally:
        reader.close()


def test_the_migrate_command_refuses_a_reader_without_its_secret(
        moto: MotoServer, postgres: PostgresServer, database: str, redis_server: RedisServer) -> None:
    env = processor_env("retail", "s", moto=moto, postgres=postgres, database=database, redis_server=redis_server,
                        CATALOG_READER_USER="reader_m")
    result = subprocess.run([sys.executable, "-m", "processor", "migrate"], cwd=ROOT, env=env, capture_output=True,
                            text=True, timeout=60)
    assert (result.returncode, result.stderr.strip()) == (
        2, "processor: CATALOG_READER_USER and CATALOG_READER_SECRET_ARN go together: the catalog reader role and "
           "the secret holding its password")
