"""`make bench-scale`: the processor as a fleet on a 4-shard stream under a steady producer.

Workers are real processes (`python -m processor`) with the production defaults (the lease,
heartbeat and read budget of processor/task_settings.py), against
moto's Kinesis in its own process with the per-shard limits on (5 GetRecords/s, 2 MiB/s),
a real PostgreSQL and Redis. Phases: 1 worker, a second joins, two more join (4), the
busiest is killed with SIGKILL (3 left). For each phase it prints the shards each worker
holds over time, the time until the fleet is balanced again, records/s per worker, and
GetRecords calls/s per shard; at the end lost and duplicated records (both must be 0).
Exits 1 if the fleet did not balance within two lease durations, a shard went over its
read limits, or a record was lost or stored twice.

Environment: BENCH_SCALE_RATE (records/s, default 400), BENCH_SCALE_PHASE_S (default 30),
BENCH_SCALE_LEASE_S (default: the production lease).
"""
from __future__ import annotations

import json
import os
import signal
import sys
import tempfile
import time
import uuid
from pathlib import Path

import psycopg2

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.end_to_end import Emulator
from localdev.fleet import Fleet, LeaseWatch, SteadyProducer, Worker
from localdev.kinesis_usage import shard_usage
from localdev.servers import PostgresServer, RedisServer, wait_for
from processor.task_settings import LEASE_DURATION_S
from processor.workloads import FACTORY

SHARDS = 4
RATE = float(os.environ.get("BENCH_SCALE_RATE", "400"))
PHASE_S = float(os.environ.get("BENCH_SCALE_PHASE_S", "30"))
LEASE_S = float(os.environ.get("BENCH_SCALE_LEASE_S", "") or LEASE_DURATION_S.default)
GROUP = "scale"


def committed_by_second(log: Path) -> list[tuple[float, int]]:
    """(epoch seconds, records committed) for every batch line of a worker's log."""
    out = []
    for line in log.read_text(encoding="utf-8", errors="replace").splitlines():
        if line.startswith("{") and '"RecordsProcessed"' in line:
            body = json.loads(line)
            out.append((body["_aws"]["Timestamp"] / 1000, int(body["RecordsProcessed"]) + int(body.get("DeadLetters", 0))))
    return out


