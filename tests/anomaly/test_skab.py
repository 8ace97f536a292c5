"""Real data: SKAB's water-pump runs, streamed through the detector as the factory sink streams them."""
from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from processor.anomaly import nab, skab
from processor.anomaly.detector import CONFIG, DetectorState, observe


@pytest.fixture(scope="module")
def flagged(skab_runs: list[skab.Run]) -> dict[str, list[int]]:
    return {run.name: skab.detect(run).flags for run in skab_runs}


def test_most_runs_are_flagged_within_a_minute_of_the_anomaly_they_hold(
        skab_runs: list[skab.Run], flagged: dict[str, list[int]]) -> None:
    caught = []
    for run in skab_runs:
        onset = run.anomaly.index(1)
        if any(flagged[run.name][onset:onset + int(skab.WINDOW_S)]):
            caught.append(run.name)
    assert len(caught) >= 0.7 * len(skab_runs), f"only {len(caught)} of {len(skab_runs)}: {caught}"


def test_once_flagged_the_line_stays_flagged_through_most_of_the_anomalous_regime(
        skab_runs: list[skab.Run], flagged: dict[str, list[int]]) -> None:
    covered = [sum(f for f, a in zip(flagged[r.name], r.anomaly, strict=True) if a) / sum(r.anomaly)
               for r in skab_runs if any(flagged[r.name][i] for i, a in enumerate(r.anomaly) if a)]
    assert sum(covered) / len(covered) > 0.85


def test_the_valve_runs_are_quiet_before_their_anomaly(skab_runs: list[skab.Run], flagged: dict[str, list[int]]) -> None:
    valves = [r for r in skab_runs if r.name.startswith("valve")]
    before = [sum(flagged[r.name][:r.anomaly.index(1)]) for r in valves]
    normal_rows = sum(r.anomaly.index(1) for r in valves)
    assert sum(1 for b in before if b == 0) >= 0.85 * len(valves)
    assert sum(before) < 0.02 * normal_rows


def test_the_scores_are_nab_and_f1_figures_above_the_null_detector_and_the_baselines(
        skab_runs: list[skab.Run], flagged: dict[str, list[int]]) -> None:
    ours = skab.score("project", skab_runs, [flagged[r.name] for r in skab_runs])
    null = skab.score("null", skab_runs, [[0] * len(r.anomaly) for r in skab_runs])
    assert null.nab == {"standard": 0.0, "reward_low_FP_rate": 0.0, "reward_low_FN_rate": 0.0}
    assert all(v > skab.LEADERBOARD_CHANGEPOINT[0][1] for v in ours.nab.values())
    assert ours.outlier.f1 > 0.7


def test_one_sensor_at_a_time_a_score_at_every_windows_left_edge_is_perfect_and_silence_is_null(
        skab_runs: list[skab.Run]) -> None:
    def left_edges(run: skab.Run, sensor: int) -> list[float]:
        spans = nab.windows(len(run.times), [i for i, cp in enumerate(run.changepoint) if cp])
        edges = {left for left, _ in spans}
        return [1.0 if i in edges else 0.0 for i in range(len(run.times))]

    perfect = skab.single_series_nab(skab_runs, left_edges)
    silent = skab.single_series_nab(skab_runs, lambda run, sensor: [0.0] * len(run.times))
    assert perfect == pytest.approx({p.name: 100.0 for p in nab.PROFILES})
    assert silent == {p.name: 0.0 for p in nab.PROFILES}


def test_one_sensor_at_a_time_the_score_is_the_processors_own(skab_runs: list[skab.Run]) -> None:
    run = skab_runs[0]
    state = DetectorState()
    rows = enumerate(zip(run.times, run.values, strict=True))
    expected = [observe(state, ts, row[3], f"{i:09d}").score for i, (ts, row) in rows]
    assert skab.sensor_scores(run, 3) == expected
    assert max(expected) > 0.0


def test_an_incident_on_a_normal_run_ends_instead_of_latching_for_hours(skab_normal_run: skab.Run) -> None:
    flags = skab.detect(skab_normal_run).flags
    runs, current = [], 0
    for f in flags + [0]:
        if f:
            current += 1
        elif current:
            runs.append(current)
            current = 0
    assert sum(flags) < 0.3 * len(flags)
    assert max(runs, default=0) <= 2 * CONFIG.incident_max_age  # a sensor's incident ages out, then it is normal


def test_a_run_that_is_not_in_skabs_format_is_refused_with_the_file_named(tmp_path: Path) -> None:
    (tmp_path / "valve1").mkdir()
    (tmp_path / "valve1" / "0.csv").write_text("datetime;x\n2020-01-01 00:00:00;1\n")
    with pytest.raises(skab.SkabError, match=r"valve1/0.csv: columns"):
        skab.load(tmp_path)
    with pytest.raises(skab.SkabError, match="is not a directory"):
        skab.load(tmp_path / "missing")


def test_the_leaderboards_rates_make_its_f1_on_each_runs_rows_after_the_first_400_and_not_on_whole_runs(
        skab_runs: list[skab.Run]) -> None:
    test_share = skab.anomalous_share(skab_runs, skab.TRAIN_ROWS)
    whole_share = skab.anomalous_share(skab_runs)
    for name, f1, far, mar in skab.LEADERBOARD_OUTLIER:
        if far is None or mar is None:
            continue
        assert round(skab.implied_f1(test_share, far, mar), 2) == f1, name
        assert skab.implied_f1(whole_share, far, mar) < f1 - 0.04, name


def test_on_the_leaderboards_rows_the_lines_f1_is_at_least_the_leaderboards_best(
        skab_runs: list[skab.Run], flagged: dict[str, list[int]]) -> None:
    ours = skab.score("project", skab_runs, [flagged[r.name] for r in skab_runs])
    assert ours.test.f1 >= skab.LEADERBOARD_OUTLIER[0][1]
    assert ours.test.missing_alarm_rate < skab.LEADERBOARD_OUTLIER[0][3]


def test_the_outlier_rates_count_only_the_rows_from_the_start_asked_for() -> None:
    t0 = datetime(2020, 3, 1, tzinfo=UTC)
    rows = 6
    run = skab.Run("valve1/x.csv", [t0 + timedelta(seconds=i) for i in range(rows)], [(0.0,) * 8] * rows,
                   [0, 0, 0, 1, 1, 0], [0, 0, 0, 1, 0, 1])
    flags = [1, 1, 0, 1, 0, 0]  # two false alarms before row 2, one anomalous row caught, one missed
    whole = skab.outlier_score([run], [flags])
    assert (round(whole.f1, 3), whole.false_alarm_rate, whole.missing_alarm_rate) == (0.4, 0.5, 0.5)
    later = skab.outlier_score([run], [flags], start=2)
    assert (round(later.f1, 3), later.false_alarm_rate, later.missing_alarm_rate) == (0.667, 0.0, 0.5)
    with pytest.raises(ValueError, match="5 flags for 6 rows"):
        skab.outlier_score([run], [flags[:5]])
