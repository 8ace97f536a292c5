"""Realistic traffic for both workloads, as (partition key, payload) pairs: pure, seeded.

Retail: a catalog whose popularity is skewed (a few hot products get most updates),
several suppliers per SKU, inventory updates far more frequent than product changes.
Factory: production lines of temperature, pressure, vibration, current, voltage, flow and
status sensors, each with its own baseline and noise.

Faults a real stream carries can be mixed in at given rates: duplicates (a payload sent
again), reordering (a record held back and sent later than newer ones), poison records
(payloads that break the wire contract) and, for factory, injected anomalies (spikes
far outside a sensor's noise, and FAULT statuses). Every injected anomaly is labelled
with its event id, so a detector can be scored against what was injected.
"""
from __future__ import annotations

import heapq
import json
import random
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Protocol

from processor.records import QUANTITIES

POISON = [
    b"not json at all",
    b'{"truncated": ',
    b"[1, 2, 3]",
    b'{"type": "inventory_update", "sku": "SKU-1", "quantity": -5}',
    b'{"event_id": "x", "sensor_id": "s", "kind": "humidity", "value": 1}',
    b"{\"name\": \"\\u0000\"}",
    b"\xff\xfe\x00",
]


@dataclass(frozen=True)
class Faults:
    duplicates: float = 0.0  # share of records followed by a copy of an earlier payload
    reorder: float = 0.0  # share of records held back and sent after a few newer ones
    poison: float = 0.0  # share of records replaced by a payload that breaks the contract
    anomalies: float = 0.0  # factory only: share of numeric readings turned into spikes

    def __post_init__(self) -> None:
        for name in ("duplicates", "reorder", "poison", "anomalies"):
            value = getattr(self, name)
            if not 0.0 <= value <= 1.0:
                raise ValueError(f"{name} must be a share between 0 and 1, not {value}")


@dataclass
class Labels:
    """What the generator injected, by event id."""

    anomalies: set[str] = field(default_factory=set)
    poison: int = 0
    duplicates: int = 0


def _utc(ts: datetime) -> str:
    return ts.isoformat(timespec="milliseconds").replace("+00:00", "Z")


class TrafficSource(Protocol):
    """One workload's records: `record(now, spike)` -> (partition key, body, whether an anomaly was injected)."""

    injects_anomalies: bool

    def record(self, now: datetime, spike: bool) -> tuple[str, dict, bool]: ...


class RetailTraffic:
    injects_anomalies = False

    def __init__(self, rng: random.Random, skus: int = 5000, suppliers: int = 8) -> None:
        self.rng = rng
        self.skus = [f"SKU-{i:05d}" for i in range(skus)]
        self.suppliers = [f"SUP-{i:02d}" for i in range(suppliers)]
        # Zipf-like weights: the k-th most popular SKU is updated ~1/k as often.
        self.weights = [1.0 / (k + 1) for k in range(skus)]
        self.categories = ["kitchen", "garden", "toys", "books", "audio", "outdoor", "office"]

    def record(self, now: datetime, spike: bool = False) -> tuple[str, dict, bool]:
        sku = self.rng.choices(self.skus, self.weights)[0]
        body: dict = {"event_id": str(uuid.UUID(int=self.rng.getrandbits(128), version=4)), "sku": sku,
                      "updated_at": _utc(now)}
        if self.rng.random() < 0.1:
            cents = self.rng.randint(99, 99999)
            body.update(type="product_upsert", name=f"Product {sku[4:]}", category=self.rng.choice(self.categories),
                        price=f"{cents // 100}.{cents % 100:02d}", currency="USD")
        else:
            body.update(type="inventory_update", supplier_id=self.rng.choice(self.suppliers),
                        quantity=self.rng.randint(0, 500))
        return sku, body, False


class FactoryTraffic:
    injects_anomalies = True
    ROTATION = (*QUANTITIES, "status")  # a line's sensors, in turn; each kind's baseline is its Quantity's

    def __init__(self, rng: random.Random, sensors: int = 100, sensors_per_line: int = 25) -> None:
        if sensors < 1:
            raise ValueError("a factory needs at least one sensor")
        self.rng = rng
        self.sensors = []
        for line in range(-(-sensors // sensors_per_line)):
            for n in range(min(sensors_per_line, sensors - line * sensors_per_line)):
                kind = self.ROTATION[n % len(self.ROTATION)]
                base = QUANTITIES[kind].typical * rng.uniform(0.9, 1.1) if kind != "status" else 0.0
                self.sensors.append((f"{kind[:4]}-{line}-{n:02d}", f"line-{line}", kind, base))

    def record(self, now: datetime, spike: bool) -> tuple[str, dict, bool]:
        sensor, line, kind, base = self.rng.choice(self.sensors)
        body: dict = {"event_id": str(uuid.UUID(int=self.rng.getrandbits(128), version=4)), "sensor_id": sensor,
                      "line_id": line, "kind": kind, "ts": _utc(now)}
        if kind == "status":
            faulty = spike or self.rng.random() < 0.0005
            body["value"] = "FAULT" if faulty else self.rng.choice(["RUNNING", "RUNNING", "RUNNING", "IDLE"])
            return sensor, body, faulty
        quantity = QUANTITIES[kind]
        noise = quantity.noise
        value = self.rng.gauss(base, noise)
        if spike:  # away from a physical floor: a vibration or current spikes up
            sign = 1 if quantity.minimum is not None and quantity.minimum >= 0 else self.rng.choice([-1, 1])
            value += sign * noise * self.rng.uniform(12, 25)
        if quantity.minimum is not None and value < quantity.minimum:
            value = quantity.minimum
        if quantity.maximum is not None and value > quantity.maximum:
            value = quantity.maximum
        body.update(value=round(value, 4), unit=quantity.unit)
        return sensor, body, spike


def generate(source_for: Callable[[random.Random, int], TrafficSource], count: int, *,
             faults: Faults = Faults(), seed: int = 0,
             start: datetime | None = None, step_s: float = 0.001, labels: Labels | None = None,
             sensors: int = 100) -> Iterator[tuple[str, bytes]]:
    """`count` records (plus any duplicates) from `source_for(rng, sensors)` (a workload's
    traffic, processor/workloads.py), event time advancing `step_s` per record."""
    rng = random.Random(seed)
    labels = labels if labels is not None else Labels()
    source = source_for(rng, sensors)
    now = start or datetime.now(UTC)
    held: list[tuple[int, int, tuple[str, bytes]]] = []  # heap of (release at index, i, record)
    recent: list[tuple[str, bytes]] = []
    for i in range(count):
        now += timedelta(seconds=step_s)
        if rng.random() < faults.poison:
            labels.poison += 1
            out = (f"poison-{i}", rng.choice(POISON))
        else:
            spike = source.injects_anomalies and rng.random() < faults.anomalies
            key, body, injected = source.record(now, spike)
            if injected:
                labels.anomalies.add(body["event_id"])
            out = (key, json.dumps(body).encode())
        if rng.random() < faults.reorder:
            heapq.heappush(held, (i + rng.randint(1, 20), i, out))
        else:
            yield out
            recent = (recent + [out])[-50:]
        while held and held[0][0] <= i:
            yield heapq.heappop(held)[2]
        if recent and rng.random() < faults.duplicates:
            labels.duplicates += 1
            yield rng.choice(recent)
    while held:
        yield heapq.heappop(held)[2]