def main() -> int:
    cpus = sorted(os.sched_getaffinity(0))
    emulator = Emulator(set(cpus[-1:]))
    pg, rs = PostgresServer(), RedisServer(password="bench")
    database = f"scale_{uuid.uuid4().hex[:6]}"
    admin = psycopg2.connect(**pg.dsn())
    admin.autocommit = True
    with admin.cursor() as cur:
        cur.execute(f"CREATE DATABASE {database}")
    admin.close()
    conn = psycopg2.connect(**pg.dsn(database))
    FACTORY.migrate(conn)  # the migrate step; the processor runs no DDL
    conn.close()
    stream = emulator.stream(SHARDS)
    env = {**os.environ, "WORKLOAD": "factory", "STREAM_NAME": stream, "AWS_REGION": "us-east-1",
           "AWS_ENDPOINT_URL": emulator.url, "AWS_ACCESS_KEY_ID": "bench", "AWS_SECRET_ACCESS_KEY": "bench",
           "DB_HOST": "127.0.0.1", "DB_PORT": str(pg.port), "DB_NAME": database, "DB_USER": "test",
           "DB_PASSWORD": pg.password, "DB_SSLMODE": "disable", "REDIS_HOST": "127.0.0.1",
           "REDIS_PORT": str(rs.port), "REDIS_TLS": "false", "REDIS_PASSWORD": "bench", "CONSUMER_GROUP": GROUP,
           "LEASE_DURATION_S": str(LEASE_S), "METRICS_NAMESPACE": "Pipeline/bench"}
    logs = Path(tempfile.mkdtemp(prefix="bench-scale-"))
    fleet = Fleet(env, logs)
    watch = LeaseWatch(pg.dsn(database), GROUP, stream, every_s=0.2)
    producer = SteadyProducer(emulator.kinesis, stream, RATE)
    failures: list[str] = []
    phases: list[tuple[str, float, float, list[Worker], dict]] = []  # name, start, end, workers, shard usage
    last_usage = {"usage": shard_usage(emulator.url, stream)}
    print(f"4-shard stream, producer at {RATE:.0f} records/s; leases {LEASE_S:.0f} s; phases of {PHASE_S:.0f} s")
    try:
        producer.start()

        def phase(name: str, event_at: float, event: str) -> None:
            try:
                settle = watch.balanced_at(fleet.live, event_at, max(PHASE_S, 3 * LEASE_S))
            except AssertionError as error:
                failures.append(f"{name}: {error}")
                settle = None
            target = 2 * LEASE_S
            if settle is not None and settle > target and event != "start":
                failures.append(f"{name}: balanced after {settle:.1f} s, target {target:.0f} s")
            time.sleep(max(0.0, event_at + PHASE_S - time.monotonic()))
            usage_now = shard_usage(emulator.url, stream)
            calls = {s: u["get_records"] - last_usage["usage"].get(s, {}).get("get_records", 0)
                     for s, u in usage_now.items()}
            last_usage["usage"] = usage_now
            phases.append((name, event_at, time.monotonic(), list(fleet.live), calls))
            held = watch.shards_per_worker(time.monotonic())
            spread = ", ".join(f"{w.name}:{held.get(w.pid, 0)}" for w in fleet.live)
            settled = f"{settle:.1f} s" if settle is not None else "never"
            print(f"  {name:<22} balanced {settled:>8} after {event:<8} shards per worker {spread}")

        started = fleet.start(1)
        phase("1 worker", started[0].started_at, "start")
        joined = time.monotonic()
        fleet.start(1)
        phase("2 workers", joined, "a join")
        joined = time.monotonic()
        fleet.start(2)
        phase("4 workers", joined, "2 joins")
        held = watch.shards_per_worker(time.monotonic())
        busiest = max(fleet.live, key=lambda w: held.get(w.pid, 0))
        killed = fleet.signal(busiest, signal.SIGKILL)
        fleet.wait(busiest)
        phase("3 workers (kill -9)", killed, "a kill")
        gaps = watch.longest_without_owner([w.pid for w in fleet.live], killed, killed + PHASE_S)
        print(f"  longest a shard went without a live owner after the kill: {max(gaps.values()):.1f} s "
              f"(lease {LEASE_S:.0f} s + heartbeat)")
        sent = producer.close()
        conn = psycopg2.connect(**pg.dsn(database))
        try:
            wait_for(lambda: _count(conn, "SELECT count(*) FROM sensor_readings") >= sent, 120, "every record stored")
        except TimeoutError as error:
            failures.append(str(error))
        stored, distinct = _count(conn, "SELECT count(*) FROM sensor_readings"), _count(
            conn, "SELECT count(DISTINCT event_id) FROM sensor_readings")
        conn.close()
        usage = shard_usage(emulator.url, stream)
    finally:
        producer.close()
        fleet.close()
        watch.close()

    print("\n  phase                  records/s per worker                GetRecords calls/s per shard (processor)")
    timeline = {w.name: committed_by_second(w.log) for w in fleet.workers}
    epoch_offset = time.time() - time.monotonic()
    for name, start, end, live, calls in phases:
        rates = []
        for worker in live:
            done = sum(n for at, n in timeline[worker.name] if start + epoch_offset <= at < end + epoch_offset)
            rates.append(f"{worker.name} {done / (end - start):.0f}")
        per_shard = ", ".join(f"{calls[s] / (end - start):.2f}" for s in sorted(calls))
        print(f"  {name:<22} {', '.join(rates):<35} {per_shard}")
    total_calls = sum(u["get_records"] for u in usage.values())
    duration = phases[-1][2] - phases[0][1]
    print(f"\n  GetRecords per shard over the run: {total_calls / SHARDS / duration:.2f} calls/s on average; "
          f"peak in any one second {max(u['peak_reads_per_second'] for u in usage.values())} (limit 5); "
          f"throttled {sum(u['read_throttled'] for u in usage.values())}")
    read_twice = sum(u["records_read"] for u in usage.values()) - sent
    lost, duplicated = sent - distinct, stored - distinct
    print(f"  records: sent {sent}, stored {stored}, lost {lost}, stored twice {duplicated}; "
          f"read twice {read_twice} (the killed worker's uncommitted pages)")
    if lost or duplicated:
        failures.append(f"{lost} lost and {duplicated} duplicated records")
    if any(u["peak_reads_per_second"] > 5 for u in usage.values()):
        failures.append("a shard served more than 5 GetRecords in a second")
    for failure in failures:
        print(f"FAILED: {failure}")
    pg.close()
    rs.close()
    emulator.close()
    return 1 if failures else 0


def _count(conn: psycopg2.extensions.connection, sql: str) -> int:
    with conn, conn.cursor() as cur:
        cur.execute(sql)
        return cur.fetchone()[0]


if __name__ == "__main__":
    sys.exit(main())
