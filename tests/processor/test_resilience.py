"""The processor keeps its promises while the world misbehaves: a PostgreSQL restart, a
Redis outage, a reshard, rotated database credentials, and a producer's faulty stream."""
from __future__ import annotations

import dataclasses
import json
import subprocess
import sys
import threading
import time
from collections import OrderedDict
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import boto3
import psycopg2
import pytest
import redis
from botocore.client import BaseClient
from botocore.exceptions import ClientError

from localdev.servers import MotoServer, PostgresServer, RedisServer, wait_for
from processor.anomaly.detector import DetectorState
from processor.records import Poison
from processor.samples import T0, encode, product, reading
from processor.scheduler import Scheduler
from processor.traffic import Faults
from processor.workloads import FACTORY, RETAIL
from tests.processor.conftest import ROOT, count, count_or_zero, make_stream, processor_env, put, settings_for


class Running:
    """A Scheduler on a thread, as in the container, until it has been idle for `idle_s`."""

    def __init__(self, processor: Scheduler, idle_s: float) -> None:
        self.processor = processor
        self.stats = None
        self.error: BaseException | None = None
        self.thread = threading.Thread(target=self._run, args=(idle_s,), daemon=True)
        self.thread.start()

    def _run(self, idle_s: float) -> None:
        try:
            self.stats = self.processor.run(exit_when_idle_s=idle_s)
        except BaseException as error:
            self.error = error

    def join(self, timeout_s: float = 120) -> None:
        self.thread.join(timeout_s)
        if self.thread.is_alive():
            self.processor.request_shutdown()
            self.thread.join(30)
            raise AssertionError("processor did not finish in time")
        if self.error is not None:
            raise self.error


def test_a_postgres_restart_mid_stream_loses_and_duplicates_nothing(
    kinesis: BaseClient, postgres: PostgresServer, database: str, redis_server: RedisServer, redis_client: redis.Redis,
    conn: psycopg2.extensions.connection
) -> None:
    stream = make_stream(kinesis, shards=2)
    total = 4000
    put(kinesis, stream, [encode(reading(f"s-{i % 40}", 70.0, at=i)) for i in range(total)], key=lambda i: f"s-{i % 40}")
    settings = dataclasses.replace(settings_for("factory", postgres=postgres, database=database,
                                                redis_server=redis_server, stream=stream), batch_limit=50)
    running = Running(Scheduler(settings, kinesis=kinesis, redis_client=redis_client), idle_s=3)
    try:
        wait_for(lambda: count_or_zero(conn, "SELECT count(*) FROM sensor_readings") > 200, 60, "some batches")
        conn.close()
        postgres.stop("fast")  # every connection dies, mid-batch or not
        time.sleep(1.5)
    finally:
        postgres.start()
    running.join()
    again = psycopg2.connect(**postgres.dsn(database))
    try:
        assert count(again, "SELECT count(*) FROM sensor_readings") == total
        assert count(again, "SELECT count(DISTINCT event_id) FROM sensor_readings") == total
    finally:
        again.close()


def test_a_redis_outage_never_leaves_a_cached_product_stale(kinesis: Any, postgres: PostgresServer, database: str,
                                                            conn: psycopg2.extensions.connection) -> None:
    cache_server = RedisServer(persistent=True)  # comes back with its old data, as after a failover
    client = redis.Redis(port=cache_server.port, socket_timeout=1, socket_connect_timeout=0.5)
    try:
        stream = make_stream(kinesis, shards=1)
        settings = settings_for("retail", postgres=postgres, database=database, redis_server=cache_server,
                                stream=stream)
        put(kinesis, stream, [encode(product(f"SKU-{i}", price="1.00", at=0)) for i in range(20)],
            key=lambda i: f"SKU-{i}")
        Running(Scheduler(settings, kinesis=kinesis, redis_client=client), idle_s=1).join()
        assert json.loads(client.hget("product:SKU-3", "p"))["price"] == "1"

        running = Running(Scheduler(settings, kinesis=kinesis, redis_client=client), idle_s=4)
        cache_server.stop()
        put(kinesis, stream, [encode(product(f"SKU-{i}", price="2.00", at=1)) for i in range(20)],
            key=lambda i: f"SKU-{i}")
        wait_for(lambda: count(conn, "SELECT count(*) FROM products WHERE price = 2") == 20, 60,
                 "PostgreSQL advancing while Redis is down")
        assert count(conn, "SELECT count(*) FROM cache_pending") >= 1
        cache_server.start()  # back with the old prices: housekeeping must notice and refresh them
        running.join()
        assert {json.loads(client.hget(f"product:SKU-{i}", "p"))["price"] for i in range(20)} == {"2"}
        assert count(conn, "SELECT count(*) FROM cache_pending") == 0
    finally:
        client.close()
        cache_server.close()


