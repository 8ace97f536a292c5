"""Migrations run as their own step with the master credentials; the processor runs as an
application role with only its workload's DML, and waits for a migration it is ahead of."""
from __future__ import annotations

import dataclasses
import subprocess
import sys

import psycopg2
import pytest
import redis
from botocore.client import BaseClient
from psycopg2 import errors

from localdev.servers import MotoServer, PostgresServer, RedisServer
from processor.samples import encode, product, reading, stock
from processor.scheduler import Scheduler
from processor.schema import SCHEMA_VERSION
from tests.processor.conftest import (
    ROOT,
    count,
    count_or_zero,
    make_stream,
    migrated,
    processor_env,
    put,
    settings_for,
)

APP_USER = "processor"


def grants(conn: psycopg2.extensions.connection, user: str) -> set[tuple[str, str]]:
    with conn, conn.cursor() as cur:
        cur.execute("SELECT table_name, privilege_type FROM information_schema.role_table_grants "
                    "WHERE grantee = %s", (user,))
        return set(cur.fetchall())


def as_app(postgres: PostgresServer, database: str) -> psycopg2.extensions.connection:
    return psycopg2.connect(**{**postgres.dsn(database), "user": APP_USER})


COMMON = {
    ("shard_leases", "SELECT"), ("shard_leases", "INSERT"), ("shard_leases", "UPDATE"),
    ("consumer_workers", "SELECT"), ("consumer_workers", "INSERT"), ("consumer_workers", "UPDATE"),
    ("consumer_workers", "DELETE"), ("dead_letters", "INSERT"), ("schema_migrations", "SELECT"),
}


def test_the_migration_gives_the_application_role_exactly_its_workloads_dml(postgres: PostgresServer, database: str,
                                                                            conn: psycopg2.extensions.connection) -> None:
    migrated(postgres, database, "retail", APP_USER)
    assert grants(conn, APP_USER) == COMMON | {
        ("products", "SELECT"), ("products", "INSERT"), ("products", "UPDATE"),
        ("inventory", "SELECT"), ("inventory", "INSERT"), ("inventory", "UPDATE"),
        ("cache_pending", "SELECT"), ("cache_pending", "INSERT"), ("cache_pending", "DELETE"),
    }


@pytest.mark.parametrize("statement", [
    "DROP TABLE products", "TRUNCATE inventory", "DELETE FROM products", "CREATE TABLE spare (x int)",
    "ALTER TABLE products ADD COLUMN spare int", "UPDATE dead_letters SET reason = 'x'",
])
def test_the_application_role_cannot_change_the_schema_or_erase_data(postgres: PostgresServer, database: str,
                                                                     statement: str) -> None:
    migrated(postgres, database, "retail", APP_USER)
    app = as_app(postgres, database)
    try:
        with pytest.raises(errors.InsufficientPrivilege), app.cursor() as cur:
            cur.execute(statement)
    finally:
        app.close()


def test_both_workloads_run_end_to_end_as_the_application_role_alone(
    kinesis: BaseClient, postgres: PostgresServer, database: str, redis_server: RedisServer, redis_client: redis.Redis,
    conn: psycopg2.extensions.connection
) -> None:
    for workload, bodies in (
        ("retail", [encode(product(f"SKU-{i}", at=i)) for i in range(30)] + [encode(stock("SKU-1", "S", 3)), b"x"]),
        ("factory", [encode(reading(f"s-{i % 5}", 70.0, at=i * 86400 * 20)) for i in range(10)] + [b"{}"]),
    ):
        stream = make_stream(kinesis, shards=2)
        put(kinesis, stream, bodies, key=lambda i: f"k{i}")
        settings = settings_for(workload, postgres=postgres, database=database, redis_server=redis_server,
                                stream=stream, group=f"app-{workload}")
        migrated(postgres, database, workload, APP_USER)
        settings = dataclasses.replace(settings, db_user=APP_USER, db_password="unused")  # trust auth locally
        stats = Scheduler(settings, kinesis=kinesis, redis_client=redis_client).run(exit_when_idle_s=0.5)
        assert (stats.records, stats.dead_letters) == (len(bodies), 1)
    assert count(conn, "SELECT count(*) FROM products") == 30
    # Ten readings twenty days apart: the month partitions came from ensure_reading_partition.
    assert count(conn, "SELECT count(*) FROM sensor_readings") == 10
    assert count(conn, "SELECT count(*) FROM pg_inherits WHERE inhparent = 'sensor_readings'::regclass") >= 6


