"""The streaming detector: a sharp per-reading score, a latched incident, and state that survives a hand-over."""
from __future__ import annotations

import itertools
import json
import math
import random
import sys
from datetime import UTC, datetime, timedelta

import pytest
import redis

from processor.anomaly import nab, native
from processor.anomaly.detector import CONFIG, DetectorState, observe, observe_at, tail_probability
from processor.anomaly.synthetic import CALIBRATION_DAYS, DAY_S, EVENT_KINDS, PERIOD_S
from tests.anomaly.conftest import readings, series

BASE = datetime(2026, 11, 1, tzinfo=UTC)
IMPLEMENTATIONS = native.implementations()
NOT_BUILT = ("no current mypyc build of detector.py (python -m processor.anomaly.build; make setup builds it "
             "when a C compiler is present): " + native.compiled_module()[1])


@pytest.fixture(autouse=True, params=["pure", "compiled"])
def implementation(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> str:
    """Every test here runs against detector.py as Python runs it and against mypyc's build of it."""
    module = IMPLEMENTATIONS[request.param]
    if module is None:
        pytest.skip(NOT_BUILT)
    here = sys.modules[__name__]
    for name in ("CONFIG", "DetectorState", "observe", "observe_at", "tail_probability"):
        monkeypatch.setattr(here, name, getattr(module, name))
    return request.param


def scores(rows: list[tuple[datetime, float, str]], state: DetectorState | None = None) -> list[float]:
    state = state or DetectorState()
    return [observe(state, *row).score for row in rows]


def incidents(rows: list[tuple[datetime, float, str]]) -> list[tuple[int, int | None]]:
    """(opened at row, closed at row or None) of every incident the sensor had."""
    state, out = DetectorState(), []
    for i, row in enumerate(rows):
        verdict = observe(state, *row)
        if verdict.opened:
            out.append((i, None))
        elif out and out[-1][1] is None and not verdict.incident:
            out[-1] = (out[-1][0], i)
    return out


@pytest.mark.parametrize("seed", [3, 4, 5])
@pytest.mark.parametrize("kind", [k for k in EVENT_KINDS if k != "variance_burst"])
def test_each_kind_of_anomaly_peaks_inside_its_window_and_is_flagged_within_a_few_readings(kind: str, seed: int) -> None:
    s = series(seed, kind)
    got = scores(readings(s))
    (left, right), = nab.windows(len(s.rows), [e.index for e in s.events])
    label = s.events[0].index
    outside = max(x for i, x in enumerate(got[nab.probation_rows(len(got)):], nab.probation_rows(len(got)))
                  if not left <= i <= right)
    assert max(got[left:right + 1]) > outside, f"{kind}: the peak is not inside its window"
    first = next(i for i in range(left, right + 1) if got[i] >= 0.5)
    assert label <= first <= label + 5, f"{kind} at row {label}: first alarm at row {first}"


@pytest.mark.parametrize("seed", [3, 4, 5, 6])
def test_a_variance_burst_lifts_the_score_above_the_sensors_normal_life_within_half_an_hour(seed: int) -> None:
    s = series(seed, "variance_burst")
    got = scores(readings(s))
    label = s.events[0].index
    (left, right), = nab.windows(len(s.rows), [label])
    normal = sorted(x for i, x in enumerate(got) if i >= nab.probation_rows(len(got)) and not left <= i <= right)
    assert max(got[label:label + 30]) > normal[int(0.99 * len(normal))]


@pytest.mark.parametrize("seed", [3, 4, 5, 6])
def test_the_score_falls_back_once_a_level_shift_is_learnt(seed: int) -> None:
    s = series(seed, "level_shift")
    got = scores(readings(s))
    label = s.events[0].index
    # the onset is sharp: the first readings of the shift score above anything outside its window ...
    (left, right), = nab.windows(len(s.rows), [label])
    start = nab.probation_rows(len(got))
    assert max(got[label:label + 5]) > max(x for i, x in enumerate(got[start:], start) if not left <= i <= right)
    # ... and then fall back: one burst of high scores, not a plateau for the rest of the series
    assert sum(x >= 0.5 for x in got[label + 60:]) <= 3


def test_a_level_shift_far_beyond_the_daily_swing_opens_an_incident_that_closes_once_it_is_the_new_normal() -> None:
    s = series(5, "level_shift")
    label = s.events[0].index
    assert [(start, end) for start, end in incidents(readings(s)) if start >= label] == [
        (label + 7, label + 7 + CONFIG.incident_max_age)]


@pytest.mark.parametrize("seed", [1, 2, 3, 4, 5, 6])
def test_a_clean_week_of_shifts_breaks_and_gaps_opens_no_incident_after_calibration(seed: int) -> None:
    s = series(seed, days=7.0)
    assert s.events == []
    calibrated = int(CALIBRATION_DAYS * DAY_S / PERIOD_S)
    assert [start for start, _ in incidents(readings(s)) if start >= calibrated] == []
    # the per-reading flag is a one-in-a-million verdict: shift changes may touch it, rarely
    flagged = sum(x >= 0.5 for x in scores(readings(s))[calibrated:])
    assert flagged <= 0.002 * (len(s.rows) - calibrated)


def test_the_detector_learns_the_sampling_interval_instead_of_assuming_one_a_minute() -> None:
    # GIVEN the same series sampled once a second and once an hour (only the clock differs)
    rows = readings(series(8, "spike", "stuck"))
    t0 = rows[0][0]
    for step_s in (1.0, 3600.0):
        rescaled = [(t0 + (ts - t0) * (step_s / PERIOD_S), v, e) for ts, v, e in rows]
        # THEN it scores them as it scores the minute series
        assert scores(rescaled) == pytest.approx(scores(rows), abs=1e-6)


def quantized_flow(rng: random.Random, n: int) -> list[float]:
    """A flow meter that reports whole litres: a slowly wandering flow read through a 1 L step,
    so the same value comes back for long stretches (SKAB's flow channel looks like this)."""
    flow, out = 32.4, []
    for _ in range(n):
        flow += rng.gauss(0.0, 0.02) + 0.01 * (32.4 - flow)
        out.append(float(round(flow + rng.gauss(0.0, 0.3))))
    return out


def test_a_sensor_that_reports_in_whole_steps_is_not_stuck_when_its_value_sits_on_one_step_for_a_while() -> None:
    # GIVEN a quantized flow meter: runs of 20-40 identical readings are part of its normal life
    rng = random.Random(11)
    values = quantized_flow(rng, 6000)
    rows = [(BASE + timedelta(seconds=i), v, f"e{i:06d}") for i, v in enumerate(values)]
    state, stuck = DetectorState(), 0
    for row in rows:
        verdict = observe(state, *row)
        stuck += verdict.anomalous and verdict.reason.startswith("stuck")
    longest = max(len(list(g)) for _, g in itertools.groupby(values))
    assert longest >= 20, "the series should hold the long runs this test is about"
    # THEN a run is judged against the runs this sensor has had, not as a coin tossed per reading
    # (as a coin, 20 repeats at its repeat rate of ~0.45 read as a one-in-a-billion event)
    assert stuck <= 0.001 * len(rows)


def test_a_stepped_sensor_that_really_sticks_is_flagged_once_its_run_is_well_beyond_any_it_has_had() -> None:
    # GIVEN the same flow meter, then frozen on its last value for 300 readings
    rng = random.Random(12)
    values = quantized_flow(rng, 4000)
    frozen = values[-1]
    values += [frozen] * 300
    state, verdicts = DetectorState(), []
    for i, v in enumerate(values):
        verdicts.append(observe(state, BASE + timedelta(seconds=i), v, f"e{i:06d}"))
    # THEN the freeze is flagged as stuck before it has lasted 150 readings
    flagged = [i - 4000 for i, v in enumerate(verdicts) if i >= 4000 and v.anomalous and v.reason.startswith("stuck")]
    assert flagged and flagged[0] < 150


def test_a_burst_of_heavy_tailed_noise_it_has_seen_before_is_judged_by_the_sensors_own_standards() -> None:
    # GIVEN a sensor whose normal noise is heavy-tailed (Student t, 2 degrees of freedom)
    rng = random.Random(9)

    def t2() -> float:
        return rng.gauss(0, 1) / math.sqrt((rng.gauss(0, 1) ** 2 + rng.gauss(0, 1) ** 2) / 2)

    rows = [(BASE + timedelta(seconds=i), 50.0 + 0.5 * t2(), f"e{i:06d}") for i in range(20_000)]
    got = scores(rows)
    # THEN after a warm-up its ordinary outliers are not a stream of alarms: about 1 reading in 400
    # (t with 2 degrees of freedom has no variance: its largest readings are 20+ typical deviations out)
    assert sum(x >= 0.5 for x in got[2000:]) <= 0.003 * len(got[2000:])


def test_a_young_sensor_claims_no_more_than_its_history_can_show_and_one_spike_does_not_hide_the_next() -> None:
    # GIVEN new sensors with Gaussian noise, read at random intervals (as the factory's traffic arrives)
    alarms = 0
    for seed in range(20):
        rng = random.Random(seed)
        t, state, best_before = BASE, DetectorState(), 0.0
        spikes = []
        for i in range(1, 3201):
            t += timedelta(seconds=rng.expovariate(1.0))
            spike = i in (300, 900, 3000)  # WHEN 12-sigma spikes arrive, the first a few hundred readings in
            verdict = observe(state, t, rng.gauss(70.0, 0.5) + (6.0 if spike else 0.0), f"e{i:04d}")
            if spike:
                spikes.append((i, verdict))
                # THEN each spike is rarer than any ordinary reading the sensor has had since its first 100 ...
                assert verdict.score > best_before, f"seed {seed}: the spike at {i} is not above the readings before it"
            elif i > 100 and i - max((j for j, _ in spikes), default=-99) > 5:  # (a spike's own aftermath aside)
                best_before = max(best_before, verdict.score)
        for i, verdict in spikes:
            # ... but no rarer than its history can show: p >= 1/n**2 (300 readings cannot show one in a million)
            assert -math.log10(tail_probability(verdict.score)) <= CONFIG.novelty_power * math.log10(i)
        # ... (so the first did not make the next look ordinary), and with days of history a spike is an alarm
        alarms += spikes[2][1].anomalous
    assert alarms >= 18


def test_early_spikes_of_noise_free_or_heavy_tailed_life_are_not_called_one_in_a_million() -> None:
    # GIVEN a counter whose first burst (100x its median) comes after a hundred quiet readings
    rng = random.Random(4)
    values = [1000.0 * math.exp(rng.gauss(0.0, 0.2)) for _ in range(100)] + [1e5]
    state = DetectorState()
    verdicts = [observe(state, BASE + timedelta(minutes=i), v, f"e{i:04d}") for i, v in enumerate(values)]
    # THEN the burst is the rarest reading so far, but no rarer than a hundred readings can show
    q = -math.log10(tail_probability(verdicts[-1].score))
    assert q == max(-math.log10(tail_probability(v.score)) for v in verdicts)
    assert q <= CONFIG.novelty_power * math.log10(len(values))


def test_a_detector_restored_from_redis_mid_series_gives_exactly_the_same_output(redis_client: redis.Redis) -> None:
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


def test_the_state_is_a_few_kilobytes_of_numbers_the_same_shape_after_a_day_as_after_a_week() -> None:
    rows = readings(series(6, days=7.0))
    state = DetectorState()
    shapes = {}
    for i, row in enumerate(rows):
        observe(state, *row)
        if i in (1440, len(rows) - 1):
            body = json.loads(state.to_json())
            shapes[i] = ({k: len(v) if isinstance(v, list) else None for k, v in body.items()}, len(state.to_json()))
    (day, day_bytes), (week, week_bytes) = shapes.values()
    assert day == week  # the same fields, each list as long: constant in time
    assert all(isinstance(x, (int, float)) for v in json.loads(state.to_json()).values() if isinstance(v, list)
               for x in v)
    assert max(day_bytes, week_bytes) < 8_000


def test_an_exact_duplicate_is_ignored_and_a_late_reading_counts_without_moving_time_back() -> None:
    rows = readings(series(7, days=3.0))
    state = DetectorState()
    for row in rows[:500]:
        observe(state, *row)
    before = state.to_json()
    assert observe(state, *rows[499]) is None  # redelivered: same time, same event
    assert state.to_json() == before
    late = observe(state, rows[10][0], rows[499][1], "late-reading")  # a clock stepped back, or a late arrival
    assert late is not None and 0.0 <= late.score < 0.5
    assert state.t == rows[499][0].timestamp()  # applied as if it arrived now
    assert observe(state, *rows[500]) is not None


def test_the_scorers_entry_with_epoch_seconds_gives_exactly_what_observe_gives_duplicates_and_late_readings_included(
) -> None:
    rows = readings(series(8, "spike", "stuck", days=3.0))
    rows = rows[:900] + [rows[899], (rows[20][0], rows[899][1], "late-reading")] + rows[900:]
    by_datetime, by_epoch = DetectorState(), DetectorState()
    expected = [observe(by_datetime, *row) for row in rows]
    got = [observe_at(by_epoch, ts.timestamp(), value, event_id) for ts, value, event_id in rows]
    assert got == expected
    assert got[900] is None and got[901] is not None  # the duplicate ignored, the late reading counted
    assert sum(v is not None and v.anomalous for v in got) > 0
    assert by_epoch.to_json() == by_datetime.to_json()


def test_a_clock_stepped_back_an_hour_raises_nothing() -> None:
    rows = readings(series(4, days=4.0))
    step = 3500
    stepped = rows[:step] + [(ts - timedelta(hours=1), v, e) for ts, v, e in rows[step:]]
    assert scores(stepped)[step:step + 120] == pytest.approx(scores(rows)[step:step + 120], abs=0.2)
    assert max(scores(stepped)[step:step + 120]) < 0.5


def test_a_state_stored_by_an_older_detector_version_is_replaced_by_a_fresh_one() -> None:
    old = '{"count": 40, "mean": 70.0, "var": 0.1, "last_ts": "2026-11-01T12:00:40", "last_event_id": "x"}'
    assert DetectorState.from_json(old) == DetectorState()
    assert DetectorState.from_json(json.dumps({**json.loads(DetectorState().to_json()), "v": 2})) == DetectorState()
    # version 3 had the shift channel's slow baseline: its state is not this one's, whatever it holds
    v3 = {**json.loads(DetectorState(count=500, level=3.0).to_json()), "v": 3, "slow": 3.0, "slow_scale": 0.1}
    assert DetectorState.from_json(json.dumps(v3)) == DetectorState()
    assert DetectorState.from_json(None) == DetectorState()


def test_the_score_is_in_the_unit_interval_and_half_or_more_exactly_when_an_alarm_is_raised() -> None:
    state = DetectorState()
    for ts, value, eid in readings(series(8, "spike", "level_shift", "flatline")):
        verdict = observe(state, ts, value, eid)
        assert 0.0 <= verdict.score < 1.0
        assert verdict.anomalous == (verdict.score >= 0.5)
        assert verdict.anomalous == (verdict.reason not in ("normal", "warming up"))


def test_a_stored_state_that_is_not_a_state_of_this_version_is_replaced_by_a_fresh_one() -> None:
    good = json.loads(DetectorState(count=3, event_id="e", level=1.5).to_json())
    broken = [
        "not json", "[1, 2]", json.dumps({**good, "scale": None}), json.dumps({**good, "count": True}),
        json.dumps({**good, "profile": [0.0] * 24}), json.dumps({**good, "event_id": 7}),
        json.dumps({k: v for k, v in good.items() if k != "v"}),
    ]
    assert DetectorState.from_json(json.dumps(good)) == DetectorState(count=3, event_id="e", level=1.5)
    assert [DetectorState.from_json(text) for text in broken] == [DetectorState()] * len(broken)


def test_absurd_readings_that_overflow_the_statistics_do_not_poison_the_handed_over_state() -> None:
    # GIVEN readings at the edge of float range: a variance overflows, and JSON has no
    # infinity or NaN, so the stored state holds a null where a number belongs
    state = DetectorState()
    for i, x in enumerate([1e300, -1e300] * 40):
        observe(state, BASE + timedelta(seconds=i), x, f"e{i:03d}")
    stored = state.to_json()
    assert None in json.loads(stored).values()
    # THEN the next task starts that sensor afresh instead of failing on it
    restored = DetectorState.from_json(stored)
    assert restored == DetectorState()
    assert observe(restored, BASE + timedelta(seconds=100), 70.0, "e100") is not None


def test_an_absurd_reading_on_a_calm_sensor_is_an_alarm_with_a_score_not_a_nan() -> None:
    # GIVEN a calm sensor with a few hundred readings of history
    rng, state = random.Random(1), DetectorState()
    for i in range(400):
        observe(state, BASE + timedelta(seconds=i), 70.0 + rng.gauss(0.0, 1.0), f"e{i:03d}")
    # WHEN readings at the edge of float range arrive (a deviation of 1e300 standard deviations overflows)
    for i, x in enumerate((1e300, 1e308, -1e308), start=400):
        verdict = observe(state, BASE + timedelta(seconds=i), x, f"e{i:03d}")
        # THEN each is an alarm whose score is a number in the unit interval
        assert verdict.anomalous and 0.5 <= verdict.score < 1.0


def test_a_move_too_small_to_measure_against_the_sensors_scale_is_scored_not_a_crash() -> None:
    # GIVEN a sensor whose typical move is 1e300 (a counter in absurd units), then a reading of 0
    rng, state = random.Random(2), DetectorState()
    rows = [(BASE + timedelta(seconds=i), rng.gauss(0.0, 1.0) * 1e299, f"e{i:03d}") for i in range(300)]
    rows += [(BASE + timedelta(seconds=300), 0.0, "e300")]
    # WHEN it moves by 1e-300: the move over its scale underflows to 0, whose log would raise
    rows += [(BASE + timedelta(seconds=301 + i), (i + 1) * 1e-300, f"e{301 + i:03d}") for i in range(40)]
    verdicts = [observe(state, *row) for row in rows]
    # THEN every reading is scored, the tiny moves as the least surprising moves there are
    assert all(v is not None and 0.0 <= v.score < 1.0 for v in verdicts)
    assert not any(v.anomalous and v.reason.startswith("jump") for v in verdicts[302:])


def test_a_state_handed_between_the_compiled_and_the_pure_detector_carries_on_bit_for_bit(implementation: str) -> None:
    if implementation != "compiled":
        pytest.skip("one pairing is enough: this test holds both implementations itself")
    pure, compiled = IMPLEMENTATIONS["pure"], IMPLEMENTATIONS["compiled"]
    rows = readings(series(5, "variance_burst", "stuck", "drift_to_failure"))
    whole = pure.DetectorState()
    expected = [pure.observe(whole, *row) for row in rows]
    # GIVEN tasks running either detector, handing the sensor over through its JSON at each cut
    got, start, state = [], 0, compiled.DetectorState()
    for k, cut in enumerate([1, 29, 3000, 3500, 5000, len(rows)]):
        module = compiled if k % 2 == 0 else pure
        state = module.DetectorState.from_json(state.to_json())
        got.extend(module.observe(state, *row) for row in rows[start:cut])
        start = cut
    # THEN every verdict, floats by their bits, and the final state are those of one pure detector
    assert [tuple(x.hex() if isinstance(x, float) else x for x in v) for v in got] == \
        [tuple(x.hex() if isinstance(x, float) else x for x in v) for v in expected]
    assert state.to_json() == whole.to_json()
