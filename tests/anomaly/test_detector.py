"""The streaming detector: what it flags, and that its state survives a hand-over."""
from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta

import pytest

from processor.anomaly import nab
from processor.anomaly.detector import BUCKETS, DetectorState, observe
from processor.anomaly.synthetic import KINDS
from tests.anomaly.conftest import readings, series

BASE = datetime(2026, 11, 1, tzinfo=UTC)


def alarms(rows, state: DetectorState | None = None) -> list[int]:  # noqa: ANN001
    state = state or DetectorState()
    return [i for i, (ts, value, eid) in enumerate(rows) if (v := observe(state, ts, value, eid)) and v.anomalous]


@pytest.mark.parametrize("kind", KINDS)
def test_each_kind_of_anomaly_is_flagged_inside_its_window_and_nowhere_else(kind: str) -> None:
    s = series(3, kind)
    flagged = [i for i in alarms(readings(s)) if i >= nab.probation_rows(len(s.rows))]
    (left, right), = nab.windows(len(s.rows), [e.index for e in s.events])
    assert flagged, f"{kind} at row {s.events[0].index} was not flagged"
    assert all(left <= i <= right for i in flagged), f"alarms outside the {kind} window: {flagged}"


@pytest.mark.parametrize("seed", [1, 2, 3, 4])
def test_a_clean_week_with_shifts_breaks_gaps_and_daily_cycles_raises_no_alarm(seed: int) -> None:
    s = series(seed, days=7.0)
    assert s.events == []
    assert alarms(readings(s)) == []


def test_a_detector_restored_from_redis_mid_series_gives_exactly_the_same_output(redis_client) -> None:  # noqa: ANN001
    rows = readings(series(5, "variance_burst", "stuck", "drift_to_failure"))
    whole = DetectorState()
    expected = [observe(whole, *row) for row in rows]
    # GIVEN a task that hands the sensor over through Redis at several points, one inside an anomaly
    cuts = [1, 29, 3000, 3500, 5000, len(rows) - 1]
    state, got, start = DetectorState(), [], 0
    for cut in cuts + [len(rows)]:
        got.extend(observe(state, *row) for row in rows[start:cut])
        redis_client.set("detector:press-1", state.to_json())
        state = DetectorState.from_json(redis_client.get("detector:press-1"))  # a new task picks it up
        start = cut
    assert got == expected
    assert state.to_json() == whole.to_json()


def test_the_state_is_small_and_the_same_size_after_a_day_as_after_a_week() -> None:
    rows = readings(series(6, days=7.0))
    state = DetectorState()
    sizes = {}
    for i, row in enumerate(rows):
        observe(state, *row)
        if i in (1440, len(rows) - 1):
            sizes[i] = json.loads(state.to_json())
    day, week = sizes.values()
    assert day.keys() == week.keys() and len(week["profile"]) == BUCKETS
    assert len(state.to_json()) < 1600
    assert all(not isinstance(v, (list, dict)) for k, v in week.items() if k != "profile")


def test_a_replayed_or_older_reading_does_not_move_the_state() -> None:
    rows = readings(series(7, days=3.0))
    state = DetectorState()
    for row in rows[:500]:
        observe(state, *row)
    before = state.to_json()
    assert observe(state, *rows[499]) is None  # redelivered
    assert observe(state, *rows[10]) is None  # older, arriving late
    assert state.to_json() == before


def test_a_state_stored_by_an_older_detector_version_is_replaced_by_a_fresh_one() -> None:
    old = '{"count": 40, "mean": 70.0, "var": 0.1, "last_ts": "2026-11-01T12:00:40", "last_event_id": "x"}'
    assert DetectorState.from_json(old) == DetectorState()
    assert DetectorState.from_json(None) == DetectorState()


def test_the_score_is_in_the_unit_interval_and_half_or_more_exactly_when_an_alarm_is_raised() -> None:
    state = DetectorState()
    for ts, value, eid in readings(series(8, "spike", "level_shift", "flatline")):
        verdict = observe(state, ts, value, eid)
        assert 0.0 <= verdict.score <= 1.0
        assert verdict.anomalous == (verdict.score >= 0.5)
        assert verdict.anomalous == (verdict.reason not in ("normal", "warming up"))


def test_a_stored_state_that_is_not_a_state_of_this_version_is_replaced_by_a_fresh_one() -> None:
    good = json.loads(DetectorState(count=3, event_id="e", level=1.5).to_json())
    broken = [
        "not json", "[1, 2]", json.dumps({**good, "var": None}), json.dumps({**good, "count": True}),
        json.dumps({**good, "surprise": 1}), json.dumps({**good, "profile": [0.0] * (BUCKETS - 1)}),
        json.dumps({**good, "profile": [None] * BUCKETS}), json.dumps({**good, "event_id": 7}),
    ]
    assert DetectorState.from_json(json.dumps(good)) == DetectorState(count=3, event_id="e", level=1.5)
    assert [DetectorState.from_json(text) for text in broken] == [DetectorState()] * len(broken)


def test_absurd_readings_that_overflow_the_statistics_do_not_poison_the_handed_over_state() -> None:
    # GIVEN readings at the edge of float range: the variance overflows, and JSON has no
    # infinity or NaN, so the stored state holds nulls where numbers belong
    state = DetectorState()
    for i, x in enumerate([1e300, -1e300] * 40):
        observe(state, BASE + timedelta(seconds=i), x, f"e{i:03d}")
    stored = state.to_json()
    assert json.loads(stored)["var"] is None
    # THEN the next task starts that sensor afresh instead of failing on it
    restored = DetectorState.from_json(stored)
    assert restored == DetectorState()
    assert observe(restored, BASE + timedelta(seconds=100), 70.0, "e100") is not None
