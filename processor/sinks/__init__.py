"""Batched writers: one per workload. `apply` runs inside the batch transaction;
`after_commit` does the Redis work once PostgreSQL has the batch."""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any


@dataclass
class Outcome:
    """What a batch did, for metrics and for the after-commit Redis step."""

    applied: int = 0  # valid records in the batch
    changed_keys: list[str] = field(default_factory=list)
    anomalies: int = 0
    redis_payload: Any = None
