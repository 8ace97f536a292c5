"""The registry every extension joins with `@extension`, and what several share."""
from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any
from xml.sax.saxutils import escape

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


def speaks_json(response: Any) -> bool:
    """The request came in a JSON protocol (X-Amz-Target, a JSON body), not the query protocol."""
    return bool(response.headers.get("X-Amz-Target")) or "json" in (response.headers.get("Content-Type") or "")


def error_answer(response: Any, status: int, message: str, *, json_type: str, xml_code: str) -> tuple[int, dict, str]:
    """An error in the protocol the request came in (`response`: moto's handler): JSON with
    `__type` for the JSON services, the query services' XML `ErrorResponse` otherwise."""
    if speaks_json(response):
        body = json.dumps({"__type": json_type, "message": message})
        return status, {"Content-Type": "application/x-amz-json-1.1", "x-amzn-ErrorType": json_type}, body
    return status, {"Content-Type": "text/xml"}, (
        f"<ErrorResponse><Error><Type>Sender</Type><Code>{xml_code}</Code><Message>{escape(message)}</Message>"
        "</Error><RequestId>localdev</RequestId></ErrorResponse>")