def test_a_processor_started_before_the_migration_waits_for_it_and_then_runs(
    kinesis: BaseClient, moto: MotoServer, postgres: PostgresServer, database: str, redis_server: RedisServer,
    conn: psycopg2.extensions.connection
) -> None:
    stream = make_stream(kinesis, shards=1)
    put(kinesis, stream, [encode(reading(f"s-{i}", 70.0, at=i)) for i in range(20)], key=lambda i: f"s-{i}")
    env = processor_env("factory", stream, moto=moto, postgres=postgres, database=database,
                        redis_server=redis_server, SCHEMA_WAIT_S="60")
    with conn, conn.cursor() as cur:  # as if this database had never been migrated
        cur.execute("DROP TABLE schema_migrations")
    worker = subprocess.Popen([sys.executable, "-m", "processor", "--exit-when-idle", "1"], cwd=ROOT, env=env,
                              stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    try:
        line = next(line for line in worker.stdout if "waiting for the migration" in line)  # type: ignore[union-attr]
        assert "the factory schema is not migrated" in line
        assert count_or_zero(conn, "SELECT count(*) FROM sensor_readings") == 0
        migrated(postgres, database, "factory")
        assert worker.wait(60) == 0
    finally:
        worker.kill()
    assert count(conn, "SELECT count(*) FROM sensor_readings") == 20


def test_a_migration_that_never_comes_stops_the_task_with_one_line(moto: MotoServer, postgres: PostgresServer,
                                                                   database: str, redis_server: RedisServer) -> None:
    env = processor_env("retail", "s", moto=moto, postgres=postgres, database=database, redis_server=redis_server,
                        SCHEMA_WAIT_S="0.5")
    admin = psycopg2.connect(**postgres.dsn(database))
    with admin, admin.cursor() as cur:
        cur.execute("UPDATE schema_migrations SET version = version - 1")
    admin.close()
    result = subprocess.run([sys.executable, "-m", "processor"], cwd=ROOT, env=env, capture_output=True, text=True,
                            timeout=60)
    assert result.returncode == 2
    assert result.stderr.strip() == (f"processor: the retail schema is at version {SCHEMA_VERSION - 1}; this processor "
                                     f"needs version {SCHEMA_VERSION}: run the migrate task (python -m processor migrate)")


def test_the_migrate_command_creates_the_role_it_is_given(postgres: PostgresServer, database: str,
                                                          conn: psycopg2.extensions.connection,
                                                          redis_server: RedisServer, moto: MotoServer) -> None:
    env = processor_env("factory", "s", moto=moto, postgres=postgres, database=database, redis_server=redis_server,
                        APP_DB_USER=APP_USER)
    result = subprocess.run([sys.executable, "-m", "processor", "migrate"], cwd=ROOT, env=env, capture_output=True,
                            text=True, timeout=60)
    assert result.returncode == 0, result.stderr
    assert grants(conn, APP_USER) == COMMON | {("sensor_readings", "SELECT"), ("sensor_readings", "INSERT"),
                                               ("anomalies", "SELECT"), ("anomalies", "INSERT"),
                                               *((t, p) for t in ("incidents", "incident_outbox")
                                                 for p in ("SELECT", "INSERT", "UPDATE"))}
    with conn, conn.cursor() as cur:
        cur.execute("SELECT has_function_privilege(%s, 'ensure_reading_partition(integer, integer)', 'EXECUTE'), "
                    "has_function_privilege('public', 'ensure_reading_partition(integer, integer)', 'EXECUTE')",
                    (APP_USER,))
        assert cur.fetchone() == (True, False)
