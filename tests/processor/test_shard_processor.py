"""One shard's record-processor lifecycle (processor/shard_processor.py), pure."""
from __future__ import annotations

from processor.records import Poison
from processor.samples import encode, stock
from processor.shard_processor import ShardProcessor, State
from processor.workloads import RETAIL


def page(*sequences: int) -> list[dict]:
    return [{"SequenceNumber": str(s), "Data": encode(stock(quantity=s)) if s % 5 else b"poison"} for s in sequences]


def started(checkpoint: str | None = None) -> ShardProcessor:
    shard = ShardProcessor("shardId-0", RETAIL.decode)
    shard.initialize(checkpoint, "it-0")
    return shard


def test_a_page_becomes_one_batch_of_valid_records_and_poison() -> None:
    shard = started()
    batch = shard.process_records(page(1, 2, 5), "it-1", 100)
    assert [r.quantity for r in batch.valid] == [1, 2] and [p for _, p in batch.poison] == [Poison("not UTF-8 JSON")]
    assert batch.last_sequence == "5" and not batch.finished
    assert shard.iterator == "it-1" and shard.position == "5" and shard.checkpoint is None


def test_the_checkpoint_moves_only_when_the_batch_commits() -> None:
    shard = started("1")
    batch = shard.process_records(page(2, 3), "it-1", 0)
    assert shard.checkpoint == "1" and shard.resume_after() == "3"
    shard.committed(batch)
    assert shard.checkpoint == "3"


def test_the_tip_counts_only_once_everything_read_has_committed() -> None:
    shard = started()
    batch = shard.process_records(page(1), "it-1", 0)
    assert shard.process_records([], "it-2", 0) is None
    assert not shard.at_tip  # the page before is still in flight
    shard.committed(batch)
    assert shard.at_tip
    shard.process_records(page(2), "it-3", 0)
    assert not shard.at_tip


def test_an_empty_page_behind_the_tip_is_not_the_tip() -> None:
    shard = started()
    assert shard.process_records([], "it-1", 5000) is None and not shard.at_tip


def test_a_null_next_iterator_ends_the_shard_with_its_last_batch() -> None:
    shard = started()
    batch = shard.process_records(page(1), None, 0)
    assert batch.finished and not shard.reading
    shard.committed(batch)
    assert shard.state is State.ENDED


def test_an_empty_page_at_the_tip_of_a_closed_shard_ends_it() -> None:
    shard = started("9")
    shard.ending_sequence = "9"
    batch = shard.process_records([], "it-1", 0)
    assert batch is not None and batch.finished and batch.last_sequence is None


def test_lease_lost_and_shutdown_stop_reading() -> None:
    lost, stopped = started(), started()
    lost.lease_lost()
    stopped.shutdown_requested()
    assert (lost.state, stopped.state) == (State.LOST, State.STOPPED)
    assert not lost.reading and not stopped.reading and not lost.at_tip
