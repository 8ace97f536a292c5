"""End to end: the producer, an emulated Kinesis stream (moto's server, its own process), the
processor as it runs in its task (pinned to the bench's core), PostgreSQL and Redis.

Two measurements per workload, each on a fresh 2-shard stream and database:
  * drain: a backlog of `DRAIN_RECORDS` realistic records (`processor.traffic`, with
    duplicates, reordering and poison, as the producer sends them) is in the stream before
    the processor starts; records/s = records / time from start to the last commit.
  * steady: `python -m processor.produce` sends at `RATE` records/s for `SECONDS` s while
    the processor runs, as in production (default poll interval, 1,000-record pages); the
    rate is what the producer achieved, every record it sent is checked as processed;
    record-to-commit latency = commit time of a record's batch - the time Kinesis accepted
    the record (ApproximateArrivalTimestamp), over every record (processor.metrics).
"""
from __future__ import annotations

import json
import os
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import boto3
import psycopg2

from localdev.servers import PostgresServer, RedisServer, free_port, wait_for
from processor.config import ProcessorConfig
from processor.produce import batches, put_all
from processor.scheduler import Scheduler
from processor.traffic import Faults
from processor.workloads import WORKLOADS

ROOT = Path(__file__).resolve().parent.parent
DRAIN_RECORDS = int(os.environ.get("BENCH_E2E_RECORDS", "20000"))
RATE = float(os.environ.get("BENCH_E2E_RATE", "2000"))
SECONDS = float(os.environ.get("BENCH_E2E_SECONDS", "15"))
SHARDS = 2
FAULTS = Faults(duplicates=0.01, reorder=0.02, poison=0.001)


@dataclass(frozen=True)
class Result:
    drain_records_per_s: float
    steady_records_per_s: float
    p50_ms: float | None
    p99_ms: float | None
    records: int


class Emulator:
    """moto's server (with the project's extensions) in a process of its own, on `cpus`."""

    def __init__(self, cpus: set[int]) -> None:
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.process = subprocess.Popen([sys.executable, "-m", "localdev.emulator", "--port", str(self.port)],
                                        cwd=ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                                        preexec_fn=lambda: os.sched_setaffinity(0, cpus))
        self.kinesis = boto3.client("kinesis", region_name="us-east-1", endpoint_url=self.url,
                                    aws_access_key_id="bench", aws_secret_access_key="bench")
        wait_for(self._up, 30, "the Kinesis emulator")

    def _up(self) -> bool:
        try:
            self.kinesis.list_streams()
            return True
        except Exception:
            return False

    def stream(self, shards: int = SHARDS) -> str:
        name = f"bench-{uuid.uuid4().hex[:8]}"
        self.kinesis.create_stream(StreamName=name, ShardCount=shards)
        self.kinesis.get_waiter("stream_exists").wait(StreamName=name, WaiterConfig={"Delay": 0.1, "MaxAttempts": 50})
        return name

    def close(self) -> None:
        self.process.terminate()
        self.process.wait(timeout=10)


def _settings(workload: str, stream: str, pg: PostgresServer, database: str, rs: RedisServer) -> ProcessorConfig:
    return ProcessorConfig(
        workload=workload, stream_name=stream, region="us-east-1", db_host="127.0.0.1", db_port=pg.port,
        db_name=database, db_secret_arn=None, db_user="test", db_password=pg.password, db_sslmode="disable",
        db_sslrootcert=None, redis_host="127.0.0.1", redis_port=rs.port, redis_tls=False,
        redis_auth_secret_arn=None, redis_password=rs.password, consumer_group=f"{workload}-processor",
        metrics_namespace="Pipeline/bench",
    )


def _processor(settings: ProcessorConfig, emulator: Emulator) -> Scheduler:
    processor = Scheduler(settings, kinesis=emulator.kinesis)
    processor.metrics.stream = open(os.devnull, "w")
    return processor


def _drain(workload: str, emulator: Emulator, settings_of: Callable[[str], ProcessorConfig]) -> float:
    stream = emulator.stream()
    for batch in batches(WORKLOADS[workload].generate(DRAIN_RECORDS, faults=FAULTS, seed=1)):
        put_all(emulator.kinesis, stream, batch)
    processor = _processor(settings_of(stream), emulator)
    started = time.monotonic()
    stats = processor.run(exit_when_idle_s=1.0)
    if stats.last_commit_at is None:
        raise RuntimeError(f"{workload}: the processor committed nothing")
    return stats.records / (stats.last_commit_at - started)


def _steady(workload: str, emulator: Emulator, settings_of: Callable[[str], ProcessorConfig],
            producer_cpus: set[int]) -> tuple[Scheduler, float]:
    stream = emulator.stream()
    processor = _processor(settings_of(stream), emulator)
    runner = threading.Thread(target=processor.run, kwargs={"exit_when_idle_s": 2.0})
    runner.start()
    env = {**os.environ, "AWS_ENDPOINT_URL": emulator.url, "AWS_ACCESS_KEY_ID": "bench",
           "AWS_SECRET_ACCESS_KEY": "bench", "AWS_REGION": "us-east-1", "AWS_DEFAULT_REGION": "us-east-1"}
    produced = subprocess.run(
        [sys.executable, "-m", "processor.produce", workload, "--stream", stream, "--rate", str(RATE),
         "--duration", str(SECONDS), "--duplicates", "0.01", "--reorder", "0.02", "--poison", "0.001"],
        cwd=ROOT, env=env, capture_output=True, text=True, preexec_fn=lambda: os.sched_setaffinity(0, producer_cpus))
    runner.join()
    if produced.returncode != 0:
        raise RuntimeError(f"producer failed: {produced.stderr.strip()}")
    summary = json.loads(produced.stdout.strip().splitlines()[-1])
    if processor.stats.records < summary["sent"]:
        raise RuntimeError(f"{workload}: {summary['sent']} records sent, {processor.stats.records} processed")
    return processor, summary["records_per_s"]


def measure(workload: str, emulator: Emulator, pg: PostgresServer, rs: RedisServer,
            fresh_db: Callable[[PostgresServer, str], psycopg2.extensions.connection],
            producer_cpus: set[int]) -> Result:
    def settings_of(stream: str) -> ProcessorConfig:
        database = f"e2e_{workload}_{uuid.uuid4().hex[:6]}"
        conn = fresh_db(pg, database)
        WORKLOADS[workload].migrate(conn)  # the migrate step; the processor runs no DDL
        conn.close()
        return _settings(workload, stream, pg, database, rs)

    drain = _drain(workload, emulator, settings_of)
    processor, steady = _steady(workload, emulator, settings_of, producer_cpus)
    return Result(drain, steady, processor.latency.quantile(0.5), processor.latency.quantile(0.99),
                  processor.stats.records)
