"""The score means what it says: on normal data a tail probability of 10^-k is reached by at most 3x 10^-k."""
from __future__ import annotations

from pathlib import Path

import pytest

from processor.anomaly import __main__ as cli
from processor.anomaly import calibration, classes, skab
from processor.anomaly.detector import CONFIG, LIKELIHOOD_DECADES, DetectorConfig, score_of, tail_probability
from tests.anomaly.conftest import SKAB


@pytest.fixture(scope="module")
def rows(skab_runs: list[skab.Run]) -> list[calibration.Row]:
    return calibration.evaluate(SKAB, calibration.SEEDS)


def test_every_class_of_normal_data_is_within_three_times_its_claim_at_every_decade(rows: list[calibration.Row]) -> None:
    assert {r.name for r in rows} == {"skab_normal", "factory_traffic", *classes.BY_NAME}
    assert all(r.readings >= 50_000 for r in rows)  # enough that 3x 1e-5 allows a reading or more
    assert calibration.misses(rows) == []


def test_the_score_is_a_documented_function_of_the_tail_probability() -> None:
    for k in (2, 3, 4, 6, 10):
        assert tail_probability(score_of(10.0 ** -k)) == pytest.approx(10.0 ** -k)
    assert score_of(1.0) == 0.0 and score_of(10.0 ** -LIKELIHOOD_DECADES) == pytest.approx(0.5)  # the alarm


def test_a_detector_that_claims_more_than_its_history_shows_is_named_with_its_class_and_decade() -> None:
    # GIVEN a detector that extrapolates every tail as steeply as a Gaussian's, whatever the sample
    bold = DetectorConfig(slope_min=3.0, slope_max=3.0, novelty_power=10.0)
    series = calibration.normal_life("heavy_tailed", 10)
    # WHEN the bursty counters' normal life goes through it
    row = calibration.measure("heavy_tailed", "bursty counters", series, bold)
    # THEN its first bursts are called rarer than they are, and the miss names the class and the decade
    missed = calibration.misses([row])
    assert missed and all(m.startswith("heavy_tailed: ") for m in missed)
    assert any("p <= 1e-5" in m for m in missed)
    assert calibration.misses([calibration.measure("heavy_tailed", "bursty counters", series, CONFIG)]) == []


def test_the_reliability_table_shows_claimed_and_observed_per_class_and_decade(rows: list[calibration.Row]) -> None:
    text = calibration.render(rows)
    for k in calibration.DECADES:
        assert f"p <= 1e-{k}" in text
    for r in rows:
        assert r.name in text and f"{r.readings:,}" in text


def test_the_calibration_command_exits_1_naming_the_class_and_decade_that_fail(
        monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    over = calibration.Row("square_wave", "two levels", 3, 10_000, {2: 10, 3: 2, 4: 4, 5: 0})  # 4e-4 at 1e-4
    monkeypatch.setattr(calibration, "evaluate", lambda root, seeds: [over])
    assert cli.main(["calibration", "--skab", str(tmp_path), "--json", str(tmp_path / "c.json")]) == 1
    err = capsys.readouterr().err
    assert "square_wave" in err and "p <= 1e-4" in err and "4.0x" in err
    assert (tmp_path / "c.json").exists()
