"""When to read a shard next, within Kinesis' per-shard read budget.

Kinesis gives each shard 5 GetRecords calls a second and 2 MB/s of reads, shared by every
shared-throughput consumer of the stream: the processor, and the Firehose delivery stream
that archives the same stream (it polls each shard about once a second). Over the budget
every reader of that shard gets ProvisionedThroughputExceededException. So, per shard:

* at the tip (nothing returned, MillisBehindLatest 0): one read every `tip_interval_s`
  (1 s by default, as the KCL waits between reads that returned nothing);
* behind (MillisBehindLatest > 0, or a full page): back to back, but never more than
  `max_reads_per_s` (3 by default: with Firehose's 1, one call a second stays spare);
* throttled: wait with exponential backoff and jitter, for this shard only.
"""
from __future__ import annotations

import random
from collections.abc import Callable
from dataclasses import dataclass


@dataclass(frozen=True)
class ReadBudget:
    tip_interval_s: float = 1.0
    max_reads_per_s: float = 3.0
    throttle_base_s: float = 1.0  # Kinesis counts calls over a second: wait about that long first
    throttle_cap_s: float = 10.0

    def __post_init__(self) -> None:
        if not 0 < self.max_reads_per_s <= 5:
            raise ValueError("max_reads_per_s must be above 0 and at most 5, the shard's GetRecords limit")
        if self.tip_interval_s < 1 / self.max_reads_per_s:
            raise ValueError("tip_interval_s must not be shorter than 1 / max_reads_per_s")

    @property
    def min_interval_s(self) -> float:
        return 1.0 / self.max_reads_per_s


class ShardPacer:
    """One shard's next read time."""

    def __init__(self, budget: ReadBudget, now: float, jitter: Callable[[], float] = random.random) -> None:
        self.budget = budget
        self.jitter = jitter
        self.next_read_at = now  # a new shard is read at once
        self.throttles = 0  # in a row

    def ready(self, now: float) -> bool:
        return now >= self.next_read_at

    def read(self, now: float, *, behind: bool) -> None:
        """A read answered: `behind` = MillisBehindLatest > 0 or the page was full."""
        self.throttles = 0
        self.next_read_at = now + (self.budget.min_interval_s if behind else self.budget.tip_interval_s)

    def throttled(self, now: float) -> float:
        """The shard's read budget is spent: back off (equal jitter), and return the wait."""
        self.throttles += 1
        ceiling = min(self.budget.throttle_cap_s, self.budget.throttle_base_s * 2 ** (self.throttles - 1))
        wait = max(self.budget.min_interval_s, ceiling * (0.5 + self.jitter() / 2))
        self.next_read_at = now + wait
        return wait

    def retry(self, now: float) -> None:
        """Read again soon, within the budget (e.g. after renewing an expired iterator)."""
        self.next_read_at = now + self.budget.min_interval_s
