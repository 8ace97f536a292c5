"""Helpers for the anomaly tests: labelled series as the processor sees them (Redis comes from tests/conftest.py)."""
from __future__ import annotations

import random
from datetime import datetime

from processor.anomaly.score import parse_timestamp
from processor.anomaly.synthetic import Series, generate_series


def series(seed: int, *kinds: str, days: float = 5.0) -> Series:
    return generate_series(random.Random(seed), f"s{seed}", days=days, kinds=kinds)


def readings(s: Series) -> list[tuple[datetime, float, str]]:
    """(ts, value, event id) per row, as the processor sees a sensor's stream."""
    return [(parse_timestamp(ts), value, f"{row:012d}") for row, (ts, value) in enumerate(s.rows)]
