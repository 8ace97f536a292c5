"""`make bench-processor`: records/s through the sinks (PostgreSQL + Redis) on one core,
then end to end through an emulated Kinesis stream (bench/end_to_end.py).

Starts its own PostgreSQL and Redis on loopback, then for each workload:
  * project: decode + batched sink (1,000 records per transaction), pipelined as the
    processor runs it (processor/pipeline.py: batch N+1 decoded while N is applied);
  * naive baseline: decode + one INSERT ... ON CONFLICT per record, one transaction each;
and prints records/s for both, their ratio, the processor's CPU time per record and the
records/s per core that makes, and peak RSS. The process runs on one core and the servers
on the other, so wall-clock records/s is bounded by whichever core saturates first;
CPU time per record is what one core of the processor costs, whatever the database.
PostgreSQL runs with its default durability (fsync, synchronous commit), as in production.
"""
from __future__ import annotations

import os
import resource
import sys
import time
from pathlib import Path

import psycopg2
import redis

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench import end_to_end
from localdev.servers import PostgresServer, RedisServer
from processor.cache import CatalogCache
from processor.pipeline import Writer
from processor.samples import encode, product, reading, stock
from processor.sinks import Sink, run_batch
from processor.sinks.factory import FactorySink
from processor.sinks.retail import RetailSink
from processor.workloads import WORKLOADS

RECORDS = int(os.environ.get("BENCH_RECORDS", "50000"))
NAIVE_RECORDS = int(os.environ.get("BENCH_NAIVE_RECORDS", "3000"))
BATCH = 1000


def retail_payloads(n: int) -> list[bytes]:
    return [encode(product(f"SKU-{i % 5000}", at=i)) if i % 3 == 0 else
            encode(stock(f"SKU-{i % 5000}", f"SUP-{i % 7}", i % 100, at=i)) for i in range(n)]


def factory_payloads(n: int) -> list[bytes]:
    return [encode(reading(f"sensor-{i % 300}", 70.0 + (i % 10) / 10, at=i / 300)) for i in range(n)]


def fresh_db(server: PostgresServer, name: str) -> psycopg2.extensions.connection:
    admin = psycopg2.connect(**server.dsn())
    admin.autocommit = True
    with admin.cursor() as cur:
        cur.execute(f"DROP DATABASE IF EXISTS {name}")
        cur.execute(f"CREATE DATABASE {name}")
    admin.close()
    return psycopg2.connect(**server.dsn(name))


def project(conn: psycopg2.extensions.connection, sink: Sink, payloads: list[bytes],
            workload: str) -> tuple[float, float]:
    """As the processor runs: batch N+1 is decoded while the writer thread applies batch N.
    Returns records/s (wall) and the processor's CPU time per record (both its threads, µs)."""
    writer = Writer()
    started, cpu = time.perf_counter(), time.process_time()
    for start in range(0, len(payloads), BATCH):
        batch = [WORKLOADS[workload].decode(p) for p in payloads[start:start + BATCH]]
        writer.submit(lambda batch=batch: run_batch(conn, sink, batch))
    writer.close()
    wall, cpu = time.perf_counter() - started, time.process_time() - cpu
    return len(payloads) / wall, cpu / len(payloads) * 1e6


NAIVE_SQL = {
    "retail": ("INSERT INTO inventory (sku, supplier_id, quantity, updated_at, event_id) VALUES (%s,%s,%s,%s,%s) "
               "ON CONFLICT (sku, supplier_id) DO UPDATE SET quantity = excluded.quantity, "
               "updated_at = excluded.updated_at, event_id = excluded.event_id "
               "WHERE (excluded.updated_at, excluded.event_id) > (inventory.updated_at, inventory.event_id)"),
    "factory": ("INSERT INTO sensor_readings (event_id, ts, sensor_id, line_id, kind, value, status, unit) "
                "VALUES (%s,%s,%s,%s,%s,%s,%s,%s) ON CONFLICT DO NOTHING"),
}


