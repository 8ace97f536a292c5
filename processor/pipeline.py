"""Overlap the two halves of a batch: the processor's own work and the database's.

A batch costs the processor CPU (fetching, decoding, building the statement) and then
waits while PostgreSQL and Redis apply it on their own cores. `Writer` applies one batch
on a writer thread while the caller fetches and decodes the next, so the two waits
overlap instead of adding up. Batches are applied strictly in submission order, one at
a time, on one connection: a batch's checkpoint can never commit before an earlier
batch's. A failure surfaces, with the batch it belongs to, when the caller next
settles; whatever the caller prepared meanwhile is its to drop.
"""
from __future__ import annotations

import sys
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
from typing import Any

# The writer thread needs the GIL back each time PostgreSQL or Redis answers. With the
# default 5 ms switch interval a decoding main thread keeps it for up to 5 ms per round
# trip; 0.5 ms keeps the writer's round trips close to their real latency.
SWITCH_INTERVAL_S = 0.0005


class Writer:
    def __init__(self) -> None:
        self._pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix="batch-writer")
        self._in_flight: tuple[Future, Callable[[Any], None] | None] | None = None
        if sys.getswitchinterval() > SWITCH_INTERVAL_S:
            sys.setswitchinterval(SWITCH_INTERVAL_S)

    @property
    def busy(self) -> bool:
        return self._in_flight is not None

    def submit(self, apply: Callable[[], Any], done: Callable[[Any], None] | None = None) -> None:
        """Settle the batch in flight, then start `apply` on the writer thread; `done(result)`
        runs on the caller's thread when this batch is settled."""
        self.settle()
        self._in_flight = (self._pool.submit(apply), done)

    def settle(self) -> None:
        """Wait for the batch in flight; run its `done`, or raise what `apply` raised."""
        if self._in_flight is None:
            return
        future, done = self._in_flight
        self._in_flight = None
        result = future.result()
        if done is not None:
            done(result)

    def close(self) -> None:
        """Settle (an error still propagates) and stop the thread."""
        try:
            self.settle()
        finally:
            self._pool.shutdown(wait=True)
