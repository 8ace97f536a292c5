"""The writer thread and the latency histogram, without servers."""
from __future__ import annotations

import threading
import time
from datetime import UTC, datetime

import pytest

from processor.metrics import LatencyHistogram
from processor.pipeline import Writer


def test_batches_are_applied_one_at_a_time_in_submission_order_off_the_callers_thread() -> None:
    writer, applied, settled, threads = Writer(), [], [], set()
    running = threading.Lock()

    def apply(n: int) -> int:
        assert running.acquire(blocking=False), "two batches in flight at once"
        threads.add(threading.get_ident())
        time.sleep(0.01 * (n % 2))  # odd batches are slower: order must not depend on it
        applied.append(n)
        running.release()
        return n * 10

    for n in range(6):
        writer.submit(lambda n=n: apply(n), settled.append)
    writer.close()
    assert applied == list(range(6)) and settled == [0, 10, 20, 30, 40, 50]
    assert threading.get_ident() not in threads


def test_a_failed_batch_surfaces_at_the_next_settle_and_its_done_never_runs() -> None:
    writer, settled = Writer(), []

    def fail() -> None:
        raise RuntimeError("database went away")

    writer.submit(fail, settled.append)
    with pytest.raises(RuntimeError, match="database went away"):
        writer.submit(lambda: "next", settled.append)  # the caller learns before handing over the next batch
    assert settled == [] and not writer.busy
    writer.submit(lambda: "after recovery", settled.append)
    writer.close()
    assert settled == ["after recovery"]


def arrival(seconds: float) -> dict:
    return {"ApproximateArrivalTimestamp": datetime.fromtimestamp(seconds, UTC)}


def test_latency_quantiles_come_from_every_record_and_memory_stays_fixed() -> None:
    histogram = LatencyHistogram()
    buckets = len(histogram.counts)
    committed = 1_000_000.0
    # 990 records 5.5 ms old, 10 records 2.5 s old: p50 and p99 fall in the 5-6 ms bucket, p99.5 in the tail
    assert histogram.add([arrival(committed - 0.0055)] * 990, committed) == pytest.approx(5.5, abs=0.1)
    assert histogram.add([arrival(committed - 2.5)] * 10, committed) == pytest.approx(2500.0, abs=0.1)
    assert histogram.total == 1000
    assert histogram.quantile(0.5) == 6.0 and histogram.quantile(0.99) == 6.0
    assert 2500.0 <= histogram.quantile(0.995) <= 2510.0
    histogram.add([arrival(committed - 3600)] * 5, committed)  # an hour behind: the overflow bucket
    assert histogram.quantile(1.0) == float("inf") and len(histogram.counts) == buckets


def test_records_without_an_arrival_time_are_not_counted() -> None:
    histogram = LatencyHistogram()
    assert histogram.add([{"Data": b"{}"}], 0.0) is None
    assert histogram.quantile(0.99) is None
