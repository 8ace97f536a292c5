"""Per-shard read pacing (processor/pacing.py): within Kinesis' read budget, pure."""
from __future__ import annotations

import pytest

from processor.pacing import ReadBudget, ShardPacer


def test_a_new_shard_is_read_at_once() -> None:
    assert ShardPacer(ReadBudget(), now=100.0).ready(100.0)


def test_at_the_tip_a_shard_is_read_once_a_second() -> None:
    pacer = ShardPacer(ReadBudget(), now=0.0)
    pacer.read(0.0, behind=False)
    assert not pacer.ready(0.99) and pacer.ready(1.0)


def test_behind_reads_follow_each_other_but_never_above_the_configured_rate() -> None:
    pacer = ShardPacer(ReadBudget(max_reads_per_s=3), now=0.0)
    pacer.read(0.0, behind=True)
    assert pacer.next_read_at == pytest.approx(1 / 3)


def test_throttling_backs_off_exponentially_with_jitter_for_this_shard_only() -> None:
    budget = ReadBudget()
    shard, other = ShardPacer(budget, now=0.0, jitter=lambda: 1.0), ShardPacer(budget, now=0.0)
    waits = [shard.throttled(0.0) for _ in range(6)]
    assert waits == [1.0, 2.0, 4.0, 8.0, 10.0, 10.0]
    assert other.ready(0.0)
    low = ShardPacer(budget, now=0.0, jitter=lambda: 0.0)
    assert low.throttled(0.0) == 0.5  # equal jitter: between half and all of the ceiling
    shard.read(20.0, behind=True)
    assert shard.throttled(20.0) == 1.0  # a success resets the backoff


def test_a_budget_beyond_what_kinesis_allows_is_refused() -> None:
    with pytest.raises(ValueError, match="at most 5"):
        ReadBudget(max_reads_per_s=6)
    with pytest.raises(ValueError, match="tip_interval_s must not be shorter"):
        ReadBudget(tip_interval_s=0.1, max_reads_per_s=3)
