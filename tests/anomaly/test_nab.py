"""NAB scoring on series small enough to reason about by hand."""
from __future__ import annotations

import pytest

from processor.anomaly import nab

N = 1000  # probation: the first 150 rows
STANDARD, LOW_FP, LOW_FN = nab.PROFILES


def score(detections: list[int], labels: list[int], profile: nab.Profile = STANDARD, n: int = N) -> float:
    scores = [1.0 if i in detections else 0.0 for i in range(n)]
    return nab.at_threshold(nab.points("s", scores, nab.windows(n, labels)), profile, 1.0).normalized


def test_windows_are_ten_percent_of_the_rows_shared_among_the_labels_and_merge_when_they_overlap() -> None:
    assert nab.windows(N, [500]) == [(450, 550)]
    assert nab.windows(N, [300, 700]) == [(275, 325), (675, 725)]
    assert nab.windows(N, [500, 510]) == [(475, 535)]


def test_the_null_detector_scores_zero_and_detecting_every_window_at_its_start_scores_one_hundred() -> None:
    assert score([], [400, 800]) == pytest.approx(0.0)
    assert score([375, 775], [400, 800]) == pytest.approx(100.0)


def test_an_earlier_detection_in_a_window_scores_more_and_only_the_first_counts() -> None:
    early, late = score([460], [500]), score([540], [500])
    assert early > late > 0
    assert score([460, 470, 540], [500]) == pytest.approx(early)


def test_a_false_positive_costs_more_far_from_a_window_than_just_after_it() -> None:
    clean = score([460], [500])
    just_after, far_away, before_any = score([460, 555], [500]), score([460, 900], [500]), score([460, 300], [500])
    assert clean > just_after > far_away
    assert far_away == pytest.approx(before_any)


def test_detections_in_the_probationary_rows_are_not_scored() -> None:
    assert score([10, 100, 460], [500]) == pytest.approx(score([460], [500]))


def test_the_profiles_weigh_false_positives_and_misses_differently() -> None:
    noisy = [460, 200, 300, 900]
    assert score(noisy, [500], LOW_FP) < score(noisy, [500], STANDARD)
    one_missed = nab.points("s", [1.0 if i == 480 else 0.0 for i in range(N)], nab.windows(N, [500, 800]))
    assert nab.at_threshold(one_missed, LOW_FN, 1.0).raw < nab.at_threshold(one_missed, STANDARD, 1.0).raw


def test_the_sweep_finds_the_threshold_that_separates_true_alarms_from_noise() -> None:
    scores = [0.0] * N
    scores[470], scores[300], scores[900] = 0.9, 0.6, 0.6
    pts = nab.points("s", scores, nab.windows(N, [500]))
    best = nab.sweep(pts, STANDARD)
    assert best.threshold == 0.9
    assert best.raw == pytest.approx(nab.at_threshold(pts, STANDARD, 0.9).raw)
    assert best.raw > nab.at_threshold(pts, STANDARD, 0.6).raw
