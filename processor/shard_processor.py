"""One owned shard, through the KCL's record-processor lifecycle: `initialize`, then
`process_records` page by page (each page one batch, committed with its checkpoint),
ending in one of `lease_lost`, `shard_ended` or `shutdown_requested`.

Pure: it decodes pages and keeps the shard's positions; the scheduler
(processor/scheduler.py) fetches the pages, commits the batches and owns the lease.
"""
from __future__ import annotations

import enum
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from processor.records import DeviceMessage, Poison, Record


class State(enum.Enum):
    READING = "reading"
    ENDED = "ended"  # a closed shard read to its end and checkpointed finished: children may start
    LOST = "lost"  # the lease expired or moved: the new owner reads on from the checkpoint
    STOPPED = "stopped"  # shut down or handed over, after the batch in hand committed


_NOT_SEEN = object()


@dataclass(frozen=True)
class Batch:
    """One page of one shard, decoded: what commits in one transaction."""

    shard_id: str
    records: Sequence[Mapping[str, Any]]  # as GetRecords returned them
    valid: list[Record]
    poison: list[tuple[Mapping[str, Any], Poison]]
    last_sequence: str | None  # the new checkpoint (None: a final empty page)
    finished: bool  # the shard is closed and this is its end
    millis_behind: int | None
    started: float  # time.perf_counter() when decoding began


class ShardProcessor:
    def __init__(self, shard_id: str, decode: Callable[[bytes], Record]) -> None:
        self.shard_id = shard_id
        self.decode = decode
        self.state = State.READING
        self.iterator: str | None = None
        self.checkpoint: str | None = None  # committed
        self.position: str | None = None  # handed to the writer, perhaps not committed yet
        self.ending_sequence: str | None = None  # set once ListShards reports the shard closed
        self._tip_after: object = _NOT_SEEN  # the position from which an empty read found the tip

    # -- lifecycle --------------------------------------------------------------------
    def initialize(self, checkpoint: str | None, iterator: str | None) -> None:
        self.checkpoint, self.position, self.iterator = checkpoint, checkpoint, iterator
        self._tip_after = _NOT_SEEN

    def process_records(self, records: Sequence[Mapping[str, Any]], next_iterator: str | None,
                        millis_behind: int | None) -> Batch | None:
        """One GetRecords answer: the batch to commit, or None for an empty page that ends nothing."""
        finished = next_iterator is None or (not records and self._read_to_end(millis_behind))
        if not records and not finished:
            self.iterator = next_iterator
            self._tip_after = self.position if millis_behind == 0 else _NOT_SEEN
            return None
        started = time.perf_counter()
        decode = self.decode
        decoded = [decode(r["Data"]) for r in records]
        valid: list[Record] = []
        poison: list[tuple[Mapping[str, Any], Poison]] = []
        for record, d in zip(records, decoded, strict=True):
            if isinstance(d, Poison):
                poison.append((record, d))
            elif isinstance(d, DeviceMessage):  # its readings; the record also dead-lettered if one was refused
                valid.extend(d.readings)
                if d.refusal is not None:
                    poison.append((record, d.refusal))
            else:
                valid.append(d)
        last = records[-1]["SequenceNumber"] if records else None
        # The next read continues after this page, committed or not: if it does not commit,
        # the scheduler drops this processor (a lost lease, a database error) and the
        # shard is read again from its checkpoint.
        self.iterator = None if finished else next_iterator
        if last is not None:
            self.position = last
        return Batch(self.shard_id, records, valid, poison, last, finished, millis_behind, started)

    def gone(self) -> Batch:
        """Kinesis no longer has the shard (a closed shard is deleted, records and all, once it is
        older than the stream's retention): nothing is left to read, so its end is the batch that
        commits it finished, and its children may start."""
        self.iterator = None
        return Batch(self.shard_id, [], [], [], None, True, None, time.perf_counter())

    def committed(self, batch: Batch) -> None:
        """The batch, its dead letters and its checkpoint are durable."""
        if batch.last_sequence is not None:
            self.checkpoint = batch.last_sequence
        if batch.finished:
            self.shard_ended()

    def lease_lost(self) -> None:
        self.state, self.iterator = State.LOST, None

    def shard_ended(self) -> None:
        self.state, self.iterator = State.ENDED, None

    def shutdown_requested(self) -> None:
        self.state, self.iterator = State.STOPPED, None

    # -- helpers ------------------------------------------------------------------------
    @property
    def at_tip(self) -> bool:
        """The last read found nothing new at the tip, and everything before it has committed."""
        return self.state is State.READING and self._tip_after == self.position == self.checkpoint

    @property
    def reading(self) -> bool:
        return self.state is State.READING and self.iterator is not None

    def resume_after(self) -> str | None:
        """Where a fresh iterator starts: after what was handed to the writer."""
        return self.position or self.checkpoint

    def _read_to_end(self, millis_behind: int | None) -> bool:
        """A closed shard read to its end. Kinesis says so with a null NextShardIterator;
        an empty page at the tip of a shard that ListShards reports closed means the same
        (and is the only sign some emulators give)."""
        if self.ending_sequence is None:
            return False
        position = self.position or self.checkpoint
        return (position is not None and int(position) >= int(self.ending_sequence)) or millis_behind == 0
