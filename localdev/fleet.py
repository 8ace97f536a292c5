"""A fleet of processor workers on one machine, as ECS runs them, for the fleet tests and
`make bench-scale`: worker processes (`python -m processor`) started, killed and stopped
at will, a steady producer, and a watch on the lease table that says who held which shard
when, how long the fleet took to settle, and how long any shard went without a live owner.
"""
from __future__ import annotations

import json
import signal
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

import psycopg2

from processor.produce import batches, put_all

ROOT = Path(__file__).resolve().parent.parent


@dataclass
class Worker:
    name: str
    process: subprocess.Popen
    log: Path
    started_at: float

    @property
    def pid(self) -> int:
        return self.process.pid

    @property
    def alive(self) -> bool:
        return self.process.poll() is None


class Fleet:
    """Worker processes with one environment (the task definition's), each logging to a file."""

    def __init__(self, env: dict[str, str], log_dir: Path, args: Iterable[str] = ()) -> None:
        self.env = {**env, "PYTHONUNBUFFERED": "1"}
        self.log_dir = log_dir
        self.args = list(args)
        self.workers: list[Worker] = []

    def start(self, count: int = 1) -> list[Worker]:
        started = []
        for _ in range(count):
            name = f"w{len(self.workers) + 1}"
            log = self.log_dir / f"{name}.log"
            with open(log, "w", encoding="utf-8") as out:
                process = subprocess.Popen([sys.executable, "-m", "processor", *self.args], cwd=ROOT, env=self.env,
                                           stdout=out, stderr=subprocess.STDOUT)
            worker = Worker(name, process, log, time.monotonic())
            self.workers.append(worker)
            started.append(worker)
        return started

    @property
    def live(self) -> list[Worker]:
        return [w for w in self.workers if w.alive]

    def signal(self, worker: Worker, sig: int) -> float:
        worker.process.send_signal(sig)
        return time.monotonic()

    def wait(self, worker: Worker, timeout_s: float = 60) -> int:
        return worker.process.wait(timeout_s)

    def close(self) -> None:
        for worker in self.live:
            worker.process.send_signal(signal.SIGTERM)
        for worker in self.workers:
            try:
                worker.process.wait(30)
            except subprocess.TimeoutExpired:
                worker.process.kill()
                worker.process.wait(10)


@dataclass(frozen=True)
class Sample:
    at: float  # time.monotonic()
    owners: dict[str, int | None]  # open shard -> pid of the worker holding a live lease on it


class LeaseWatch(threading.Thread):
    """Samples the lease table every `every_s` seconds. Workers are known by their pid, which
    their worker id carries (`<host>-<pid>-<random>`)."""

    def __init__(self, dsn: dict, group: str, stream: str, every_s: float = 0.1) -> None:
        super().__init__(daemon=True)
        self.dsn, self.group, self.stream, self.every_s = dsn, group, stream, every_s
        self.samples: list[Sample] = []
        self._halt = threading.Event()
        self.start()

    def run(self) -> None:
        conn = psycopg2.connect(**self.dsn)
        conn.autocommit = True
        try:
            while not self._halt.is_set():
                try:
                    with conn.cursor() as cur:
                        cur.execute("SELECT shard_id, CASE WHEN lease_expires_at >= now() THEN owner END "
                                    "FROM shard_leases WHERE consumer_group = %s AND stream = %s AND NOT finished",
                                    (self.group, self.stream))
                        owners = {shard: int(owner.split("-")[-2]) if owner else None for shard, owner in cur}
                    self.samples.append(Sample(time.monotonic(), owners))
                except psycopg2.Error:  # the schema is not there yet
                    pass
                self._halt.wait(self.every_s)
        finally:
            conn.close()

    def close(self) -> None:
        self._halt.set()
        self.join(10)

    def latest(self) -> Sample | None:
        return self.samples[-1] if self.samples else None

    def balanced_at(self, live: Iterable[Worker], since: float, timeout_s: float) -> float:
        """Seconds from `since` until every open shard has a live owner among `live` and the
        spread between them is at most one; raises if that takes longer than `timeout_s`."""
        pids = {w.pid for w in live}
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            for sample in (s for s in self.samples if s.at >= since):
                if is_balanced(sample.owners, pids):
                    return sample.at - since
            time.sleep(self.every_s)
        last = self.latest()
        raise AssertionError(f"not balanced over {sorted(pids)} within {timeout_s} s: {last.owners if last else None}")

    def longest_without_owner(self, live_pids: Iterable[int], since: float, until: float) -> dict[str, float]:
        """Per shard, the longest stretch in [since, until] when no worker in `live_pids`
        (the ones not killed) held a live lease on it."""
        live = set(live_pids)
        gaps: dict[str, float] = {}
        started: dict[str, float] = {}
        for sample in (s for s in self.samples if since <= s.at <= until):
            for shard, owner in sample.owners.items():
                gaps.setdefault(shard, 0.0)
                if owner in live:
                    if shard in started:
                        gaps[shard] = max(gaps[shard], sample.at - started.pop(shard))
                else:
                    started.setdefault(shard, sample.at)
        for shard, at in started.items():
            gaps[shard] = max(gaps[shard], until - at)
        return gaps

    def shards_per_worker(self, at: float) -> dict[int, int]:
        sample = min(self.samples, key=lambda s: abs(s.at - at))
        held: dict[int, int] = {}
        for owner in sample.owners.values():
            if owner is not None:
                held[owner] = held.get(owner, 0) + 1
        return held


def is_balanced(owners: dict[str, int | None], pids: set[int]) -> bool:
    if not owners or any(owner not in pids for owner in owners.values()):
        return False
    load = {pid: 0 for pid in pids}
    for owner in owners.values():
        load[owner] += 1
    return max(load.values()) - min(load.values()) <= 1


class SteadyProducer(threading.Thread):
    """`rate` records a second into `stream`, in ten puts a second, until closed: factory
    readings of `sensors` sensors (one partition key each), every one with its own event id."""

    def __init__(self, kinesis: object, stream: str, rate: float, sensors: int = 200) -> None:
        super().__init__(daemon=True)
        self.kinesis, self.stream, self.rate, self.sensors = kinesis, stream, rate, sensors
        self.sent = 0
        self._halt = threading.Event()

    def run(self) -> None:
        started, tick = time.monotonic(), 0
        while not self._halt.is_set():
            due = int(self.rate * (time.monotonic() - started)) - self.sent
            if due > 0:
                now = datetime.now(UTC).isoformat()
                records = []
                for n in range(self.sent, self.sent + due):
                    sensor = f"temp-{n % self.sensors:03d}"
                    body = {"event_id": str(uuid.uuid4()), "sensor_id": sensor, "line_id": "line-1",
                            "kind": "temperature", "value": 70.0 + n % 7 / 10, "unit": "C", "ts": now}
                    records.append((sensor, json.dumps(body).encode()))
                for batch in batches(records):
                    put_all(self.kinesis, self.stream, batch)
                self.sent += due
            tick += 1
            self._halt.wait(max(0.0, started + tick * 0.1 - time.monotonic()))

    def close(self) -> int:
        self._halt.set()
        self.join(30)
        return self.sent

