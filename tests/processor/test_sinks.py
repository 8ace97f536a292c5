"""The sinks against a real PostgreSQL and a real Redis."""
from __future__ import annotations

import itertools
import random

import psycopg2
import pytest
import redis
import redis as redis_lib

from localdev.servers import RedisServer
from processor.anomaly.detector import DetectorState
from processor.cache import CatalogCache, read_entries
from processor.catalog import get_product
from processor.records import UNITS
from processor.samples import encode, product, reading, status, stock
from processor.sinks import run_batch
from processor.sinks.factory import FactoryOutcome, FactorySink
from processor.sinks.retail import RetailSink
from processor.workloads import FACTORY, RETAIL
from tests.processor.batches import apply, rows


def test_final_retail_state_does_not_depend_on_arrival_order(conn: psycopg2.extensions.connection) -> None:
    RETAIL.migrate(conn)
    events = [product("SKU-1", at=t, price=f"{10 + t}.00") for t in range(4)] + \
             [stock("SKU-1", "SUP-1", quantity=q, at=q) for q in range(5)] + [stock("SKU-1", "SUP-2", 7, at=1)]
    outcomes = set()
    for seed in range(4):
        shuffled = events[:]
        random.Random(seed).shuffle(shuffled)
        with conn, conn.cursor() as cur:
            cur.execute("TRUNCATE products, inventory, cache_pending")
        for chunk in (shuffled[i:i + 3] for i in range(0, len(shuffled), 3)):
            apply(conn, RetailSink(), chunk, "retail")
        outcomes.add((tuple(rows(conn, "SELECT sku, price FROM products")),
                      tuple(rows(conn, "SELECT sku, supplier_id, quantity FROM inventory ORDER BY 2"))))
    assert outcomes == {((("SKU-1", 13),), (("SKU-1", "SUP-1", 4), ("SKU-1", "SUP-2", 7)))}


def test_replayed_and_older_events_never_move_state_backwards(conn: psycopg2.extensions.connection) -> None:
    RETAIL.migrate(conn)
    newest = product("SKU-9", at=100, price="50.00")
    apply(conn, RetailSink(), [newest], "retail")
    apply(conn, RetailSink(), [product("SKU-9", at=50, price="1.00"), newest], "retail")
    assert rows(conn, "SELECT price::text FROM products") == [("50.0000",)]


def test_equal_timestamps_are_ordered_by_event_id(conn: psycopg2.extensions.connection) -> None:
    RETAIL.migrate(conn)
    a = product("SKU-2", at=5, price="1.00", event_id="00000000-0000-4000-8000-000000000001")
    b = product("SKU-2", at=5, price="2.00", event_id="00000000-0000-4000-8000-000000000002")
    apply(conn, RetailSink(), [b], "retail")
    apply(conn, RetailSink(), [a], "retail")
    assert rows(conn, "SELECT price::text FROM products") == [("2.0000",)]


def test_the_processor_refreshes_the_cache_after_every_committed_update(conn: psycopg2.extensions.connection,
                                                                        redis_client: redis.Redis) -> None:
    RETAIL.migrate(conn)
    cache = CatalogCache(redis_client)
    sink = RetailSink(cache)
    apply(conn, sink, [product("SKU-3", price="9.50"), stock("SKU-3", "A", 2), stock("SKU-3", "B", 3)], "retail")
    assert cache.get("SKU-3") is None  # a new SKU is cached by its first read...
    assert get_product("SKU-3", conn=conn, cache=cache)["total_quantity"] == 5
    apply(conn, sink, [stock("SKU-3", "A", 10, at=1)], "retail")
    # ...and from then on every committed update reaches the entry, no miss needed
    assert cache.get("SKU-3") == {"sku": "SKU-3", "name": "Mug", "category": "kitchen", "price": "9.5",
                                  "currency": "USD", "updated_at": "2026-11-01T12:00:00.000000Z",
                                  "total_quantity": 13}
    # Redis has every batch: the next batch (or housekeeping) forgets their pending rows.
    sink.maintain(conn)
    assert rows(conn, "SELECT count(*) FROM cache_pending") == [(0,)]


