"""Fixtures for the anomaly detector: labelled series and a real Redis for its state."""
from __future__ import annotations

import random
from collections.abc import Iterator
from datetime import datetime

import pytest
import redis

from localdev.servers import RedisServer
from processor.anomaly.score import parse_timestamp
from processor.anomaly.synthetic import Series, generate_series


@pytest.fixture(scope="session")
def redis_server() -> Iterator[RedisServer]:
    server = RedisServer(password="anomaly-tests")
    yield server
    server.close()


@pytest.fixture()
def redis_client(redis_server: RedisServer) -> Iterator[redis.Redis]:
    client = redis.Redis(port=redis_server.port, password=redis_server.password)
    client.flushall()
    yield client
    client.close()


def series(seed: int, *kinds: str, days: float = 5.0) -> Series:
    return generate_series(random.Random(seed), f"s{seed}", days=days, kinds=kinds)


def readings(s: Series) -> list[tuple[datetime, float, str]]:
    """(ts, value, event id) per row, as the processor sees a sensor's stream."""
    return [(parse_timestamp(ts), value, f"{row:012d}") for row, (ts, value) in enumerate(s.rows)]
