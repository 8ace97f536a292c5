"""Batched writers, one per workload (processor/workloads.py), each a `Sink`.

The scheduler calls a sink's hooks around every batch (`run_batch`): `prepare` before the
batch transaction, `apply` inside it (with the dead letters and the checkpoint), then
`rollback` if the transaction failed or `after_commit` once PostgreSQL has the batch.
`maintain` runs between batches (every heartbeat) and may return gauges for the
heartbeat's metrics line; `release` runs at the heartbeat after a shard left the task.
Each sink has its own outcome type: what its `after_commit` needs, and the counts it adds
to the batch's metrics.
"""
from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from typing import Any, Protocol, TypeVar


class Outcome(Protocol):
    def metrics(self) -> Mapping[str, int]:
        """Counts for the batch's metrics line beyond records and dead letters, e.g. {"Anomalies": 2}."""
        ...


OutcomeT = TypeVar("OutcomeT", bound=Outcome)


class Sink(Protocol[OutcomeT]):
    def maintain(self, conn: Any) -> Mapping[str, float] | None:
        """Periodic housekeeping between batches, on the batch connection; gauges to report, if any."""

    def prepare(self, conn: Any, records: Sequence) -> None:
        """Work that must precede the batch transaction, in a transaction of its own."""

    def apply(self, cur: Any, records: Sequence) -> OutcomeT:
        """The batch's writes, inside the batch transaction."""
        ...

    def rollback(self) -> None:
        """The batch transaction failed: forget what `apply` held outside it."""

    def after_commit(self, conn: Any, outcome: OutcomeT) -> None:
        """The work that follows the commit (Redis): it may lag PostgreSQL, never lead it."""

    def release(self) -> None:
        """A shard left this task (lost, handed over, ended): forget what is held in memory about
        keys another task may now move on, so that it is read again from where that task keeps it."""


def run_batch(conn: Any, sink: Sink[OutcomeT], records: Sequence,
              within: Callable[[Any], None] | None = None) -> OutcomeT:
    """One batch through a sink's hooks: prepare; apply (and `within(cur)`, e.g. the
    checkpoint) in one transaction; after_commit. If the transaction fails the sink
    rolls back what it held outside it, and the error propagates."""
    sink.prepare(conn, records)
    try:
        with conn, conn.cursor() as cur:
            outcome = sink.apply(cur, records)
            if within is not None:
                within(cur)
    except BaseException:
        sink.rollback()
        raise
    sink.after_commit(conn, outcome)
    return outcome
