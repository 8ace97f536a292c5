"""The registry every extension joins with `@extension`, and what several share."""
from __future__ import annotations

from collections.abc import Callable
from typing import Any

EXTENSIONS: dict[str, Callable[[], None]] = {}
_applied: set[str] = set()


def extension(fn: Callable[[], None]) -> Callable[[], None]:
    if fn.__name__ in EXTENSIONS:
        raise ValueError(f"two moto extensions are called {fn.__name__}")
    EXTENSIONS[fn.__name__] = fn
    return fn


def apply_all() -> None:
    for name, fn in EXTENSIONS.items():
        if name not in _applied:
            fn()
            _applied.add(name)


def backend_state(backend: Any, name: str) -> dict:
    """Per-backend (account, region) storage for what moto itself does not keep."""
    return backend.__dict__.setdefault(f"_localdev_{name}", {})
