"""Labelled synthetic factory sensor series: what the detector is measured against.

A series is one sensor sampled about once a minute for several days. Its normal life:
a base level and noise scale of its own (temperature in C, pressure in kPa), a daily
ambient cycle, three production shifts whose load moves the level (with a lunch-break dip
and a first-order lag, because machines warm up and cool down), a slow wander, noise with
some memory, readings quantized to the sensor's resolution, and sampling gaps where the
network dropped readings.

Anomalies are labelled at the instant an operator would want to hear about them:

- ``spike``: one to three readings far outside the noise;
- ``level_shift``: the level moves for good (a recalibration, a leaking seal);
- ``variance_burst``: the noise grows several-fold for a while (a loose mount, cavitation);
- ``drift_to_failure``: a slow, accelerating departure ending in a trip; labelled at the
  trip, so catching the drift before it counts as early detection;
- ``stuck``: the sensor repeats its last reading (frozen firmware, a dead transmitter);
- ``flatline``: an equipment fault; the value falls to a resting level and is reported
  flat until the repair.

Everything is drawn from one ``random.Random(seed)``: the same seed gives the same corpus.
"""
from __future__ import annotations

import csv
import json
import math
import random
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path

EVENT_KINDS = ("spike", "level_shift", "variance_burst", "drift_to_failure", "stuck", "flatline")
DAY_S = 86400.0
PERIOD_S = 60.0
START = datetime(2026, 3, 2, tzinfo=UTC)  # a Monday
CALIBRATION_DAYS = 2.0  # no anomaly before: a detector's first days on a sensor are its calibration
# Shift load factors (06-14, 14-22, 22-06) and the midday break dip, as fractions of full load.
SHIFTS = ((6.0, 1.0), (14.0, 0.85), (22.0, 0.55))
BREAK_HOURS = ((11.5, 12.0), (18.5, 19.0), (2.5, 3.0))
BREAK_LOAD = 0.35


@dataclass(frozen=True)
class SensorType:
    kind: str
    unit: str
    base: tuple[float, float]  # range the sensor's base level is drawn from
    noise: tuple[float, float]  # range of its noise standard deviation
    load_gain: tuple[float, float]  # level added at full load, in noise units
    ambient_gain: tuple[float, float]  # daily ambient swing, in noise units
    resolution: float
    rest: float  # where the value settles when the equipment stops (ambient, gauge zero)


SENSOR_TYPES = (
    SensorType("temperature", "C", (55.0, 85.0), (0.25, 0.6), (6.0, 14.0), (2.0, 5.0), 0.01, 21.0),
    SensorType("pressure", "kPa", (220.0, 360.0), (1.2, 3.0), (4.0, 10.0), (0.5, 1.5), 0.1, 0.0),
)


@dataclass(frozen=True)
class Event:
    kind: str
    timestamp: str  # the labelled instant (RFC 3339)
    index: int  # its row in the series


@dataclass
class Series:
    name: str
    kind: str
    unit: str
    rows: list[tuple[str, float]] = field(default_factory=list)
    events: list[Event] = field(default_factory=list)


def _rfc3339(ts: datetime) -> str:
    return ts.isoformat(timespec="seconds").replace("+00:00", "Z")


def _load(hour: float) -> float:
    """Production load at an hour of the day, before the thermal lag."""
    load = SHIFTS[-1][1]
    for start, factor in SHIFTS:
        if hour >= start:
            load = factor
    if any(a <= hour < b for a, b in BREAK_HOURS):
        load *= BREAK_LOAD
    return load


@dataclass
class _Plan:
    """One anomaly to be drawn into the clean signal: rows [start, end) are affected."""

    kind: str
    label: int
    start: int
    end: int
    size: float  # in noise units, signed


