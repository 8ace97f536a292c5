"""Generators for the classes of series a per-reading score most often misjudges.

Each class is a kind of normal life that breaks a Gaussian residual model, drawn with its own
parameters per series (period, sampling, levels, noise) from one ``random.Random``:

1. ``periodic``: a noise-free periodic signal (a clean daily sine, or a sine with a harmonic);
2. ``square_wave``: two levels switched on a schedule (a duty cycle), exactly or with a little noise;
3. ``low_cardinality``: a rate that sits on a few values and jumps between them in bursts
   (key presses per interval);
4. ``heavy_tailed``: a bursty counter (bytes written per interval): long quiet stretches,
   bursts 10-1,000x the median;
5. ``flat_or_quantised``: a daily pattern with a flat segment (a clipped sine), or a daily
   pattern quantised to a few steps;
6. ``spike_density``: isolated spikes on a quiet base, their density slowly increasing.

`generate(name, rng, anomalies=False)` is the normal life alone, what the calibration is measured
on. With ``anomalies=True`` one to three of the class's anomaly kinds are drawn into it, each
labelled at its first reading, after NAB's probation and apart from each other, so that every
label has a window of its own.
"""
from __future__ import annotations

import math
import random
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from processor.anomaly import nab
from processor.anomaly.synthetic import Event, Series

START = datetime(2026, 1, 5, tzinfo=UTC)
# Sampling interval (seconds) and readings per day: the held-out kind of corpus is sampled every 5 minutes to hourly.
SAMPLING = ((300.0, 288), (600.0, 144), (900.0, 96), (3600.0, 24))


@dataclass(frozen=True)
class Shape:
    """One series' normal life before anomalies: values per row and its sampling interval."""

    values: list[float]
    step_s: float
    period: int  # rows per cycle (a day, or the switching schedule's cycle)


@dataclass(frozen=True)
class _Anomaly:
    kind: str
    start: int
    length: int


def _sampling(rng: random.Random) -> tuple[float, int]:
    return rng.choice(SAMPLING)


def _length(rng: random.Random, per_day: int) -> int:
    """Two to four weeks of readings, at least 2,000 and at most 12,000 (NAB's series are 1,000-22,000)."""
    return max(2000, min(12_000, int(per_day * rng.uniform(14.0, 28.0))))


# -- normal life ---------------------------------------------------------------------------------------------------


