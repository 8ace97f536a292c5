"""Helpers for the anomaly tests: labelled series as the processor sees them (Redis comes from tests/conftest.py)."""
from __future__ import annotations

import os
import random
from datetime import datetime
from pathlib import Path

import pytest

from processor.anomaly import skab
from processor.anomaly.score import parse_timestamp
from processor.anomaly.synthetic import Series, generate_series
from tests.helpers import skip_unless_available


def series(seed: int, *kinds: str, days: float = 5.0) -> Series:
    return generate_series(random.Random(seed), f"s{seed}", days=days, kinds=kinds)


def readings(s: Series) -> list[tuple[datetime, float, str]]:
    """(ts, value, event id) per row, as the processor sees a sensor's stream."""
    return [(parse_timestamp(ts), value, f"{row:012d}") for row, (ts, value) in enumerate(s.rows)]


SKAB = Path(os.environ.get("SKAB_DIR", Path(__file__).resolve().parents[3] / "shared" / "data" / "skab"))
NO_SKAB = f"SKAB is not at {SKAB} (set SKAB_DIR to the folder of valve1/, valve2/, other/ and anomaly-free/)"


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    skip_unless_available(items, Path(__file__).parent, (SKAB / "valve1").is_dir(), NO_SKAB, fixture="skab_runs")


@pytest.fixture(scope="session")
def skab_runs() -> list[skab.Run]:
    try:
        return skab.load(SKAB)
    except skab.SkabError as error:
        pytest.fail(f"CI=true and {NO_SKAB}: {error}")


@pytest.fixture(scope="session")
def skab_normal_run(skab_runs: list[skab.Run]) -> skab.Run:
    return skab.load_anomaly_free(SKAB)
