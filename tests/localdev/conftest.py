"""Fixtures the localdev tests share."""
from __future__ import annotations

from collections.abc import Iterator

import pytest

from localdev import moto_extensions
from localdev.servers import MotoServer


@pytest.fixture(scope="module")
def emulator() -> Iterator[MotoServer]:
    """moto's server with this project's extensions, one per test module."""
    moto_extensions.apply_all()
    server = MotoServer()
    yield server
    server.close()
