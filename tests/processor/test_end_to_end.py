"""The whole processor against moto's Kinesis, a real PostgreSQL and a real Redis."""
from __future__ import annotations

import os
import signal
import subprocess
import sys
import time

import psycopg2
import redis
from botocore.client import BaseClient

from localdev.servers import MotoServer, PostgresServer, RedisServer, wait_for
from processor.samples import encode, product, reading, stock
from processor.scheduler import Scheduler
from tests.processor.conftest import ROOT, count, count_or_zero, make_stream, processor_env, put, settings_for


def test_records_flow_into_postgres_poison_is_dead_lettered_and_a_restart_resumes(
    kinesis: BaseClient, postgres: PostgresServer, database: str, redis_server: RedisServer, redis_client: redis.Redis,
    conn: psycopg2.extensions.connection
) -> None:
    stream = make_stream(kinesis, shards=2)
    bodies = [encode(product(f"SKU-{i}", at=i)) for i in range(100)]
    bodies += [encode(stock(f"SKU-{i}", "SUP-1", i, at=i)) for i in range(100)]
    bodies += bodies[:20]  # duplicates
    bodies += [b"not json", encode({**stock(), "quantity": -3})]
    put(kinesis, stream, bodies, key=lambda i: f"SKU-{i % 100}")
    settings = settings_for("retail", postgres=postgres, database=database, redis_server=redis_server, stream=stream)

    stats = Scheduler(settings, kinesis=kinesis, redis_client=redis_client).run(exit_when_idle_s=1.0)

    assert stats.records == len(bodies) and stats.dead_letters == 2
    assert count(conn, "SELECT count(*) FROM products") == 100
    assert count(conn, "SELECT sum(quantity) FROM inventory") == sum(range(100))
    assert count(conn, "SELECT count(*) FROM dead_letters") == 2
    assert count(conn, "SELECT count(*) FROM shard_leases WHERE owner IS NULL AND checkpoint IS NOT NULL") == 2
    assert redis_client.exists("product:SKU-42")
    again = Scheduler(settings, kinesis=kinesis, redis_client=redis_client).run(exit_when_idle_s=0.5)
    assert again.records == 0  # resumed after the checkpoint: nothing read twice


def test_a_kill_9_mid_stream_loses_and_duplicates_nothing(
    kinesis: BaseClient, moto: MotoServer, postgres: PostgresServer, database: str, redis_server: RedisServer,
    conn: psycopg2.extensions.connection
) -> None:
    stream = make_stream(kinesis, shards=2)
    total = 3000
    put(kinesis, stream, [encode(reading(f"s-{i % 50}", 70.0, at=i)) for i in range(total)],
        key=lambda i: f"s-{i % 50}")
    env = processor_env("factory", stream, moto=moto, postgres=postgres, database=database, redis_server=redis_server,
                        BATCH_LIMIT="100", CONSUMER_GROUP="kill-test", LEASE_DURATION_S="3")
    command = [sys.executable, "-m", "processor", "--exit-when-idle", "2"]
    first = subprocess.Popen(command, cwd=ROOT, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)

    try:
        wait_for(lambda: count_or_zero(conn, "SELECT count(*) FROM shard_leases WHERE checkpoint IS NOT NULL") > 0,
                 60, "a first committed batch")
    finally:
        first.send_signal(signal.SIGKILL)
        first.wait(10)
    assert count(conn, "SELECT count(*) FROM sensor_readings") < total  # really killed mid-stream
    # The killed worker still holds its leases: the next one waits for them to expire (3 s here).
    second = subprocess.run(command, cwd=ROOT, env=env, capture_output=True, text=True, timeout=180)
    assert second.returncode == 0, second.stderr[-2000:]
    assert count(conn, "SELECT count(*) FROM sensor_readings") == total
    assert count(conn, "SELECT count(DISTINCT event_id) FROM sensor_readings") == total


def test_sigterm_finishes_the_batch_releases_leases_and_exits_zero(
    kinesis: BaseClient, moto: MotoServer, postgres: PostgresServer, database: str, redis_server: RedisServer,
    conn: psycopg2.extensions.connection
) -> None:
    stream = make_stream(kinesis, shards=1)
    put(kinesis, stream, [encode(product(f"SKU-{i}", at=i)) for i in range(500)], key=lambda i: f"SKU-{i}")
    env = processor_env("retail", stream, moto=moto, postgres=postgres, database=database, redis_server=redis_server)
    worker = subprocess.Popen([sys.executable, "-m", "processor"], cwd=ROOT, env=env, stdout=subprocess.DEVNULL)
    try:
        wait_for(lambda: count_or_zero(conn, "SELECT count(*) FROM products") == 500, 60, "all records processed")
    finally:
        started = time.monotonic()
        worker.send_signal(signal.SIGTERM)
        code = worker.wait(30)
    assert code == 0 and time.monotonic() - started < 30
    assert count(conn, "SELECT count(*) FROM shard_leases WHERE owner IS NOT NULL") == 0


def test_a_missing_stream_is_one_clear_line_and_a_non_zero_exit(moto: MotoServer, postgres: PostgresServer,
                                                                database: str, redis_server: RedisServer) -> None:
    env = processor_env("retail", "nope", moto=moto, postgres=postgres, database=database, redis_server=redis_server)
    result = subprocess.run([sys.executable, "-m", "processor"], cwd=ROOT, env=env, capture_output=True, text=True,
                            timeout=60)
    assert result.returncode == 2 and result.stderr.strip() == "processor: stream nope not found"


def test_an_unreachable_database_is_one_clear_line(moto: MotoServer) -> None:
    env = {**os.environ, "WORKLOAD": "factory", "STREAM_NAME": "x", "AWS_REGION": "us-east-1",
           "DB_HOST": "127.0.0.1", "DB_PORT": "1", "DB_NAME": "d", "DB_USER": "u", "DB_PASSWORD": "p",
           "DB_SSLMODE": "disable", "REDIS_HOST": "127.0.0.1", "REDIS_TLS": "false"}
    result = subprocess.run([sys.executable, "-m", "processor"], cwd=ROOT, env=env, capture_output=True, text=True,
                            timeout=60)
    assert result.returncode == 2
    assert result.stderr.startswith("processor: cannot reach PostgreSQL at 127.0.0.1:1")
    assert len(result.stderr.strip().splitlines()) == 1
