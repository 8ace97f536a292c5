"""The processor as a fleet of tasks sharing one stream: real worker processes, moto's
Kinesis with its per-shard limits, a real PostgreSQL and Redis."""
from __future__ import annotations

import signal
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import psycopg2
import pytest
import redis
from botocore.client import BaseClient
from botocore.exceptions import ClientError

from localdev.fleet import Fleet, LeaseWatch, SteadyProducer
from localdev.kinesis_usage import shard_usage
from localdev.servers import MotoServer, PostgresServer, RedisServer, wait_for
from processor.samples import encode, reading
from processor.scheduler import Scheduler
from tests.processor.conftest import ROOT, count, count_or_zero, make_stream, processor_env, put, settings_for

LEASE_S, HEARTBEAT_S = 3.0, 0.3
TARGET_S = 2 * LEASE_S  # balanced within two lease durations after a join or a death
OWNERLESS_S = LEASE_S + HEARTBEAT_S + 0.4  # + the watch's sampling and one commit


@pytest.fixture()
def fleet(kinesis: BaseClient, moto: MotoServer, postgres: PostgresServer, database: str, redis_server: RedisServer,
        tmp_path: Path) -> Iterator[tuple[Fleet, LeaseWatch, SteadyProducer, str]]:
    stream = make_stream(kinesis, shards=4)
    env = processor_env("factory", stream, moto=moto, postgres=postgres, database=database, redis_server=redis_server,
                        CONSUMER_GROUP="fleet", LEASE_DURATION_S=str(LEASE_S), HEARTBEAT_S=str(HEARTBEAT_S),
                        BATCH_LIMIT="100")
    workers = Fleet(env, tmp_path)
    watch = LeaseWatch(postgres.dsn(database), "fleet", stream)
    producer = SteadyProducer(kinesis, stream, rate=120)
    yield workers, watch, producer, stream
    producer.close()
    workers.close()
    watch.close()


def test_shards_spread_over_1_2_and_4_workers_and_survive_a_kill_9_two_sigterms_and_a_rolling_replacement(
    fleet: Fleet, kinesis: BaseClient, moto: MotoServer, conn: psycopg2.extensions.connection
) -> None:
    workers, watch, producer, stream = fleet
    producer.start()
    first = workers.start(1)
    assert watch.balanced_at(first, first[0].started_at, 30) < 30  # the schema and the first shards

    # GIVEN one worker holding all four shards, WHEN one joins and then two more
    joined_at = time.monotonic()
    workers.start(1)
    assert watch.balanced_at(workers.live, joined_at, TARGET_S) <= TARGET_S
    joined_at = time.monotonic()
    workers.start(2)
    assert watch.balanced_at(workers.live, joined_at, TARGET_S) <= TARGET_S
    assert sorted(watch.shards_per_worker(time.monotonic()).values()) == [1, 1, 1, 1]

    # WHEN the busiest worker is killed mid-batch, THEN the survivors take its shards
    time.sleep(1.0)
    busiest = max(workers.live, key=lambda w: watch.shards_per_worker(time.monotonic()).get(w.pid, 0))
    killed_at = workers.signal(busiest, signal.SIGKILL)
    workers.wait(busiest)
    assert watch.balanced_at(workers.live, killed_at, TARGET_S) <= TARGET_S
    gaps = watch.longest_without_owner([w.pid for w in workers.live], killed_at, time.monotonic())
    assert max(gaps.values()) <= OWNERLESS_S, gaps

    # WHEN two of the three are stopped with SIGTERM, THEN they hand their shards over at once
    stopped = workers.live[:2]
    stopped_at = time.monotonic()
    for worker in stopped:
        workers.signal(worker, signal.SIGTERM)
    assert [workers.wait(w, 30) for w in stopped] == [0, 0]
    assert watch.balanced_at(workers.live, stopped_at, TARGET_S) <= TARGET_S
    survivor = workers.live
    assert len(survivor) == 1
    gaps = watch.longest_without_owner([survivor[0].pid], stopped_at, time.monotonic())
    assert max(gaps.values()) <= HEARTBEAT_S + 0.4, gaps  # handed over: no lease had to expire

    # WHEN every worker is replaced as ECS rolls a deployment (new tasks first, then SIGTERM to the old)
    rolled_at = time.monotonic()
    new = workers.start(2)
    assert watch.balanced_at([*survivor, *new], rolled_at, TARGET_S) <= TARGET_S
    workers.signal(survivor[0], signal.SIGTERM)
    assert workers.wait(survivor[0], 30) == 0
    assert watch.balanced_at(new, rolled_at, TARGET_S + 5) <= TARGET_S + 5
    gaps = watch.longest_without_owner([w.pid for w in new] + [survivor[0].pid], rolled_at, time.monotonic())
    assert max(gaps.values()) <= HEARTBEAT_S + 0.4, gaps

    # THEN every record is in PostgreSQL exactly once, and no reader went over a shard's limits
    sent = producer.close()
    wait_for(lambda: count_or_zero(conn, "SELECT count(*) FROM sensor_readings") >= sent, 60, "every record stored")
    assert count(conn, "SELECT count(*) FROM sensor_readings") == sent
    assert count(conn, "SELECT count(DISTINCT event_id) FROM sensor_readings") == sent
    usage = shard_usage(moto.url, stream)
    assert all(u["peak_reads_per_second"] <= 5 for u in usage.values())
    # Pages read twice: only the killed worker's uncommitted ones (at most two pages of 100).
    assert 0 <= sum(u["records_read"] for u in usage.values()) - sent <= 200