def test_get_product_is_cache_aside(conn: psycopg2.extensions.connection, redis_client: redis.Redis) -> None:
    RETAIL.migrate(conn)
    apply(conn, RetailSink(), [product("SKU-4"), stock("SKU-4", "A", 4)], "retail")  # no cache attached
    cache = CatalogCache(redis_client, ttl_s=60)
    assert get_product("SKU-4", conn=conn, cache=cache)["total_quantity"] == 4
    assert (cache.hits, cache.misses) == (0, 1)
    assert get_product("SKU-4", conn=conn, cache=cache)["total_quantity"] == 4
    assert (cache.hits, cache.misses) == (1, 1)
    assert 0 < redis_client.ttl("product:SKU-4") <= 60
    assert get_product("NOPE", conn=conn, cache=cache) is None


def stale_fields(conn: psycopg2.extensions.connection, sku: str) -> dict:
    """What a cache-aside reader reads now and offers later."""
    with conn, conn.cursor() as cur:
        return read_entries(cur, [sku])


def test_a_stale_reader_cannot_overwrite_a_fresher_cache_entry(conn: psycopg2.extensions.connection,
                                                               redis_client: redis.Redis) -> None:
    RETAIL.migrate(conn)
    cache = CatalogCache(redis_client)
    sink = RetailSink(cache)
    apply(conn, sink, [product("SKU-5", price="1.00"), stock("SKU-5", "A", 1)], "retail")
    # GIVEN a reader that loaded the rows before the next commit
    stale = stale_fields(conn, "SKU-5")
    apply(conn, sink, [product("SKU-5", price="2.00", at=1), stock("SKU-5", "A", 7, at=1)], "retail")
    # WHEN it offers them to the cache THEN every field keeps the newer row
    assert cache.write(stale, complete=True) == 0
    assert cache.get("SKU-5") is not None and cache.get("SKU-5")["price"] == "2"
    assert cache.get("SKU-5")["total_quantity"] == 7


def test_a_fill_racing_a_commit_for_an_uncached_sku_cannot_put_the_old_row_back(conn: psycopg2.extensions.connection,
                                                                                redis_client: redis.Redis) -> None:
    RETAIL.migrate(conn)
    apply(conn, RetailSink(), [product("SKU-8", price="1.00"), stock("SKU-8", "A", 1), stock("SKU-8", "B", 2)],
          "retail")  # in PostgreSQL, not in Redis
    cache = CatalogCache(redis_client)
    stale = stale_fields(conn, "SKU-8")  # a get_product miss reads the rows...
    apply(conn, RetailSink(cache), [stock("SKU-8", "A", 5, at=1)], "retail")  # ...a batch commits and writes Redis
    assert cache.get("SKU-8") is None  # the processor's entry is incomplete: not served on its own
    cache.write(stale, complete=True)  # ...then the fill writes what it read
    assert cache.get("SKU-8")["total_quantity"] == 7 == get_product("SKU-8", conn=conn, cache=cache)["total_quantity"]
    assert cache.get("SKU-8")["price"] == "1"


def test_redis_outage_leaves_entries_dirty_until_redis_is_back(conn: psycopg2.extensions.connection,
                                                               redis_client: redis.Redis, redis_server: RedisServer) -> None:
    RETAIL.migrate(conn)
    good = CatalogCache(redis_client)
    before = RetailSink(good)
    apply(conn, before, [product("SKU-6", price="1.00")], "retail")
    before.maintain(conn)
    assert get_product("SKU-6", conn=conn, cache=good)["price"] == "1"  # cached by a read
    down = CatalogCache(redis_lib.Redis(port=1, socket_connect_timeout=0.2))  # nothing listens on port 1
    apply(conn, RetailSink(down), [product("SKU-6", price="3.00", at=1)], "retail")
    assert rows(conn, "SELECT price::text FROM products") == [("3.0000",)]  # PostgreSQL kept advancing
    assert rows(conn, "SELECT skus FROM cache_pending") == [(["SKU-6"],)]
    assert good.get("SKU-6")["price"] == "1"  # stale until Redis is reachable again...
    assert good.drain_pending(conn) == 1  # ...which the next housekeeping pass notices
    assert good.get("SKU-6")["price"] == "3" and rows(conn, "SELECT count(*) FROM cache_pending") == [(0,)]


