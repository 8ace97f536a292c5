"""The six classes of series a Gaussian residual model misjudges: each generator draws what its class is."""
from __future__ import annotations

import itertools
import random
import statistics

import pytest

from processor.anomaly import classes, nab


def values(name: str, seed: int, anomalies: bool = False) -> list[float]:
    return [v for _, v in classes.generate(name, random.Random(seed), anomalies=anomalies).rows]


def longest_run(xs: list[float]) -> int:
    return max(len(list(g)) for _, g in itertools.groupby(xs))


def test_the_same_seed_gives_the_same_series_and_another_seed_another() -> None:
    for c in classes.CLASSES:
        first = classes.corpus([1, 2], anomalies=True, classes=[c.name])
        again = classes.corpus([1, 2], anomalies=True, classes=[c.name])
        assert [(s.rows, s.events) for s in first] == [(s.rows, s.events) for s in again]
        assert first[0].rows != first[1].rows


@pytest.mark.parametrize("seed", range(6))
def test_a_periodic_series_repeats_itself_every_cycle_without_noise(seed: int) -> None:
    xs = values("periodic", seed)
    span = max(xs) - min(xs)
    # the cycle is whatever lag makes the series repeat: a clean signal repeats to its printed precision
    best = min(max(abs(a - b) for a, b in zip(xs, xs[lag:], strict=False)) for lag in range(6, 1441))
    assert best <= 0.02 * span  # (to its printed precision: some are printed to a few digits)


@pytest.mark.parametrize("seed", range(6))
def test_a_square_wave_sits_on_two_levels_and_switches_on_a_schedule(seed: int) -> None:
    xs = values("square_wave", seed)
    mid = (min(xs) + max(xs)) / 2
    low, high = statistics.median(x for x in xs if x < mid), statistics.median(x for x in xs if x >= mid)
    near = [min(abs(x - low), abs(x - high)) for x in xs]
    assert max(near) <= 0.1 * (high - low)  # two levels, with at most a little noise
    switches = [i for i in range(1, len(xs)) if abs(xs[i] - xs[i - 1]) > 0.5 * (high - low)]
    gaps = {b - a for a, b in zip(switches, switches[1:], strict=False)}
    assert len(switches) >= 10 and len(gaps) <= 2  # high for a stretch, low for another, every cycle


@pytest.mark.parametrize("seed", range(6))
def test_a_low_cardinality_rate_takes_a_few_whole_values_and_mostly_its_base(seed: int) -> None:
    xs = values("low_cardinality", seed)
    assert len(set(xs)) <= 7 and all(x == int(x) for x in xs)
    assert statistics.mode(xs) == min(xs) and xs.count(min(xs)) > 0.5 * len(xs)


@pytest.mark.parametrize("seed", range(6))
def test_a_heavy_tailed_counter_bursts_ten_to_a_thousand_times_its_median(seed: int) -> None:
    xs = values("heavy_tailed", seed)
    quiet = statistics.median([x for x in xs if x > 0])  # some counters read 0 between bursts
    bursts = [x for x in xs if x >= 10 * max(quiet, 1.0)]
    assert 0.002 * len(xs) < len(bursts) < 0.2 * len(xs)
    assert max(xs) <= 1000 * max(quiet, 1.0) * 4  # a burst's size wanders a little around its draw


@pytest.mark.parametrize("seed", range(6))
def test_a_flat_or_quantised_day_holds_a_value_for_long_stretches_or_takes_few_steps(seed: int) -> None:
    xs = values("flat_or_quantised", seed)
    assert longest_run(xs) >= 10 or len(set(xs)) <= 12


@pytest.mark.parametrize("seed", range(6))
def test_spikes_come_ever_more_often(seed: int) -> None:
    xs = values("spike_density", seed)
    base = statistics.median(xs)
    spikes = [i for i, x in enumerate(xs) if x - base > 0.5 * (max(xs) - base)]
    half = len(xs) // 2
    assert sum(i >= half for i in spikes) > sum(i < half for i in spikes) > 0


@pytest.mark.parametrize("name", [c.name for c in classes.CLASSES])
def test_anomalies_come_after_the_probation_each_in_a_window_of_its_own_and_change_the_series(name: str) -> None:
    for seed in range(8):
        normal = classes.generate(name, random.Random(seed))
        drawn = classes.generate(name, random.Random(seed), anomalies=True)
        assert normal.events == [] and 1 <= len(drawn.events) <= 3
        assert {e.kind for e in drawn.events} <= set(classes.BY_NAME[name].anomalies)
        spans = nab.windows(len(drawn.rows), [e.index for e in drawn.events])
        assert len(spans) == len(drawn.events)  # no two labels share a window
        assert all(e.index >= nab.probation_rows(len(drawn.rows)) for e in drawn.events)
        for e in drawn.events:
            assert drawn.rows[e.index][0] == e.timestamp
        assert drawn.rows != normal.rows and len(drawn.rows) == len(normal.rows)  # the same life, anomalies drawn in


def test_an_unknown_class_is_refused_with_the_known_ones_named() -> None:
    with pytest.raises(ValueError, match="periodic"):
        classes.generate("sawtooth", random.Random(1))