def naive(conn: psycopg2.extensions.connection, client: redis.Redis, payloads: list[bytes], workload: str) -> float:
    started = time.perf_counter()
    for payload in payloads:
        r = WORKLOADS[workload].decode(payload)
        with conn, conn.cursor() as cur:
            if workload == "retail":
                cur.execute(NAIVE_SQL["retail"], (r.sku, getattr(r, "supplier_id", "P"), getattr(r, "quantity", 0),
                                                  r.updated_at, r.event_id))
                client.delete(f"product:{r.sku}")
            else:
                cur.execute(NAIVE_SQL["factory"], (r.event_id, r.ts, r.sensor_id, r.line_id, r.kind, r.value,
                                                   r.status, r.unit))
                client.hset(f"sensor:{r.sensor_id}", "value", repr(r.value))
    return len(payloads) / (time.perf_counter() - started)


def main() -> int:
    cores = sorted(os.sched_getaffinity(0))
    mine, theirs = {cores[0]}, set(cores[1:]) or {cores[0]}
    # fsync on: commits cost what they cost. The servers get the other cores, the processor one core.
    pg, rs = PostgresServer(durable=True, cpus=theirs), RedisServer(cpus=theirs)
    os.sched_setaffinity(0, mine)
    try:
        client = redis.Redis(port=rs.port)
        print("through the sinks; per core = 1 s / the processor's CPU time per record (target >= 50,000 rec/s "
              "per core, >= 20x naive)")
        print(f"{'workload':<9} {'project rec/s':>14} {'CPU us/rec':>11} {'per core':>9} {'naive rec/s':>12} "
              f"{'ratio':>7}")
        for workload, payloads_of in (("retail", retail_payloads), ("factory", factory_payloads)):
            conn = fresh_db(pg, f"bench_{workload}")
            WORKLOADS[workload].migrate(conn)
            sink = RetailSink(CatalogCache(client)) if workload == "retail" else FactorySink(client)
            fast, cpu_us = project(conn, sink, payloads_of(RECORDS), workload)
            conn.close()
            conn = fresh_db(pg, f"bench_{workload}_naive")
            WORKLOADS[workload].migrate(conn)
            payloads = payloads_of(NAIVE_RECORDS)
            if workload == "factory":
                FactorySink().prepare(conn, [WORKLOADS[workload].decode(p) for p in payloads])
            slow = naive(conn, client, payloads, workload)
            conn.close()
            print(f"{workload:<9} {fast:>14,.0f} {cpu_us:>11.1f} {1e6 / cpu_us:>9,.0f} {slow:>12,.0f} "
                  f"{fast / slow:>6.1f}x")
        peak_mib = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
        print(f"peak RSS of the benchmark process: {peak_mib:.0f} MiB ({RECORDS:,} records per workload)")
        print(f"\nend to end through an emulated {end_to_end.SHARDS}-shard Kinesis stream (moto's server), "
              f"drain = a {end_to_end.DRAIN_RECORDS:,}-record backlog, steady = producer at {end_to_end.RATE:,.0f} rec/s "
              f"for {end_to_end.SECONDS:.0f} s")
        print(f"{'workload':<9} {'drain rec/s':>12} {'steady rec/s':>13} {'p50 ms':>7} {'p99 ms':>7}")
        emulator = end_to_end.Emulator(theirs)
        try:
            for workload in ("retail", "factory"):
                r = end_to_end.measure(workload, emulator, pg, rs, fresh_db, producer_cpus=theirs)
                print(f"{workload:<9} {r.drain_records_per_s:>12,.0f} {r.steady_records_per_s:>13,.0f} "
                      f"{r.p50_ms:>7,.0f} {r.p99_ms:>7,.0f}")
        finally:
            emulator.close()
    finally:
        pg.close()
        rs.close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