class Recording(Scheduler):
    """Remembers which shard each committed batch came from, in commit order."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.committed: list[str] = []

    def _account(self, shard_id: str, *args: Any) -> None:
        self.committed.append(shard_id)
        super()._account(shard_id, *args)


def test_after_a_reshard_parents_are_drained_before_their_children(
    kinesis: BaseClient, postgres: PostgresServer, database: str, redis_server: RedisServer, redis_client: redis.Redis,
    conn: psycopg2.extensions.connection
) -> None:
    stream = make_stream(kinesis, shards=1)
    put(kinesis, stream, [encode(reading(f"s-{i % 30}", 70.0, at=i)) for i in range(600)], key=lambda i: f"s-{i % 30}")
    (parent,) = [s["ShardId"] for s in kinesis.list_shards(StreamName=stream)["Shards"]]
    kinesis.split_shard(StreamName=stream, ShardToSplit=parent, NewStartingHashKey=str(2**127))
    put(kinesis, stream, [encode(reading(f"s-{i % 30}", 70.0, at=600 + i)) for i in range(600)],
        key=lambda i: f"s-{i % 30}")
    settings = dataclasses.replace(settings_for("factory", postgres=postgres, database=database,
                                                redis_server=redis_server, stream=stream), batch_limit=100)
    processor = Recording(settings, kinesis=kinesis, redis_client=redis_client)

    processor.run(exit_when_idle_s=2.5)

    assert count(conn, "SELECT count(*) FROM sensor_readings") == 1200
    children = [s for s in processor.committed if s != parent]
    assert set(children) and processor.committed.index(children[0]) > max(
        i for i, s in enumerate(processor.committed) if s == parent)
    assert count(conn, f"SELECT count(*) FROM shard_leases WHERE shard_id = '{parent}' AND finished") == 1


@pytest.fixture()
def secured_postgres() -> Iterator[PostgresServer]:
    server = PostgresServer(password_auth=True)  # the shared one trusts every login
    yield server
    server.close()


def test_rotated_database_credentials_are_re_read_from_secrets_manager(
    kinesis: BaseClient, moto: MotoServer, secured_postgres: PostgresServer, redis_server: RedisServer,
    redis_client: redis.Redis, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("AWS_ENDPOINT_URL", moto.url)
    admin = psycopg2.connect(**secured_postgres.dsn())
    admin.autocommit = True
    with admin.cursor() as cur:
        cur.execute("CREATE DATABASE catalog")
        cur.execute("CREATE ROLE app LOGIN PASSWORD 'first'")
        cur.execute("ALTER DATABASE catalog OWNER TO app")
    secrets = boto3.client("secretsmanager", region_name="us-east-1", endpoint_url=moto.url)
    arn = secrets.create_secret(Name="rds-app", SecretString=json.dumps({"username": "app", "password": "first"}))["ARN"]
    stream = make_stream(kinesis, shards=1)
    owner = psycopg2.connect(**{**secured_postgres.dsn("catalog"), "user": "app", "password": "first"})
    RETAIL.migrate(owner)  # the migrate step, as the database's owner
    owner.close()
    settings = dataclasses.replace(
        settings_for("retail", postgres=secured_postgres, database="catalog", redis_server=redis_server,
                     stream=stream, migrate=False), db_secret_arn=arn, db_user=None, db_password=None)
    running = Running(Scheduler(settings, kinesis=kinesis, redis_client=redis_client), idle_s=4)
    put(kinesis, stream, [encode(product("SKU-1", price="1.00"))], key=lambda i: "SKU-1")
    owner = psycopg2.connect(**{**secured_postgres.dsn("catalog"), "user": "app", "password": "first"})
    try:
        wait_for(lambda: count_or_zero(owner, "SELECT count(*) FROM products") == 1, 30, "the first record")
    finally:
        owner.close()
    # WHEN the secret rotates (new password in PostgreSQL and in the secret) and the
    # processor's connection is cut, as a rotation's password change forces at the next login
    with admin.cursor() as cur:
        cur.execute("ALTER ROLE app PASSWORD 'second'")
        secrets.put_secret_value(SecretId=arn, SecretString=json.dumps({"username": "app", "password": "second"}))
        cur.execute("SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE usename = 'app'")
    put(kinesis, stream, [encode(product("SKU-2", price="2.00"))], key=lambda i: "SKU-2")
    running.join()
    # THEN it reconnected with the new password and carried on
    with admin.cursor() as cur:
        cur.execute("SELECT count(*) FROM pg_stat_activity WHERE usename = 'app'")
    owner = psycopg2.connect(**{**secured_postgres.dsn("catalog"), "user": "app", "password": "second"})
    try:
        assert count(owner, "SELECT count(*) FROM products") == 2
    finally:
        owner.close()
        admin.close()


def test_a_faulty_producer_stream_ends_exactly_once_with_poison_dead_lettered(
    kinesis: BaseClient, moto: MotoServer, postgres: PostgresServer, database: str, redis_server: RedisServer,
    conn: psycopg2.extensions.connection, tmp_path: Path
) -> None:
    stream = make_stream(kinesis, shards=2)
    labels = tmp_path / "labels.json"
    env = processor_env("factory", stream, moto=moto, postgres=postgres, database=database, redis_server=redis_server)
    knobs = {"duplicates": 0.02, "reorder": 0.05, "poison": 0.01, "anomalies": 0.01}
    produced = subprocess.run(
        [sys.executable, "-m", "processor.produce", "factory", "--stream", stream, "--count", "3000", "--rate", "0",
         *[arg for k, v in knobs.items() for arg in (f"--{k}", str(v))], "--seed", "11",
         "--start", T0.isoformat(), "--labels", str(labels)], cwd=ROOT, env=env, capture_output=True, text=True,
        timeout=120)
    assert produced.returncode == 0, produced.stderr
    # The same seed and start give the same stream: what the processor must end up with.
    sent = [FACTORY.decode(data) for _, data in FACTORY.generate(3000, faults=Faults(**knobs), seed=11,
                                                             start=T0)]
    assert json.loads(produced.stdout)["sent"] == len(sent)
    valid = {r.event_id for r in sent if not isinstance(r, Poison)}

    result = subprocess.run([sys.executable, "-m", "processor", "--exit-when-idle", "2"], cwd=ROOT, env=env,
                            capture_output=True, text=True, timeout=180)

    assert result.returncode == 0, result.stderr[-2000:]
    assert count(conn, "SELECT count(*) FROM sensor_readings") == len(valid)  # duplicates stored once
    assert count(conn, "SELECT count(*) FROM dead_letters") == sum(isinstance(r, Poison) for r in sent)
    # Injected FAULTs are always anomalies; how well spikes are caught is the detector's
    # own evaluation (processor/anomaly), not this test's.
    injected = set(json.loads(labels.read_text())["anomalies"])
    faults = sorted({r.event_id for r in sent if not isinstance(r, Poison) and r.event_id in injected
                     and r.status == "FAULT"})
    assert faults and count(conn, "SELECT count(*) FROM anomalies WHERE event_id = ANY(%s::uuid[])",
                            faults) == len(faults)


def expire_closed_shard(stream: str, shard_id: str) -> None:
    """What Kinesis does once a closed shard is older than the stream's retention: the shard and its
    records are deleted (ListShards stops listing it, GetShardIterator answers ResourceNotFound); its
    children keep naming it as their parent."""
    from moto.core import DEFAULT_ACCOUNT_ID
    from moto.kinesis.models import kinesis_backends

    shards = kinesis_backends[DEFAULT_ACCOUNT_ID]["us-east-1"].streams[stream].shards
    assert not shards[shard_id].is_open
    del shards[shard_id]


def test_a_parent_shard_deleted_past_retention_ends_its_lease_and_its_children_are_read(
    kinesis: BaseClient, postgres: PostgresServer, database: str, redis_server: RedisServer, redis_client: redis.Redis,
    conn: psycopg2.extensions.connection
) -> None:
    # GIVEN a shard read part-way (its lease row holds a checkpoint), then split while no task ran
    stream = make_stream(kinesis, shards=1)
    put(kinesis, stream, [encode(reading(f"s-{i % 10}", 70.0, at=i)) for i in range(100)], key=lambda i: f"s-{i % 10}")
    settings = dataclasses.replace(settings_for("factory", postgres=postgres, database=database,
                                                redis_server=redis_server, stream=stream), batch_limit=50)
    Scheduler(settings, kinesis=kinesis, redis_client=redis_client).run(exit_when_idle_s=1)
    (parent,) = [s["ShardId"] for s in kinesis.list_shards(StreamName=stream)["Shards"]]
    put(kinesis, stream, [encode(reading(f"s-{i % 10}", 70.0, at=100 + i)) for i in range(50)],
        key=lambda i: f"s-{i % 10}")  # never read: trimmed with the parent
    kinesis.split_shard(StreamName=stream, ShardToSplit=parent, NewStartingHashKey=str(2**127))
    put(kinesis, stream, [encode(reading(f"s-{i % 10}", 70.0, at=200 + i)) for i in range(300)],
        key=lambda i: f"s-{i % 10}")
    # WHEN the parent passes the retention period before the processor comes back
    expire_closed_shard(stream, parent)
    processor = Scheduler(settings, kinesis=kinesis, redis_client=redis_client)
    processor.run(exit_when_idle_s=2)

    # THEN the parent's lease is finished and every record of the children is stored
    assert count(conn, "SELECT count(*) FROM sensor_readings") == 100 + 300
    assert count(conn, f"SELECT count(*) FROM shard_leases WHERE shard_id = '{parent}' AND finished") == 1
    assert count(conn, "SELECT count(*) FROM shard_leases WHERE NOT finished AND checkpoint IS NULL") == 0


class ExpiringParent(Scheduler):
    """Kinesis deletes the closed parent (retention) right after its first batch commits, mid-read."""

    def __init__(self, *args: Any, parent: str, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.parent, self.expired = parent, False

    def _account(self, shard_id: str, *args: Any) -> None:
        super()._account(shard_id, *args)
        if shard_id == self.parent and not self.expired:
            expire_closed_shard(self.settings.stream_name, shard_id)
            self.expired = True


def test_a_parent_shard_deleted_while_it_is_read_ends_its_lease_and_its_children_are_read(
    kinesis: BaseClient, postgres: PostgresServer, database: str, redis_server: RedisServer, redis_client: redis.Redis,
    conn: psycopg2.extensions.connection
) -> None:
    stream = make_stream(kinesis, shards=1)
    put(kinesis, stream, [encode(reading(f"s-{i % 10}", 70.0, at=i)) for i in range(300)], key=lambda i: f"s-{i % 10}")
    (parent,) = [s["ShardId"] for s in kinesis.list_shards(StreamName=stream)["Shards"]]
    kinesis.split_shard(StreamName=stream, ShardToSplit=parent, NewStartingHashKey=str(2**127))
    put(kinesis, stream, [encode(reading(f"s-{i % 10}", 70.0, at=300 + i)) for i in range(300)],
        key=lambda i: f"s-{i % 10}")
    settings = dataclasses.replace(settings_for("factory", postgres=postgres, database=database,
                                                redis_server=redis_server, stream=stream), batch_limit=50)
    processor = ExpiringParent(settings, kinesis=kinesis, redis_client=redis_client, parent=parent)

    processor.run(exit_when_idle_s=2)

    assert processor.expired
    assert count(conn, "SELECT count(*) FROM sensor_readings") == 50 + 300  # the parent's first page, the children
    assert count(conn, f"SELECT count(*) FROM shard_leases WHERE shard_id = '{parent}' AND finished") == 1


class Hiccups:
    """A Kinesis client whose control-plane calls fail now and then, as under Kinesis' per-shard
    GetShardIterator limit (5 a second) or a dropped connection: each named call fails its first
    `times` calls, then goes through."""

    def __init__(self, client: BaseClient, times: int, *calls: str) -> None:
        self.client, self.failures = client, {call: times for call in calls}

    def __getattr__(self, name: str) -> Any:
        call = getattr(self.client, name)
        if name not in self.failures:
            return call

        def failing(**kwargs: Any) -> Any:
            if self.failures[name] > 0:
                self.failures[name] -= 1
                raise ClientError({"Error": {"Code": "LimitExceededException", "Message": "Rate exceeded"}}, name)
            return call(**kwargs)

        return failing


def test_throttled_list_shards_and_get_shard_iterator_calls_are_retried_not_fatal(
    kinesis: BaseClient, postgres: PostgresServer, database: str, redis_server: RedisServer, redis_client: redis.Redis,
    conn: psycopg2.extensions.connection
) -> None:
    stream = make_stream(kinesis, shards=2)
    put(kinesis, stream, [encode(reading(f"s-{i % 10}", 70.0, at=i)) for i in range(400)], key=lambda i: f"s-{i % 10}")
    settings = settings_for("factory", postgres=postgres, database=database, redis_server=redis_server, stream=stream)
    flaky = Hiccups(kinesis, 3, "list_shards", "get_shard_iterator")

    stats = Scheduler(settings, kinesis=flaky, redis_client=redis_client).run(exit_when_idle_s=1.5)

    assert flaky.failures == {"list_shards": 0, "get_shard_iterator": 0}
    assert stats.records == 400
    assert count(conn, "SELECT count(*) FROM sensor_readings") == 400


def test_a_shard_that_comes_back_after_another_task_read_it_resumes_that_tasks_detector_history(
    kinesis: BaseClient, postgres: PostgresServer, database: str, redis_server: RedisServer, redis_client: redis.Redis,
    conn: psycopg2.extensions.connection
) -> None:
    stream = make_stream(kinesis, shards=1)
    settings = settings_for("factory", postgres=postgres, database=database, redis_server=redis_server, stream=stream)
    first, second = (Scheduler(settings, kinesis=kinesis, redis_client=redis_client) for _ in range(2))
    (shard,) = [s["ShardId"] for s in kinesis.list_shards(StreamName=stream)["Shards"]]

    def readings_of(start: int) -> None:
        put(kinesis, stream, [encode(reading("press-01", 70.0 + i % 3 / 10, at=start + i)) for i in range(50)],
            key=lambda i: "press-01")
        wait_for(lambda: count(conn, "SELECT count(*) FROM sensor_readings") == start + 50, 60, "the readings")

    def hand_over(source: Scheduler, taker: Scheduler) -> None:
        # What the source's heartbeat does when the fleet's balance gives the shard to the taker.
        with conn, conn.cursor() as cur:
            cur.execute("UPDATE shard_leases SET owner = %s, lease_expires_at = now() + interval '3 seconds' "
                        "WHERE shard_id = %s AND owner = %s", (taker.worker_id, shard, source.worker_id))
            assert cur.rowcount == 1
        wait_for(lambda: shard in taker.owned and shard not in source.owned, 30, "the hand-over")

    running = [Running(first, idle_s=600)]
    try:
        readings_of(0)  # GIVEN the first task has read the sensor's first readings
        running.append(Running(second, idle_s=600))
        wait_for(lambda: count(conn, "SELECT count(*) FROM consumer_workers") == 2, 30, "both tasks")
        hand_over(first, second)
        readings_of(50)  # and the second task the next ones
        hand_over(second, first)  # WHEN the shard comes back to the first task
        readings_of(100)
    finally:
        for task in running:
            task.processor.request_shutdown()
        for task in running:
            task.join(30)
    # THEN its detector went on from the second task's state: it has seen every reading once
    assert DetectorState.from_json(redis_client.get("detector:press-01")).count == 150


def trim(stream: str, keep_after: int) -> int:
    """What Kinesis does to records older than the stream's retention: gone. Returns the oldest left."""
    from moto.core import DEFAULT_ACCOUNT_ID
    from moto.kinesis.models import kinesis_backends

    (shard,) = kinesis_backends[DEFAULT_ACCOUNT_ID]["us-east-1"].streams[stream].shards.values()
    shard.records = OrderedDict((seq, record) for seq, record in shard.records.items() if seq > keep_after)
    return next(iter(shard.records))