def test_a_rolling_replacement_hands_every_shard_over_without_reading_a_record_twice(
        fleet: Fleet, moto: MotoServer, conn: psycopg2.extensions.connection) -> None:
    workers, watch, producer, stream = fleet
    producer.start()
    old = workers.start(2)
    assert watch.balanced_at(old, old[0].started_at, 30) < 30
    time.sleep(1.0)
    rolled_at = time.monotonic()
    new = workers.start(2)
    assert watch.balanced_at([*old, *new], rolled_at, TARGET_S) <= TARGET_S
    for worker in old:
        workers.signal(worker, signal.SIGTERM)
    assert [workers.wait(w, 30) for w in old] == [0, 0]
    assert watch.balanced_at(new, rolled_at, TARGET_S + 5) <= TARGET_S + 5
    time.sleep(1.0)
    sent = producer.close()
    wait_for(lambda: count_or_zero(conn, "SELECT count(*) FROM sensor_readings") >= sent, 60, "every record stored")
    assert count(conn, "SELECT count(DISTINCT event_id) FROM sensor_readings") == sent
    usage = shard_usage(moto.url, stream)
    wait_for(lambda: sum(u["records_read"] for u in shard_usage(moto.url, stream).values()) >= sent, 10, "reads")
    usage = shard_usage(moto.url, stream)
    assert sum(u["records_read"] for u in usage.values()) == sent  # nothing read twice
    assert sum(u["read_throttled"] for u in usage.values()) == 0


def test_exit_when_idle_right_after_another_worker_was_killed_waits_its_leases_out_and_drains_everything(
    kinesis: BaseClient, moto: MotoServer, postgres: PostgresServer, database: str, redis_server: RedisServer,
    conn: psycopg2.extensions.connection
) -> None:
    stream = make_stream(kinesis, shards=3)
    total = 3000
    put(kinesis, stream, [encode(reading(f"s-{i % 60}", 70.0, at=i)) for i in range(total)],
        key=lambda i: f"s-{i % 60}")
    env = processor_env("factory", stream, moto=moto, postgres=postgres, database=database, redis_server=redis_server,
                        BATCH_LIMIT="50", CONSUMER_GROUP="drain", LEASE_DURATION_S="6")
    command = [sys.executable, "-m", "processor", "--exit-when-idle", "1"]
    first = subprocess.Popen([sys.executable, "-m", "processor"], cwd=ROOT, env=env, stdout=subprocess.DEVNULL,
                             stderr=subprocess.DEVNULL)
    try:
        wait_for(lambda: count_or_zero(conn, "SELECT count(*) FROM sensor_readings") > 300, 60, "a few batches")
    finally:
        first.send_signal(signal.SIGKILL)
        first.wait(10)
    assert count(conn, "SELECT count(*) FROM sensor_readings") < total
    # Idle for 1 s is far shorter than the dead worker's 6 s leases: the run must wait them out.
    second = subprocess.run(command, cwd=ROOT, env=env, capture_output=True, text=True, timeout=180)
    assert second.returncode == 0, second.stderr[-2000:]
    assert count(conn, "SELECT count(*) FROM sensor_readings") == total
    assert count(conn, "SELECT count(DISTINCT event_id) FROM sensor_readings") == total


def test_a_second_reader_polling_once_a_second_like_firehose_keeps_up_beside_the_processor_unthrottled(
    kinesis: BaseClient, moto: MotoServer, postgres: PostgresServer, database: str, redis_server: RedisServer,
    redis_client: redis.Redis, conn: psycopg2.extensions.connection
) -> None:
    import dataclasses

    stream = make_stream(kinesis, shards=2)
    settings = dataclasses.replace(settings_for("factory", postgres=postgres, database=database,
                                                redis_server=redis_server, stream=stream),
                                   read_interval_at_tip_s=1.0, max_reads_per_shard_per_s=3.0)
    scheduler = Scheduler(settings, kinesis=kinesis, redis_client=redis_client)
    worker = threading.Thread(target=scheduler.run, daemon=True)
    producer = SteadyProducer(kinesis, stream, rate=200)
    firehose_read, firehose_throttled = [0], [0]
    stop = threading.Event()

    def firehose() -> None:
        iterators = {s["ShardId"]: kinesis.get_shard_iterator(StreamName=stream, ShardId=s["ShardId"],
                                                              ShardIteratorType="TRIM_HORIZON")["ShardIterator"]
                     for s in kinesis.list_shards(StreamName=stream)["Shards"]}
        while not stop.wait(1.0):
            for shard, iterator in iterators.items():
                try:
                    page = kinesis.get_records(ShardIterator=iterator)
                except ClientError as error:
                    firehose_throttled[0] += error.response["Error"]["Code"] == "ProvisionedThroughputExceededException"
                    continue
                firehose_read[0] += len(page["Records"])
                iterators[shard] = page["NextShardIterator"]

    reader = threading.Thread(target=firehose, daemon=True)
    producer.start()
    worker.start()
    reader.start()
    try:
        time.sleep(8)
        sent = producer.close()
        wait_for(lambda: count_or_zero(conn, "SELECT count(*) FROM sensor_readings") >= sent, 30, "the processor")
        wait_for(lambda: firehose_read[0] >= sent, 10, "the second reader")
    finally:
        stop.set()
        scheduler.request_shutdown()
        worker.join(30)
        reader.join(10)
    usage = shard_usage(moto.url, stream)
    assert firehose_throttled[0] == 0 and scheduler.stats.throttled == 0
    assert all(u["read_throttled"] == 0 and u["peak_reads_per_second"] <= 3 for u in usage.values()), usage
