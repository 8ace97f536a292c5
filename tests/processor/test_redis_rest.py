"""The processor rests a Redis that stops answering (processor/redis_rest.py), against a real PostgreSQL and a
real Redis paused with CLIENT PAUSE (it accepts connections and answers nothing, as during a failover)."""
from __future__ import annotations

import itertools
import socket
import time
import types
from collections.abc import Iterator
from contextlib import contextmanager

import psycopg2
import pytest
import redis

from localdev.servers import RedisServer, wait_for
from processor.anomaly.detector import DetectorState
from processor.cache import CatalogCache
from processor.connections import connect_redis
from processor.redis_rest import RedisRest
from processor.samples import product, reading, stock
from processor.sinks.factory import FactorySink
from processor.sinks.retail import RetailSink
from processor.workloads import FACTORY, RETAIL
from tests.processor.batches import apply, rows

TIMEOUT_S = 0.5  # the client's connect and socket timeout
REST_S = 3.0
BATCHES = 8
PAUSE_MS = 2500  # longer than the batches take while Redis rests


@contextmanager
def impatient_client(server: RedisServer) -> Iterator[redis.Redis]:
    """A client that gives up on a silent Redis after TIMEOUT_S, without retrying."""
    client = redis.Redis(port=server.port, password=server.password, socket_timeout=TIMEOUT_S,
                         socket_connect_timeout=TIMEOUT_S, retry=redis.retry.Retry(redis.backoff.NoBackoff(), 0))
    try:
        yield client
    finally:
        client.close()


@contextmanager
def silent(admin: redis.Redis) -> Iterator[None]:
    """Redis answers no client (commands wait) for PAUSE_MS: the block's UNPAUSE waits for its end too."""
    admin.execute_command("CLIENT", "PAUSE", str(PAUSE_MS), "ALL")
    try:
        yield
    finally:
        admin.execute_command("CLIENT", "UNPAUSE")


def test_a_silent_redis_costs_the_factory_one_timeout_a_rest_and_gets_every_state_and_reading_once_back(
        conn: psycopg2.extensions.connection, redis_client: redis.Redis, redis_server: RedisServer) -> None:
    FACTORY.migrate(conn)
    noise = itertools.cycle([69.8, 70.1, 70.0, 70.2, 69.9])
    with impatient_client(redis_server) as client:
        # GIVEN a task whose detectors of press-01 and press-02 have a history in Redis
        sink = FactorySink(client, redis_rest_s=REST_S)
        apply(conn, sink, [reading(s, next(noise), at=i) for i in range(50) for s in ("press-01", "press-02")],
              "factory")
        # WHEN Redis stops answering while batches of them, and of press-03 (never seen), come in
        with silent(redis_client):
            started = time.monotonic()
            for b in range(BATCHES):
                apply(conn, sink, [reading(s, next(noise), at=50 + b) for s in ("press-01", "press-02", "press-03")],
                      "factory")
            elapsed = time.monotonic() - started
        # THEN the batches waited for Redis once (old: twice a batch), and every reading is stored
        assert elapsed < 3 * TIMEOUT_S, f"{BATCHES} batches took {elapsed:.1f} s"
        assert rows(conn, "SELECT sensor_id, count(*) FROM sensor_readings GROUP BY 1 ORDER BY 1") == [
            ("press-01", 50 + BATCHES), ("press-02", 50 + BATCHES), ("press-03", BATCHES)]
        # AND once Redis answers and its rest is over, housekeeping writes what it missed, with no batch needed
        wait_for(lambda: (sink.maintain(conn), redis_client.hget("sensor:press-03", "ts"))[1] is not None,
                 REST_S + 5, "the latest readings written after the rest")
        last = rows(conn, "SELECT sensor_id, value FROM sensor_readings WHERE ts = (SELECT max(ts) FROM sensor_readings)"
                          " ORDER BY 1")
        assert [(s, float(redis_client.hget("sensor:" + s, "value"))) for s, _ in last] == last
        for sensor in ("press-01", "press-02"):
            assert DetectorState.from_json(redis_client.get("detector:" + sensor)).count == 50 + BATCHES
        # AND press-03, started fresh without Redis, is not written until Redis has been asked for its history
        assert redis_client.get("detector:press-03") is None
        apply(conn, sink, [reading("press-03", 70.0, at=50 + BATCHES)], "factory")
        assert DetectorState.from_json(redis_client.get("detector:press-03")).count == BATCHES + 1


def test_a_silent_redis_costs_the_retail_sink_one_timeout_a_rest_and_housekeeping_repairs_the_cache(
        conn: psycopg2.extensions.connection, redis_client: redis.Redis, redis_server: RedisServer) -> None:
    RETAIL.migrate(conn)
    with impatient_client(redis_server) as client:
        cache = CatalogCache(client, rest=RedisRest(REST_S, away="cache writes wait", back="cache writes resume"))
        sink = RetailSink(cache)
        apply(conn, sink, [product("SKU-R", price="1.00"), stock("SKU-R", "A", 1)], "retail")
        with silent(redis_client):
            started = time.monotonic()
            for b in range(BATCHES):
                apply(conn, sink, [stock("SKU-R", "A", 10 + b, at=1 + b)], "retail")
            elapsed = time.monotonic() - started
            assert elapsed < 3 * TIMEOUT_S, f"{BATCHES} batches took {elapsed:.1f} s"
            sink.maintain(conn)  # housekeeping while Redis rests leaves the pending rows, without waiting
            assert time.monotonic() - started < 3 * TIMEOUT_S
        assert rows(conn, "SELECT count(*) FROM cache_pending") == [(BATCHES,)]
        assert rows(conn, "SELECT quantity FROM inventory") == [(10 + BATCHES - 1,)]
        wait_for(lambda: (sink.maintain(conn), rows(conn, "SELECT count(*) FROM cache_pending"))[1] == [(0,)],
                 REST_S + 5, "the pending cache entries repaired after the rest")
        assert cache.get("SKU-R")["total_quantity"] == 10 + BATCHES - 1


def test_the_processors_redis_client_gives_up_on_a_silent_redis_after_one_retry() -> None:
    # A listening socket that never replies: connections are accepted, no command is ever answered.
    with socket.create_server(("127.0.0.1", 0)) as listener:
        settings = types.SimpleNamespace(redis_host="127.0.0.1", redis_port=listener.getsockname()[1],
                                         redis_password="unused", redis_tls=False, redis_ssl_ca_certs=None)
        client = connect_redis(settings)
        started = time.monotonic()
        try:
            with pytest.raises(redis.TimeoutError):
                client.get("sensor:press-01")
        finally:
            client.close()
        # two socket timeouts of 2 s (the call and its one retry); redis-py's default retries ten times
        assert time.monotonic() - started < 5