def test_every_reading_is_stored_once_even_when_replayed(conn: psycopg2.extensions.connection) -> None:
    FACTORY.migrate(conn)
    batch = [reading(at=i) for i in range(10)]
    sink = FactorySink()
    apply(conn, sink, batch, "factory")
    apply(conn, sink, batch + [reading(at=99)], "factory")
    assert rows(conn, "SELECT count(*) FROM sensor_readings") == [(11,)]


def test_a_reading_of_every_sensor_kind_is_stored_in_its_unit_and_is_the_sensors_latest(conn: psycopg2.extensions.connection,
                                                                                        redis_client: redis.Redis) -> None:
    FACTORY.migrate(conn)
    values = {"temperature": 71.5, "pressure": -3.5, "vibration": 0.31, "current": 12.4, "voltage": 399.0, "flow": 0.0}
    apply(conn, FactorySink(redis_client), [reading(f"{k}-1", v, kind=k) for k, v in values.items()], "factory")
    stored = rows(conn, "SELECT kind, value, unit FROM sensor_readings ORDER BY kind")
    assert stored == sorted((k, v, UNITS[k]) for k, v in values.items())
    assert {k: float(redis_client.hget(f"sensor:{k}-1", "value")) for k in values} == values


def test_readings_land_in_monthly_partitions(conn: psycopg2.extensions.connection) -> None:
    FACTORY.migrate(conn)
    apply(conn, FactorySink(), [reading(at=0), reading(at=40 * 86400)], "factory")
    parts = rows(conn, "SELECT tableoid::regclass::text FROM sensor_readings ORDER BY ts")
    assert parts == [("sensor_readings_y2026m11",), ("sensor_readings_y2026m12",)]


def test_a_fault_status_is_always_an_anomaly_recorded_once(conn: psycopg2.extensions.connection) -> None:
    FACTORY.migrate(conn)
    fault = status("mill-03", "FAULT")
    sink = FactorySink()
    apply(conn, sink, [fault, status("mill-03", "RUNNING", at=1)], "factory")
    apply(conn, sink, [fault], "factory")
    assert rows(conn, "SELECT sensor_id, reason, score FROM anomalies") == [("mill-03", "equipment reported FAULT", 1.0)]


def test_a_spike_after_warmup_is_an_anomaly_and_state_lives_in_redis(conn: psycopg2.extensions.connection,
                                                                     redis_client: redis.Redis) -> None:
    FACTORY.migrate(conn)
    noise = itertools.cycle([69.8, 70.1, 70.0, 70.2, 69.9])
    normal = [reading("press-01", next(noise), at=i) for i in range(400)]  # history enough to claim an alarm
    sink = FactorySink(redis_client)
    apply(conn, sink, normal, "factory")
    assert rows(conn, "SELECT count(*) FROM anomalies") == [(0,)]
    # A new task (fresh sink) picks the detector up from Redis and flags the spike.
    restarted = FactorySink(redis_client)
    apply(conn, restarted, [reading("press-01", 95.0, at=len(normal))], "factory")
    assert rows(conn, "SELECT sensor_id, value FROM anomalies") == [("press-01", 95.0)]
    state = DetectorState.from_json(redis_client.get("detector:press-01"))
    assert state.count == len(normal) + 1
    assert redis_client.hget("sensor:press-01", "value") == b"95.0"


def test_a_batch_that_does_not_commit_teaches_the_detectors_nothing(conn: psycopg2.extensions.connection) -> None:
    FACTORY.migrate(conn)
    sink = FactorySink()
    apply(conn, sink, [reading("press-04", 70.0 + i % 3 / 10, at=i * 60) for i in range(40)], "factory")
    before = sink.states["press-04"].to_json()
    failing = [FACTORY.decode(encode(reading("press-04", 90.0 + i, at=3000 + i * 60))) for i in range(5)]

    def checkpoint_fails(cur: psycopg2.extensions.cursor) -> None:
        raise RuntimeError("lease lost")

    with pytest.raises(RuntimeError):
        run_batch(conn, sink, failing, within=checkpoint_fails)
    assert sink.states["press-04"].to_json() == before  # the daily profile included
    assert rows(conn, "SELECT count(*) FROM sensor_readings") == [(40,)]


