"""Wire-format records built by hand, one field at a time: for the tests, the benchmarks and anyone
checking the contract by eye (the seeded, realistic traffic is `traffic.py`)."""
from __future__ import annotations

import json
import uuid
from datetime import UTC, datetime, timedelta

from processor.records import UNITS

T0 = datetime(2026, 11, 1, 12, 0, tzinfo=UTC)


def ts(seconds: float) -> str:
    return (T0 + timedelta(seconds=seconds)).isoformat().replace("+00:00", "Z")


def product(sku: str = "SKU-1", *, at: float = 0, price: str = "19.99", name: str = "Mug", event_id: str | None = None,
            category: str = "kitchen") -> dict:
    return {"type": "product_upsert", "event_id": event_id or str(uuid.uuid4()), "sku": sku, "name": name,
            "category": category, "price": price, "currency": "USD", "updated_at": ts(at)}


def stock(sku: str = "SKU-1", supplier: str = "SUP-1", quantity: int = 5, *, at: float = 0,
          event_id: str | None = None) -> dict:
    return {"type": "inventory_update", "event_id": event_id or str(uuid.uuid4()), "sku": sku,
            "supplier_id": supplier, "quantity": quantity, "updated_at": ts(at)}


def reading(sensor: str = "press-07", value: float = 70.0, *, at: float = 0, kind: str = "temperature",
            line: str = "line-2", event_id: str | None = None) -> dict:
    unit = UNITS.get(kind)
    body = {"event_id": event_id or str(uuid.uuid4()), "sensor_id": sensor, "line_id": line, "kind": kind,
            "value": value, "ts": ts(at)}
    if unit:
        body["unit"] = unit
    return body


def status(sensor: str = "mill-03", value: str = "RUNNING", *, at: float = 0) -> dict:
    return {"event_id": str(uuid.uuid4()), "sensor_id": sensor, "line_id": "line-1", "kind": "status",
            "value": value, "ts": ts(at)}


def encode(body: dict) -> bytes:
    return json.dumps(body).encode()
