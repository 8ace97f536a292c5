"""Batched writers, one per workload, all with the same hooks the consumer calls:

* `maintain(conn)`: periodic housekeeping between batches;
* `prepare(conn, records)`: work that must precede the batch transaction, in its own;
* `apply(cur, records)`: the batch's writes, inside the batch transaction;
* `rollback()`: the batch transaction failed, forget what `apply` held outside it;
* `after_commit(conn, outcome)`: the Redis work, once PostgreSQL has the batch.
"""
from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any


@dataclass
class Outcome:
    """What a batch did, for metrics and for the after-commit Redis step."""

    anomalies: int = 0
    redis_payload: Any = None


def run_batch(conn, sink, records: Sequence, within: Callable[[Any], None] | None = None) -> Outcome:  # noqa: ANN001
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
