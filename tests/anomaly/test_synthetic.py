"""The labelled corpus generator: reproducible, factory-like, every anomaly kind as described."""
from __future__ import annotations

import random
from datetime import timedelta
from pathlib import Path

import pytest

from processor.anomaly.score import parse_timestamp
from processor.anomaly.synthetic import (
    CALIBRATION_DAYS,
    EVENT_KINDS,
    SENSOR_TYPES,
    Series,
    generate_corpus,
    generate_series,
    write_corpus,
)
from tests.anomaly.conftest import series


def test_the_same_seed_gives_the_same_corpus_and_another_seed_a_different_one() -> None:
    first = [(s.rows, s.events) for s in generate_corpus(21, 4, days=4.0)]
    again = [(s.rows, s.events) for s in generate_corpus(21, 4, days=4.0)]
    other = [(s.rows, s.events) for s in generate_corpus(22, 4, days=4.0)]
    assert first == again
    assert first != other


def test_sensors_have_their_own_units_and_scales() -> None:
    drawn = list(generate_corpus(5, 24, days=3.0))
    assert {s.unit for s in drawn} == {t.unit for t in SENSOR_TYPES}
    for stype in SENSOR_TYPES:
        means = [sum(v for _, v in s.rows) / len(s.rows) for s in drawn if s.kind == stype.kind]
        assert all(stype.base[0] - 30 < m < stype.base[1] + 30 for m in means)
        assert len({round(m) for m in means}) > 1  # each sensor has its own base


def test_series_have_a_daily_cycle_and_sampling_gaps() -> None:
    s = series(9, days=6.0)
    stamps = [parse_timestamp(ts) for ts, _ in s.rows]
    steps = [b - a for a, b in zip(stamps, stamps[1:], strict=False)]
    assert max(steps) >= timedelta(minutes=10)  # an outage
    assert sorted(steps)[len(steps) // 2] == pytest.approx(timedelta(minutes=1), abs=timedelta(seconds=3))
    by_hour = [[v for ts, v in zip(stamps, (v for _, v in s.rows), strict=True) if ts.hour == h] for h in (4, 10)]
    night, day = (sum(vs) / len(vs) for vs in by_hour)
    assert night != pytest.approx(day, abs=0.5)


def test_anomalies_come_after_calibration_each_labelled_once() -> None:
    for s in generate_corpus(3, 12, days=6.0):
        start = parse_timestamp(s.rows[0][0])
        for event in s.events:
            assert parse_timestamp(event.timestamp) - start >= timedelta(days=CALIBRATION_DAYS)
            assert s.rows[event.index][0] == event.timestamp
        assert len({e.kind for e in s.events}) == len(s.events)


def values_after(s: Series) -> list[float]:
    return [v for _, v in s.rows[s.events[0].index:]]


def test_a_stuck_sensor_repeats_one_value_and_a_flatline_sits_exactly_at_rest() -> None:
    stuck = series(4, "stuck")
    frozen = values_after(stuck)[:30]
    assert len(set(frozen)) == 1
    flat = series(4, "flatline")
    rest = {t.kind: t.rest for t in SENSOR_TYPES}[flat.kind]
    assert values_after(flat)[30:45] == [rest] * 15


def test_an_anomaly_is_drawn_on_the_same_normal_life_and_a_drift_grows_until_its_trip() -> None:
    clean, drift = series(10), series(10, "drift_to_failure")
    at = drift.events[0].index
    departure = [abs(a[1] - b[1]) for a, b in zip(drift.rows, clean.rows, strict=True)]
    start = next(i for i, d in enumerate(departure) if d > 0)
    assert start < at - 30  # the drift is under way well before the labelled trip
    assert drift.rows[:start] == clean.rows[:start]
    assert departure[at - 1] > 5 * max(departure[start:start + 5])


def test_unknown_kinds_and_too_short_series_are_refused() -> None:
    with pytest.raises(ValueError, match="unknown anomaly kinds"):
        generate_series(random.Random(1), "x", kinds=("meteor",))
    with pytest.raises(ValueError, match="at least 3 days"):
        generate_series(random.Random(1), "x", days=2.0)


def test_a_written_corpus_holds_a_csv_per_sensor_and_its_labels(tmp_path: Path) -> None:
    corpus = write_corpus(tmp_path, seed=2, count=3, days=3.0)
    labels = corpus.labels()
    assert sorted(labels) == list(corpus.series)
    for name in corpus.series:
        lines = corpus.csv_path(name).read_text().splitlines()
        assert lines[0] == "timestamp,value"
        assert {e["kind"] for e in labels[name]["events"]} <= set(EVENT_KINDS)
