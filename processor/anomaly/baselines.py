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