class Retention:
    """A Kinesis client that refuses a starting sequence number older than the trim horizon, as
    Kinesis answers it (InvalidArgumentException naming the StartingSequenceNumber)."""

    def __init__(self, client: BaseClient, trim_horizon: int) -> None:
        self.client, self.trim_horizon, self.refused = client, trim_horizon, 0

    def __getattr__(self, name: str) -> Any:
        return getattr(self.client, name)

    def get_shard_iterator(self, **kwargs: Any) -> Any:
        if kwargs.get("ShardIteratorType") == "AFTER_SEQUENCE_NUMBER" and \
                int(kwargs["StartingSequenceNumber"]) < self.trim_horizon - 1:
            self.refused += 1
            raise ClientError({"Error": {"Code": "InvalidArgumentException", "Message": (
                f"StartingSequenceNumber {kwargs['StartingSequenceNumber']} is beyond the trim horizon")}},
                "GetShardIterator")
        return self.client.get_shard_iterator(**kwargs)


def test_a_checkpoint_older_than_the_retention_reads_on_from_the_oldest_record_left(
    kinesis: BaseClient, postgres: PostgresServer, database: str, redis_server: RedisServer, redis_client: redis.Redis,
    conn: psycopg2.extensions.connection
) -> None:
    # GIVEN a shard read to a checkpoint, then written on while no task ran for longer than the retention
    stream = make_stream(kinesis, shards=1)
    put(kinesis, stream, [encode(reading(f"s-{i % 10}", 70.0, at=i)) for i in range(100)], key=lambda i: f"s-{i % 10}")
    settings = settings_for("factory", postgres=postgres, database=database, redis_server=redis_server, stream=stream)
    Scheduler(settings, kinesis=kinesis, redis_client=redis_client).run(exit_when_idle_s=1)
    put(kinesis, stream, [encode(reading(f"s-{i % 10}", 70.0, at=100 + i)) for i in range(100)],
        key=lambda i: f"s-{i % 10}")
    sequences = [int(r["SequenceNumber"]) for r in kinesis.get_records(ShardIterator=kinesis.get_shard_iterator(
        StreamName=stream, ShardId="shardId-000000000000", ShardIteratorType="TRIM_HORIZON")["ShardIterator"],
        Limit=1000)["Records"]]
    retention = Retention(kinesis, trim(stream, keep_after=sequences[149]))  # 50 records expired unread
    # WHEN the processor comes back
    Scheduler(settings, kinesis=retention, redis_client=redis_client).run(exit_when_idle_s=1)
    # THEN it reads on from the oldest record Kinesis still has
    assert retention.refused >= 1
    assert count(conn, "SELECT count(*) FROM sensor_readings") == 100 + 50