def _plan_events(rng: random.Random, n: int, kinds: list[str]) -> list[_Plan]:
    """One anomaly per kind after calibration, each inside its own NAB window's worth of rows."""
    count = len(kinds)
    window = int(0.10 * n / count)
    first = int(CALIBRATION_DAYS * DAY_S / PERIOD_S) + window // 2
    slots = (n - window // 2 - first) // count
    if "level_shift" in kinds:  # it lasts to the end of the series, so it comes last
        kinds.remove("level_shift")
        kinds.append("level_shift")
    plans = []
    longest = int(0.4 * window)
    for i, kind in enumerate(kinds):
        label = first + i * slots + rng.randint(0, max(0, slots - window))
        sign = rng.choice((-1.0, 1.0))
        if kind == "spike":
            plans.append(_Plan(kind, label, label, label + rng.randint(1, 3), sign * rng.uniform(7.0, 18.0)))
        elif kind == "level_shift":
            plans.append(_Plan(kind, label, label, n, sign * rng.uniform(5.0, 12.0)))
        elif kind == "variance_burst":
            plans.append(_Plan(kind, label, label, label + rng.randint(min(20, longest), longest), rng.uniform(3.5, 7.0)))
        elif kind == "drift_to_failure":
            ramp = rng.randint(min(60, longest), longest)
            # labelled at the trip; the drift before it and the outage after it are the event
            plans.append(_Plan(kind, label, label - ramp, label + rng.randint(min(20, longest // 2), longest // 2),
                               sign * rng.uniform(10.0, 20.0)))
        elif kind == "stuck":
            plans.append(_Plan(kind, label, label, label + rng.randint(min(30, longest), longest), 0.0))
        else:  # flatline
            plans.append(_Plan(kind, label, label, label + rng.randint(min(45, longest), longest), 0.0))
    return plans


def generate_series(rng: random.Random, name: str, *, days: float = 8.0, anomalies: int = 3,
                    kinds: Sequence[str] | None = None) -> Series:
    """One sensor's readings with labelled events: `kinds` in that order, or `anomalies`
    distinct kinds drawn at random (0: a clean series)."""
    if kinds is None:
        kinds = (rng.sample(EVENT_KINDS, anomalies) if anomalies <= len(EVENT_KINDS)
                 else [rng.choice(EVENT_KINDS) for _ in range(anomalies)])
    unknown = set(kinds) - set(EVENT_KINDS)
    if unknown:
        raise ValueError(f"unknown anomaly kinds {sorted(unknown)}; known: {', '.join(EVENT_KINDS)}")
    if days < CALIBRATION_DAYS + 1:
        raise ValueError(f"a series needs at least {CALIBRATION_DAYS + 1:g} days: anomalies come after calibration")
    kinds = list(kinds)
    stype = rng.choice(SENSOR_TYPES)
    noise = rng.uniform(*stype.noise)
    base = rng.uniform(*stype.base)
    load_gain = rng.uniform(*stype.load_gain) * noise * rng.choice((1.0, 1.0, -0.5))
    ambient = rng.uniform(*stype.ambient_gain) * noise
    phase = rng.uniform(13.0, 16.0)  # warmest hour of the day
    lag = rng.uniform(8.0, 25.0)  # thermal/hydraulic time constant, minutes
    phi = rng.uniform(0.2, 0.6)  # noise memory between readings
    wander_sd, wander_tau = rng.uniform(0.3, 1.0) * noise, rng.uniform(6.0, 24.0) * 60.0
    n = int(days * DAY_S / PERIOD_S)
    signal = random.Random(rng.getrandbits(64))  # the normal life is the same whatever the anomalies
    plans = _plan_events(rng, n, kinds) if kinds else []

    clean: list[float] = []
    load, wander, ar = _load(0.0), 0.0, 0.0
    innovation = noise * math.sqrt(1 - phi * phi)
    for i in range(n):
        hour = (i * PERIOD_S / 3600.0) % 24.0
        load += (_load(hour) - load) / lag
        wander += -wander / wander_tau + signal.gauss(0.0, wander_sd * math.sqrt(2.0 / wander_tau))
        ar = phi * ar + signal.gauss(0.0, innovation)
        clean.append((base + load_gain * load + ambient * math.cos(2 * math.pi * (hour - phase) / 24.0) + wander, ar))

    values = [level + eps for level, eps in clean]
    for plan in plans:
        _draw(plan, values, clean, noise, stype, rng)

    series = Series(name, stype.kind, stype.unit)
    gaps = _gaps(signal, n, plans)
    for i in range(n):
        if i in gaps:
            continue
        jitter = signal.uniform(-2.0, 2.0)
        ts = START + timedelta(seconds=i * PERIOD_S + jitter)
        value = round(round(values[i] / stype.resolution) * stype.resolution, 6)
        series.rows.append((_rfc3339(ts), value))
    kept = [i for i in range(n) if i not in gaps]
    for plan in plans:
        row = next(r for r, i in enumerate(kept) if i >= plan.label)
        series.events.append(Event(plan.kind, series.rows[row][0], row))
    return series


def _draw(plan: _Plan, values: list[float], clean: list[tuple[float, float]], noise: float,
          stype: SensorType, rng: random.Random) -> None:
    n = len(values)
    if plan.kind == "spike":
        for i in range(plan.start, min(plan.end, n)):
            values[i] += plan.size * noise * rng.uniform(0.8, 1.0)
    elif plan.kind == "level_shift":
        for i in range(plan.start, n):
            values[i] += plan.size * noise
    elif plan.kind == "variance_burst":
        for i in range(plan.start, min(plan.end, n)):
            values[i] = clean[i][0] + clean[i][1] * plan.size
    elif plan.kind == "drift_to_failure":
        ramp = plan.label - plan.start
        for i in range(plan.start, plan.label):
            values[i] += plan.size * noise * ((i - plan.start) / ramp) ** 2
        tripped_at = values[plan.label - 1]
        for i in range(plan.label, min(plan.end, n)):  # the trip: the equipment stops and cools
            k = i - plan.label
            values[i] = stype.rest + (tripped_at - stype.rest) * math.exp(-k / 6.0) + rng.gauss(0, noise * 0.2)
    elif plan.kind == "stuck":
        frozen = values[plan.start - 1]
        for i in range(plan.start, min(plan.end, n)):
            values[i] = frozen
    else:  # flatline: falls to rest within minutes, then reports exactly rest until repaired
        before = values[plan.start - 1]
        for i in range(plan.start, min(plan.end, n)):
            k = i - plan.start
            settled = stype.rest + (before - stype.rest) * math.exp(-k / 3.0)
            values[i] = settled if abs(settled - stype.rest) > stype.resolution * 5 else stype.rest


def _gaps(rng: random.Random, n: int, plans: list[_Plan]) -> set[int]:
    """Rows lost to network outages (never the labelled rows themselves)."""
    labels = {p.label for p in plans}
    lost: set[int] = set()
    for _ in range(rng.randint(0, 3)):
        start = rng.randint(0, n - 1)
        lost.update(range(start, min(n, start + rng.randint(10, 180))))
    for _ in range(int(n * 0.002)):  # single dropped readings
        lost.add(rng.randint(0, n - 1))
    return lost - labels


@dataclass(frozen=True)
class Corpus:
    directory: Path
    series: tuple[str, ...]

    @property
    def labels_path(self) -> Path:
        return self.directory / "labels.json"

    def csv_path(self, name: str) -> Path:
        return self.directory / f"{name}.csv"

    def labels(self) -> dict[str, list[dict]]:
        return json.loads(self.labels_path.read_text())

    @classmethod
    def open(cls, directory: Path) -> Corpus:
        labels = json.loads((directory / "labels.json").read_text())
        return cls(directory, tuple(sorted(labels)))


def generate_corpus(seed: int, count: int, *, days: float = 8.0) -> Iterator[Series]:
    """`count` series; about one in six is clean (no anomaly), the rest carry two to four events."""
    rng = random.Random(seed)
    for i in range(count):
        anomalies = 0 if i % 6 == 5 else rng.randint(2, 4)
        yield generate_series(rng, f"sensor-{i:03d}", days=days, anomalies=anomalies)


def write_corpus(directory: Path, seed: int, count: int, *, days: float = 8.0) -> Corpus:
    directory.mkdir(parents=True, exist_ok=True)
    labels: dict[str, dict] = {}
    names = []
    for series in generate_corpus(seed, count, days=days):
        with (directory / f"{series.name}.csv").open("w", newline="") as out:
            writer = csv.writer(out)
            writer.writerow(("timestamp", "value"))
            writer.writerows(series.rows)
        labels[series.name] = {"kind": series.kind, "unit": series.unit,
                               "events": [{"kind": e.kind, "timestamp": e.timestamp} for e in series.events]}
        names.append(series.name)
    (directory / "labels.json").write_text(json.dumps(labels, indent=1, sort_keys=True))
    (directory / "corpus.json").write_text(json.dumps(recipe(seed, count, days)))
    return Corpus(directory, tuple(names))


GENERATOR_VERSION = 1  # bump when the same seed would give other series


def recipe(seed: int, count: int, days: float) -> dict:
    """What a generated corpus was made from: a directory holding another recipe is regenerated."""
    return {"generator": GENERATOR_VERSION, "seed": seed, "series": count, "days": days}


def is_current(directory: Path, seed: int, count: int, days: float) -> bool:
    """True when `directory` holds a labelled corpus to use as it is: generated from this very
    recipe, or brought by the user (labels.json without a recipe)."""
    if not (directory / "labels.json").exists():
        return False
    made_from = directory / "corpus.json"
    return not made_from.exists() or json.loads(made_from.read_text()) == recipe(seed, count, days)
