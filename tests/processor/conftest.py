"""Fixtures for the processor: a real PostgreSQL, a real Redis and moto's Kinesis."""
from __future__ import annotations

import itertools
import os
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path

import boto3
import psycopg2
import pytest
from botocore.client import BaseClient
from botocore.config import Config

from localdev.servers import MotoServer, PostgresServer, RedisServer
from processor.config import ProcessorConfig
from processor.produce import batches, put_all
from processor.workloads import WORKLOADS

ROOT = Path(__file__).resolve().parents[2]
_databases = itertools.count()


@pytest.fixture(scope="session")
def postgres() -> Iterator[PostgresServer]:
    server = PostgresServer()
    yield server
    server.close()


@pytest.fixture(scope="session")
def moto() -> Iterator[MotoServer]:
    from localdev.moto_extensions import apply_all

    apply_all()  # the same emulator the local deployment runs (localdev/moto_extensions/)
    server = MotoServer()
    os.environ.update(AWS_ACCESS_KEY_ID="testing", AWS_SECRET_ACCESS_KEY="testing", AWS_REGION="us-east-1",
                      AWS_DEFAULT_REGION="us-east-1")
    yield server
    server.close()


@pytest.fixture()
def database(postgres: PostgresServer) -> str:
    """A fresh database per test: tests never see each other's rows."""
    name = f"t{next(_databases)}_{uuid.uuid4().hex[:6]}"
    admin = psycopg2.connect(**postgres.dsn())
    admin.autocommit = True
    with admin.cursor() as cur:
        cur.execute(f"CREATE DATABASE {name}")
    admin.close()
    return name


@pytest.fixture()
def conn(postgres: PostgresServer, database: str) -> Iterator:
    connection = psycopg2.connect(**postgres.dsn(database))
    yield connection
    connection.close()


@pytest.fixture()
def kinesis(moto: MotoServer) -> BaseClient:
    # No SDK retries: a throttled read reaches the scheduler, which backs that shard off itself.
    return boto3.client("kinesis", region_name="us-east-1", endpoint_url=moto.url,
                        config=Config(retries={"total_max_attempts": 1, "mode": "standard"}))


def make_stream(kinesis: BaseClient, shards: int = 1) -> str:
    name = f"s-{uuid.uuid4().hex[:8]}"
    kinesis.create_stream(StreamName=name, ShardCount=shards)
    kinesis.get_waiter("stream_exists").wait(StreamName=name, WaiterConfig={"Delay": 0.1, "MaxAttempts": 50})
    return name


def migrated(postgres: PostgresServer, database: str, workload: str, app_user: str | None = None) -> None:
    """What the migrate task does before the service starts (the processor never runs DDL)."""
    admin = psycopg2.connect(**postgres.dsn(database))
    try:
        WORKLOADS[workload].migrate(admin, app_user)
    finally:
        admin.close()


def settings_for(workload: str, *, postgres: PostgresServer, database: str, redis_server: RedisServer,
                 stream: str, group: str = "g", migrate: bool = True) -> ProcessorConfig:
    if migrate:
        migrated(postgres, database, workload)
    return ProcessorConfig(
        workload=workload, stream_name=stream, region="us-east-1", db_host="127.0.0.1", db_port=postgres.port,
        db_name=database, db_secret_arn=None, db_user="test", db_password="x", db_sslmode="disable",
        db_sslrootcert=None, redis_host="127.0.0.1", redis_port=redis_server.port, redis_tls=False,
        redis_auth_secret_arn=None, redis_password=redis_server.password, consumer_group=group,
        metrics_namespace="Pipeline/test", lease_duration_s=3.0, heartbeat_s=0.3,
        read_interval_at_tip_s=0.25, max_reads_per_shard_per_s=4.0,
    )


def put(kinesis: BaseClient, stream: str, bodies: list[bytes], key: Callable[[int], str]) -> None:
    """PutRecords, as the producer sends them (batched, failed entries retried)."""
    for batch in batches((key(i), body) for i, body in enumerate(bodies)):
        put_all(kinesis, stream, batch)


def count(conn: psycopg2.extensions.connection, sql: str, *params: object) -> int:
    with conn, conn.cursor() as cur:
        cur.execute(sql, params or None)
        return cur.fetchone()[0]


def count_or_zero(conn: psycopg2.extensions.connection, sql: str) -> int:
    """For polling while the worker may not have created the schema yet."""
    try:
        return count(conn, sql)
    except psycopg2.Error:
        conn.rollback()
        return 0


def processor_env(workload: str, stream: str, *, moto: MotoServer, postgres: PostgresServer, database: str,
        redis_server: RedisServer,
                  **extra: str) -> dict[str, str]:
    """The environment the ECS task definition would set, pointed at the test servers (migrated)."""
    migrated(postgres, database, workload)
    return {**os.environ, "WORKLOAD": workload, "STREAM_NAME": stream, "AWS_REGION": "us-east-1",
            "AWS_ENDPOINT_URL": moto.url, "DB_HOST": "127.0.0.1", "DB_PORT": str(postgres.port), "DB_NAME": database,
            "DB_USER": "test", "DB_PASSWORD": "x", "DB_SSLMODE": "disable", "REDIS_HOST": "127.0.0.1",
            "REDIS_PORT": str(redis_server.port), "REDIS_TLS": "false", "REDIS_PASSWORD": redis_server.password,
            **extra}
