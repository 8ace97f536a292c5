"""The baselines the detector is measured against, NAB's windowed Gaussian exactly as NAB defines it."""
from __future__ import annotations

import math
import random
import statistics

import pytest

from processor.anomaly import baselines


def nab_reference(values: list[float], window: int, step: int) -> list[float]:
    """NAB's windowed Gaussian written out as its definition reads: a list of the readings so far that
    grows to `window`, then drops its oldest `step` whenever `step` new ones have waited; the mean and
    population deviation recomputed from the list each time it changes; a deviation of 0 counts as 1e-6;
    each reading scored 1 - P(|Z| beyond its distance), before it joins."""
    scores, data, waiting = [], [], []
    mean, std = 0.0, 1.0
    for v in values:
        scores.append(1.0 - 0.5 * math.erfc(abs(v - mean) / std / math.sqrt(2.0)) if data else 0.0)
        if len(data) < window:
            data.append(v)
        else:
            waiting.append(v)
            if len(waiting) < step:
                continue
            data = data[step:] + waiting
            waiting = []
        mean, std = statistics.fmean(data), statistics.pstdev(data) or 1e-6
    return scores


@pytest.mark.parametrize("window,step", [(50, 10), (6400, 100), (7, 1)])
def test_the_nab_windowed_gaussian_scores_every_reading_as_its_definition_does(window: int, step: int) -> None:
    rng = random.Random(window)
    values = [rng.gauss(10.0, 2.0) + (40.0 if rng.random() < 0.01 else 0.0) for _ in range(800)]
    values[100:130] = [values[99]] * 30  # a flat stretch, whose deviation is 0 while the window is short
    assert baselines.nab_windowed_gaussian(values, window, step) == pytest.approx(nab_reference(values, window, step),
                                                                                   abs=1e-9)


def test_the_nab_windowed_gaussian_defaults_to_nabs_window_and_step() -> None:
    rng = random.Random(3)
    values = [rng.gauss(0.0, 1.0) for _ in range(7000)]  # past one full window and a few steps
    assert baselines.nab_windowed_gaussian(values) == baselines.nab_windowed_gaussian(values, 6400, 100)
    assert baselines.nab_windowed_gaussian(values) != baselines.nab_windowed_gaussian(values, 6400, 50)


def test_a_reading_on_the_mean_scores_half_and_a_far_one_nearly_one() -> None:
    values = [1.0, 3.0, 2.0, 100.0]
    scores = baselines.nab_windowed_gaussian(values)
    assert scores[0] == 0.0 and scores[2] == pytest.approx(0.5) and scores[3] == pytest.approx(1.0)