def test_an_older_reading_arriving_late_does_not_replace_the_latest_one_in_redis(conn: psycopg2.extensions.connection,
                                                                                 redis_client: redis.Redis) -> None:
    FACTORY.migrate(conn)
    sink = FactorySink(redis_client)
    apply(conn, sink, [reading("press-02", 71.0, at=10)], "factory")
    apply(conn, sink, [reading("press-02", 65.0, at=5)], "factory")  # reordered: older, arrives later
    assert redis_client.hget("sensor:press-02", "value") == b"71.0"
    assert redis_client.hget("sensor:press-02", "ts") == b"2026-11-01T12:00:10.000000+00:00"
    assert rows(conn, "SELECT count(*) FROM sensor_readings") == [(2,)]  # PostgreSQL keeps both


def test_a_crash_between_commit_and_cache_write_is_repaired_by_housekeeping(conn: psycopg2.extensions.connection,
                                                                            redis_client: redis.Redis) -> None:
    RETAIL.migrate(conn)
    cache = CatalogCache(redis_client)
    apply(conn, RetailSink(cache), [product("SKU-7", price="1.00")], "retail")
    assert get_product("SKU-7", conn=conn, cache=cache)["price"] == "1"  # cached by a read
    # GIVEN a task that commits a batch and dies before writing Redis
    records = [RETAIL.decode(encode(product("SKU-7", price="4.00", at=1)))]
    with conn, conn.cursor() as cur:
        RetailSink(cache).apply(cur, records)
    assert cache.get("SKU-7")["price"] == "1"
    # WHEN any task's housekeeping runs THEN the entry catches up with PostgreSQL
    RetailSink(cache).maintain(conn)
    assert cache.get("SKU-7")["price"] == "4"
    assert rows(conn, "SELECT count(*) FROM cache_pending") == [(0,)]


def test_a_refresh_writes_each_sku_its_own_rows_and_a_malformed_write_changes_nothing(conn: psycopg2.extensions.connection,
                                                                                      redis_client: redis.Redis) -> None:
    RETAIL.migrate(conn)
    apply(conn, RetailSink(), [product("SKU-b", price="1.00"), product("SKU-A", price="2.00"),
                               stock("SKU-A", "X", 3)], "retail")
    cache = CatalogCache(redis_client)
    assert cache.refresh(conn, ["SKU-b", "SKU-A"])
    assert (cache.get("SKU-b")["price"], cache.get("SKU-A")["price"]) == ("1", "2")
    assert (cache.get("SKU-b")["total_quantity"], cache.get("SKU-A")["total_quantity"]) == (0, 3)
    # Arguments that do not line up with the keys are refused before anything is written.
    with pytest.raises(redis_lib.ResponseError, match="cache write: "):
        cache._write(keys=["product:SKU-b", "product:SKU-A"], args=[60, "1", "[[\"p\", \"9999\", \"{}\"]]"])
    assert cache.get("SKU-b")["price"] == "1"


def test_a_reading_sent_twice_in_one_batch_counts_once_as_it_does_across_batches(
        conn: psycopg2.extensions.connection) -> None:
    # A producer retrying a PutRecords entry it thought failed puts the same record twice, often in one page.
    FACTORY.migrate(conn)
    fault = status("mill-03", "FAULT")
    outcome = run_batch(conn, FactorySink(), [FACTORY.decode(encode(b)) for b in (fault, fault)])
    assert outcome.anomalies == 1
    assert rows(conn, "SELECT count(*) FROM anomalies") == [(1,)]
    assert rows(conn, "SELECT firings, sensors FROM incidents") == [(1, ["mill-03"])]


