"""The standard detectors the project's detector is measured against.

Both map a z-score to [0, 1] with z / (z + 1): monotone, so the NAB threshold sweep
finds each one's best operating point whatever the mapping.
"""
from __future__ import annotations

import math
from collections import deque
from collections.abc import Sequence

from processor.anomaly.nab import probation_rows


def _unit(z: float) -> float:
    z = abs(z)
    return z / (z + 1.0)


def static_threshold(values: Sequence[float]) -> list[float]:
    """Mean and standard deviation learnt once over the probationary rows, then fixed bounds."""
    learn = values[: max(2, probation_rows(len(values)))]
    mean = sum(learn) / len(learn)
    sd = math.sqrt(sum((v - mean) ** 2 for v in learn) / (len(learn) - 1)) or 1e-9
    return [_unit((v - mean) / sd) for v in values]


def windowed_gaussian(values: Sequence[float], window: int) -> list[float]:
    """Each reading's z-score against the mean and std of the `window` readings before it."""
    if window < 2:
        raise ValueError("a windowed Gaussian needs a window of at least 2 readings")
    out: list[float] = []
    recent: deque[float] = deque()
    shift = values[0] if values else 0.0  # sums around the first value keep the variance exact
    s = s2 = 0.0
    for v in values:
        k = len(recent)
        if k >= 2:
            mean = s / k
            var = (s2 - s * s / k) / (k - 1)
            sd = math.sqrt(var) if var > 1e-18 else 1e-9
            out.append(_unit((v - shift - mean) / sd))
        else:
            out.append(0.0)
        x = v - shift
        recent.append(x)
        s += x
        s2 += x * x
        if len(recent) > window:
            old = recent.popleft()
            s -= old
            s2 -= old * old
    return out


def nab_windowed_gaussian_z(values: Sequence[float], window: int = 6400, step: int = 100) -> list[float]:
    """|z| of each reading as NAB's windowed Gaussian detector sees it (nab/detectors/gaussian): against
    the mean and population standard deviation of the readings before it, over a window that grows to
    `window` readings and then slides forward `step` readings at a time; a zero standard deviation
    counts as 1e-6. The first reading has nothing before it: 0."""
    out: list[float] = []
    data: list[float] = []
    pending: list[float] = []
    mean, std = 0.0, 1.0
    total = total_sq = 0.0
    shift = values[0] if values else 0.0  # sums around the first value keep the variance exact while it grows
    for v in values:
        out.append(abs(v - mean) / std if data else 0.0)
        if len(data) < window:
            data.append(v)
            x = v - shift
            total += x
            total_sq += x * x
            k = len(data)
            mean = shift + total / k
            var = max(0.0, total_sq / k - (total / k) ** 2)
        else:
            pending.append(v)
            if len(pending) < step:
                continue
            data = data[step:] + pending
            pending = []
            mean = math.fsum(data) / len(data)
            var = math.fsum((d - mean) ** 2 for d in data) / len(data)
        std = math.sqrt(var)
        if std == 0.0:
            std = 1e-6
    return out


def gaussian_score(z: float) -> float:
    """NAB's windowed Gaussian score of a reading |z| away: 1 - the Gaussian tail beyond it."""
    return 1.0 - 0.5 * math.erfc(z / math.sqrt(2.0))


def nab_windowed_gaussian(values: Sequence[float], window: int = 6400, step: int = 100) -> list[float]:
    """NAB's windowed Gaussian detector as NAB defines it: each reading scores 1 - the Gaussian tail
    probability beyond it (`nab_windowed_gaussian_z`); the first reading scores 0."""
    return [gaussian_score(z) if i else 0.0 for i, z in enumerate(nab_windowed_gaussian_z(values, window, step))]
