"""Load for the read benchmarks, in one asyncio loop: open loop at a fixed offered rate, and closed loop
to saturation.

Open loop: request i is due at start + i / rate whether or not earlier answers came back, and its
latency is counted from when it was due, not from when it was sent, so a stall in the server (or in
this client) shows in the latency instead of slowing the offered load (no coordinated omission). How
late this process started requests (`send_lag`) is reported beside, so a client that could not keep up
is seen as such.
"""
from __future__ import annotations

import asyncio
import os
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path

clock = time.perf_counter  # not the loop's clock: uvloop's ticks in milliseconds
Request = Callable[[], Awaitable[bool]]  # sends one request; True when it was answered as expected


def percentile(values: list[float], p: float) -> float:
    """The p-th percentile (nearest rank) of `values`; 0 for none."""
    if not values:
        return 0.0
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, max(0, round(p / 100 * len(ordered) + 0.5) - 1))]


@dataclass(frozen=True)
class Slice:
    """One open-loop run's raw figures (seconds)."""

    rate: float
    latencies: list[float]
    lags: list[float]  # how late this client started each request
    failed: int
    wall_s: float
    cpu_s: float


@dataclass(frozen=True)
class OpenLoop:
    offered_per_s: float
    answered_per_s: float  # answers over the time from the first due request to the last answer
    p50_ms: float
    p99_ms: float
    max_ms: float
    send_lag_p99_ms: float  # how late this client started a request, 99th percentile
    failed: int
    client_cpu_share: float  # this process's CPU time over the wall time: near 1.0, the client is the limit

    @classmethod
    def of(cls, slices: list[Slice]) -> OpenLoop:
        """The slices' requests together (slices of one rate, interleaved with another load's)."""
        latencies = [x for s in slices for x in s.latencies]
        wall = sum(s.wall_s for s in slices)
        return cls(slices[0].rate, len(latencies) / wall, percentile(latencies, 50) * 1e3,
                   percentile(latencies, 99) * 1e3, max(latencies) * 1e3,
                   percentile([x for s in slices for x in s.lags], 99) * 1e3, sum(s.failed for s in slices),
                   sum(s.cpu_s for s in slices) / wall)


async def open_loop(request: Request, rate: float, seconds: float) -> Slice:
    count = max(1, int(rate * seconds))
    latencies: list[float] = []
    lags: list[float] = []
    failed = 0

    async def one(due: float) -> None:
        nonlocal failed
        lags.append(clock() - due)
        try:
            ok = await request()
        except Exception:
            ok = False
        latencies.append(clock() - due)
        failed += not ok

    start = clock() + 0.05
    cpu = time.process_time()
    tasks = []
    for i in range(count):
        due = start + i / rate
        wait = due - clock()
        if wait > 0:
            await asyncio.sleep(wait)
        tasks.append(asyncio.create_task(one(due)))
    await asyncio.gather(*tasks)
    return Slice(rate, latencies, lags, failed, clock() - start, time.process_time() - cpu)


@dataclass(frozen=True)
class ClosedLoop:
    answered_per_s: float
    p50_ms: float
    p99_ms: float
    answers: int
    failed: int
    client_cpu_share: float


async def closed_loop(request: Request, concurrency: int, seconds: float) -> ClosedLoop:
    """`concurrency` callers, each sending its next request when the last is answered, for `seconds`."""
    latencies: list[float] = []
    failed = 0
    end = clock() + seconds

    async def caller() -> None:
        nonlocal failed
        while clock() < end:
            sent = clock()
            try:
                ok = await request()
            except Exception:
                ok = False
            latencies.append(clock() - sent)
            failed += not ok

    start, cpu = clock(), time.process_time()
    await asyncio.gather(*(caller() for _ in range(concurrency)))
    wall = clock() - start
    return ClosedLoop(len(latencies) / wall, percentile(latencies, 50) * 1e3, percentile(latencies, 99) * 1e3,
                      len(latencies), failed, (time.process_time() - cpu) / wall)


def proc_cpu_s(pid: int, children: bool = False) -> float:
    """CPU seconds of a process from /proc (with `children`: also of the children it has reaped)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return sum(int(f) for f in fields[11:15 if children else 13]) / os.sysconf("SC_CLK_TCK")