def test_a_detector_started_fresh_while_redis_was_down_never_replaces_the_stored_history(
        conn: psycopg2.extensions.connection) -> None:
    FACTORY.migrate(conn)
    server = RedisServer(persistent=True)  # comes back with its data, as after a failover
    client = redis_lib.Redis(port=server.port, socket_timeout=1, socket_connect_timeout=0.5)
    try:
        # GIVEN a sensor whose detector has learnt its history, kept in Redis
        noise = itertools.cycle([69.8, 70.1, 70.0, 70.2, 69.9])
        apply(conn, FactorySink(client), [reading("press-01", next(noise), at=i) for i in range(400)], "factory")
        # WHEN a new task starts reading the sensor while Redis is away, and goes on once it is back
        restarted = FactorySink(client, redis_rest_s=0)  # Redis tried again at once (rest: another test)
        server.stop()
        apply(conn, restarted, [reading("press-01", next(noise), at=400 + i) for i in range(5)], "factory")
        server.start()
        apply(conn, restarted, [reading("press-01", next(noise), at=405 + i) for i in range(5)], "factory")
        # THEN the history is kept, and a spike is an anomaly as before the outage
        assert DetectorState.from_json(client.get("detector:press-01")).count >= 400
        apply(conn, restarted, [reading("press-01", 95.0, at=410)], "factory")
        assert rows(conn, "SELECT sensor_id, value FROM anomalies") == [("press-01", 95.0)]
    finally:
        client.close()
        server.close()


class StalledAfterCommit(FactorySink):
    """A task that commits its batch, then stalls before its Redis write (held until `resume`)."""

    def after_commit(self, conn: psycopg2.extensions.connection, outcome: FactoryOutcome) -> None:
        self.held = [(conn, outcome)]

    def resume(self) -> None:
        for conn, outcome in self.held:
            FactorySink.after_commit(self, conn, outcome)


def test_a_task_stalled_past_its_lease_cannot_put_an_older_detector_state_back(
        conn: psycopg2.extensions.connection, redis_client: redis.Redis) -> None:
    FACTORY.migrate(conn)
    noise = itertools.cycle([69.8, 70.1, 70.0, 70.2, 69.9])
    # GIVEN a task that learnt 100 readings, commits 100 more and stalls before writing Redis
    stalled = StalledAfterCommit(redis_client)
    apply(conn, FactorySink(redis_client), [reading("press-01", next(noise), at=i) for i in range(100)], "factory")
    apply(conn, stalled, [reading("press-01", next(noise), at=100 + i) for i in range(100)], "factory")
    # WHEN the next owner goes on with 150 later readings, and only then the stalled task writes
    apply(conn, FactorySink(redis_client), [reading("press-01", next(noise), at=200 + i) for i in range(150)],
          "factory")
    newer = redis_client.get("detector:press-01")
    stalled.resume()
    # THEN the next owner's state stays (the stalled one learnt 200 readings, it 250)
    assert redis_client.get("detector:press-01") == newer
    assert DetectorState.from_json(newer).count == 250


def test_a_state_of_another_version_in_redis_is_replaced_by_the_one_learnt_since(
        conn: psycopg2.extensions.connection, redis_client: redis.Redis) -> None:
    FACTORY.migrate(conn)
    old = DetectorState(count=10_000, t=4_000_000_000.0, event_id="z")
    old.v = old.v - 1
    redis_client.set("detector:press-01", old.to_bytes())
    apply(conn, FactorySink(redis_client), [reading("press-01", 70.0, at=i) for i in range(3)], "factory")
    assert DetectorState.from_json(redis_client.get("detector:press-01")).count == 3


def test_an_unreadable_stored_state_is_replaced_by_the_one_learnt_since(
        conn: psycopg2.extensions.connection, redis_client: redis.Redis) -> None:
    FACTORY.migrate(conn)
    broken = DetectorState(count=10_000, t=4_000_000_000.0, event_id="z").to_bytes().replace(b'"spread":0.0',
                                                                                             b'"spread":null')
    redis_client.set("detector:press-01", broken)
    apply(conn, FactorySink(redis_client), [reading("press-01", 70.0, at=i) for i in range(3)], "factory")
    assert DetectorState.from_json(redis_client.get("detector:press-01")).count == 3