def _periodic(rng: random.Random) -> Shape:
    step, per_day = _sampling(rng)
    n = _length(rng, per_day)
    period = per_day if rng.random() < 0.7 else max(12, per_day // rng.choice((2, 3, 4)))
    offset, amplitude = rng.uniform(-20.0, 80.0), rng.uniform(1.0, 40.0)
    phase = rng.uniform(0.0, 2 * math.pi)
    shape = rng.choice(("sine", "harmonic", "trapezoid"))
    harmonic = rng.uniform(0.2, 0.5) if shape == "harmonic" else 0.0
    gain = rng.uniform(1.5, 4.0) if shape == "trapezoid" else 1.0  # clipped: flat tops and bottoms, ramps between
    resolution = rng.choice((0.0, amplitude * 10 ** -rng.uniform(1.5, 4.0)))  # exact, or printed to a few digits

    def at(i: int) -> float:
        wave = gain * math.sin(2 * math.pi * i / period + phase) + harmonic * math.sin(4 * math.pi * i / period)
        v = offset + amplitude * max(-1.0, min(1.0, wave)) if gain > 1.0 else offset + amplitude * wave
        return round(v / resolution) * resolution if resolution else v

    return Shape([at(i) for i in range(n)], step, period)


def _square_wave(rng: random.Random) -> Shape:
    step, per_day = _sampling(rng)
    n = _length(rng, per_day)
    period = per_day if rng.random() < 0.6 else max(8, per_day // rng.choice((2, 4, 6)))
    high = max(1, min(period - 1, int(period * rng.uniform(0.2, 0.8))))
    low_level = rng.uniform(0.0, 50.0)
    high_level = low_level + rng.uniform(1.0, 80.0)
    noise = 0.0 if rng.random() < 0.6 else (high_level - low_level) * rng.uniform(0.002, 0.02)
    shift = rng.randrange(period)
    values = [(high_level if (i + shift) % period < high else low_level) + (rng.gauss(0.0, noise) if noise else 0.0)
              for i in range(n)]
    return Shape(values, step, period)


def _low_cardinality(rng: random.Random) -> Shape:
    step, per_day = _sampling(rng)
    n = _length(rng, per_day)
    base = rng.choice((0.0, 0.0, 1.0, 2.0))
    levels = sorted(rng.sample(range(int(base) + 1, int(base) + 12), rng.randint(2, 5)))
    burst_rate, burst_len = rng.uniform(0.01, 0.08), rng.randint(1, 6)
    values, left, level = [], 0, base
    for _ in range(n):
        if left == 0 and rng.random() < burst_rate:
            left, level = rng.randint(1, burst_len), float(rng.choice(levels))
        if left:
            left -= 1
            if rng.random() < 0.3:  # a burst wanders between the levels it uses
                level = float(rng.choice(levels))
            values.append(level)
        else:
            values.append(base)
    return Shape(values, step, per_day)


def _heavy_tailed(rng: random.Random) -> Shape:
    step, per_day = _sampling(rng)
    n = _length(rng, per_day)
    median = 10 ** rng.uniform(2.0, 6.0)
    spread = rng.uniform(0.1, 0.5)  # log-normal spread of the quiet readings
    burst_rate = rng.uniform(0.005, 0.04)
    quiet_zero = rng.random() < 0.4  # some counters read exactly 0 between bursts
    values, left, size = [], 0, 0.0
    for _ in range(n):
        if left == 0 and rng.random() < burst_rate:
            left, size = rng.randint(1, 4), median * 10 ** rng.uniform(1.0, 3.0)  # 10-1,000x the median
        if left:
            left -= 1
            values.append(round(size * math.exp(rng.gauss(0.0, 0.3))))
        elif quiet_zero and rng.random() < 0.5:
            values.append(0.0)
        else:
            values.append(round(median * math.exp(rng.gauss(0.0, spread))))
    return Shape([float(v) for v in values], step, per_day)


def _flat_or_quantised(rng: random.Random) -> Shape:
    step, per_day = _sampling(rng)
    n = _length(rng, per_day)
    offset, amplitude = rng.uniform(0.0, 60.0), rng.uniform(2.0, 40.0)
    noise = 0.0 if rng.random() < 0.5 else amplitude * rng.uniform(0.005, 0.03)
    phase = rng.uniform(0.0, 2 * math.pi)
    if rng.random() < 0.5:  # a flat segment: the pattern clipped at a floor for part of each day
        floor = rng.uniform(-0.6, 0.3)
        values = [offset + amplitude * max(floor, math.sin(2 * math.pi * i / per_day + phase)) for i in range(n)]
        values = [v + rng.gauss(0.0, noise) if noise and v > offset + amplitude * floor else v for v in values]
    else:  # quantised: a daily pattern read through a few steps
        steps = rng.randint(3, 6)
        width = 2.0 * amplitude / steps
        values = [offset + width * round((amplitude * math.sin(2 * math.pi * i / per_day + phase)
                                          + rng.gauss(0.0, noise)) / width) for i in range(n)]
    return Shape(values, step, per_day)


def _spike_density(rng: random.Random) -> Shape:
    step, per_day = _sampling(rng)
    n = _length(rng, per_day)
    base, noise = rng.uniform(0.0, 50.0), rng.choice((0.0, rng.uniform(0.05, 1.0)))
    height = rng.uniform(5.0, 50.0) * (noise or 1.0)
    rate, growth = rng.uniform(1.0 / 400.0, 1.0 / 80.0), rng.uniform(1.5, 5.0)  # the density grows slowly
    values = [base + (rng.gauss(0.0, noise) if noise else 0.0)
              + (height * rng.uniform(0.7, 1.3) if rng.random() < rate * (1.0 + (growth - 1.0) * i / n) else 0.0)
              for i in range(n)]
    return Shape(values, step, per_day)


# -- anomalies -----------------------------------------------------------------------------------------------------


def _jump(values: list[float], a: _Anomaly, rng: random.Random) -> None:
    """The pattern carries on, offset by a good part of its range, for a while."""
    span = (max(values) - min(values)) or 1.0
    size = rng.choice((-1.0, 1.0)) * span * rng.uniform(0.3, 0.8)
    for i in range(a.start, min(len(values), a.start + a.length)):
        values[i] += size


def _spike(values: list[float], a: _Anomaly, rng: random.Random) -> None:
    span = (max(values) - min(values)) or 1.0
    up = max(values) + span * rng.uniform(0.3, 1.0)
    down = min(values) - span * rng.uniform(0.3, 1.0)
    values[a.start] = up if rng.random() < 0.5 else down


def _flat(values: list[float], a: _Anomaly, rng: random.Random) -> None:
    """The signal freezes where it is (a stalled machine, a sensor that stops moving)."""
    held = values[a.start - 1]
    for i in range(a.start, min(len(values), a.start + a.length)):
        values[i] = held


def _hold(values: list[float], a: _Anomaly, rng: random.Random) -> None:
    """A value the series visits briefly is held for a long stretch (a key held down)."""
    level = max(values[: a.start]) * rng.uniform(0.8, 1.5) or 1.0
    for i in range(a.start, min(len(values), a.start + a.length)):
        values[i] = level


def _burst(values: list[float], a: _Anomaly, rng: random.Random) -> None:
    """A burst far beyond any the series has had: 20-100x its largest reading so far."""
    top = max(abs(v) for v in values[: a.start]) or 1.0
    for i in range(a.start, min(len(values), a.start + max(1, a.length // 20))):
        values[i] = top * rng.uniform(20.0, 100.0)


def _sustained(values: list[float], a: _Anomaly, rng: random.Random) -> None:
    """Burst-sized readings, one after another for a long stretch (a runaway writer)."""
    ordered = sorted(values[: a.start])
    high = ordered[int(0.995 * len(ordered))] or 1.0
    for i in range(a.start, min(len(values), a.start + a.length)):
        values[i] = high * math.exp(rng.gauss(0.0, 0.2))


def _missed_switch(values: list[float], a: _Anomaly, rng: random.Random) -> None:
    """The schedule misses a switch: the level in force stays for a whole extra stretch."""
    held = values[a.start - 1]
    for i in range(a.start, min(len(values), a.start + a.length)):
        values[i] = held


def _new_level(values: list[float], a: _Anomaly, rng: random.Random) -> None:
    """A third level the wave never takes, for a while (a stuck actuator between positions)."""
    low, high = min(values[: a.start]), max(values[: a.start])
    level = low + (high - low) * rng.choice((rng.uniform(0.3, 0.7), rng.uniform(1.3, 1.8)))
    for i in range(a.start, min(len(values), a.start + a.length)):
        values[i] = level


def _no_peak(values: list[float], a: _Anomaly, rng: random.Random) -> None:
    """A cycle's swing is missing: the signal stays near its middle for a period."""
    middle = (max(values[: a.start]) + min(values[: a.start])) / 2.0
    damp = rng.uniform(0.1, 0.4)
    for i in range(a.start, min(len(values), a.start + a.length)):
        values[i] = middle + (values[i] - middle) * damp


def _cluster(values: list[float], a: _Anomaly, rng: random.Random) -> None:
    """A burst of spikes one after another where the series has them one at a time."""
    before = values[: a.start]
    ordered = sorted(before)
    base, top = ordered[len(ordered) // 2], ordered[-1]
    for i in range(a.start, min(len(values), a.start + max(8, a.length // 10))):
        if rng.random() < 0.6:
            values[i] = base + (top - base) * rng.uniform(0.7, 1.0)


Drawer = Callable[[list[float], _Anomaly, random.Random], None]


@dataclass(frozen=True)
class SeriesClass:
    name: str
    describe: str
    normal: Callable[[random.Random], Shape]
    anomalies: dict[str, tuple[Drawer, float]]  # kind -> (drawer, length in cycles)


CLASSES: tuple[SeriesClass, ...] = (
    SeriesClass("periodic", "noise-free periodic signal (a clean daily sine)", _periodic,
                {"jump": (_jump, 0.5), "spike": (_spike, 0.0), "flat": (_flat, 0.4), "no_peak": (_no_peak, 1.0)}),
    SeriesClass("square_wave", "a square wave switching between two levels on a schedule", _square_wave,
                {"missed_switch": (_missed_switch, 1.0), "new_level": (_new_level, 0.3), "spike": (_spike, 0.0)}),
    SeriesClass("low_cardinality", "a bursty rate on a few values (key presses per interval)", _low_cardinality,
                {"hold": (_hold, 0.3), "spike": (_spike, 0.0)}),
    SeriesClass("heavy_tailed", "a heavy-tailed bursty counter (bytes written per interval)", _heavy_tailed,
                {"sustained": (_sustained, 0.3), "burst": (_burst, 0.3)}),
    SeriesClass("flat_or_quantised", "a daily pattern with a flat segment, or quantised to a few steps",
                _flat_or_quantised, {"jump": (_jump, 0.5), "flat": (_flat, 0.4), "no_peak": (_no_peak, 1.0)}),
    SeriesClass("spike_density", "isolated spikes on a quiet base, their density slowly increasing", _spike_density,
                {"cluster": (_cluster, 0.3), "spike": (_spike, 0.0), "jump": (_jump, 0.3)}),
)
BY_NAME = {c.name: c for c in CLASSES}


def generate(name: str, rng: random.Random, *, anomalies: bool = False, series_name: str | None = None) -> Series:
    """One series of the class `name`: its normal life, and with `anomalies` one to three labelled anomalies."""
    cls = BY_NAME.get(name)
    if cls is None:
        raise ValueError(f"unknown series class {name!r}; known: {', '.join(BY_NAME)}")
    shape = cls.normal(rng)
    values = list(shape.values)
    n = len(values)
    events: list[_Anomaly] = []
    if anomalies:
        kinds = rng.sample(sorted(cls.anomalies), rng.randint(1, min(3, len(cls.anomalies))))
        events = _place(rng, n, [(k, max(1, int(cls.anomalies[k][1] * shape.period))) for k in kinds])
        for a in events:
            cls.anomalies[a.kind][0](values, a, rng)
    series = Series(series_name or name, name, "")
    for i, v in enumerate(values):
        series.rows.append(((START + timedelta(seconds=i * shape.step_s)).isoformat().replace("+00:00", "Z"),
                            round(v, 6)))
    series.events = [Event(a.kind, series.rows[a.start][0], a.start) for a in events]
    return series


def _place(rng: random.Random, n: int, planned: Sequence[tuple[str, int]]) -> list[_Anomaly]:
    """Anomalies after the probation, each in a slot of its own as wide as its NAB window and its length."""
    window = int(0.10 * n / len(planned))
    first = nab.probation_rows(n) + window
    slot = (n - first) // len(planned)
    out = []
    for i, (kind, length) in enumerate(planned):
        length = min(length, max(1, slot - window))
        start = first + i * slot + rng.randint(0, max(0, slot - window - length))
        out.append(_Anomaly(kind, start, length))
    return out


def corpus(seeds: Sequence[int], *, anomalies: bool, classes: Sequence[str] | None = None) -> list[Series]:
    """One series per class and seed, named `<class>-<seed>`."""
    out = []
    for name in classes or BY_NAME:
        for seed in seeds:
            rng = random.Random(f"{name}:{seed}:{int(anomalies)}")
            out.append(generate(name, rng, anomalies=anomalies, series_name=f"{name}-{seed}"))
    return out
