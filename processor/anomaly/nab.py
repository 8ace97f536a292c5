"""Scoring in the manner of the Numenta Anomaly Benchmark (NAB).

Facts of the method (Lavin & Ahmad, 2015, and the NAB repository), implemented here:

- each labelled event gets a window of 10% of the series' rows divided by its number of
  events, centred on the label; overlapping windows merge;
- the first min(15% of rows, 750) rows are probationary and not scored;
- within a window only the earliest detection counts, weighted by the scaled sigmoid
  2/(1+e^(5y)) - 1 of its relative position y (-1 at the window's left edge, 0 at its
  right edge), divided by its value at -1 so that the earliest detection earns tp_weight;
- a window without detection costs fn_weight;
- a detection outside every window costs fp_weight times the sigmoid of its distance past
  the previous window's right edge in window widths (a full fp_weight before any window);
- one threshold on the anomaly score is chosen per detector and profile for the whole
  corpus, the one giving the highest total;
- normalized = 100 * (raw - null) / (perfect - null), where the null detector (no
  detections) scores -fn_weight per window and the perfect one tp_weight per window.
"""
from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass


@dataclass(frozen=True)
class Profile:
    name: str
    tp_weight: float
    fp_weight: float
    fn_weight: float


PROFILES = (
    Profile("standard", 1.0, 0.11, 1.0),
    Profile("reward_low_FP_rate", 1.0, 0.22, 1.0),
    Profile("reward_low_FN_rate", 1.0, 0.11, 2.0),
)


def scaled_sigmoid(y: float) -> float:
    return -1.0 if y >= 3.0 else 2.0 / (1.0 + math.exp(5.0 * y)) - 1.0


MAX_TP = scaled_sigmoid(-1.0)


def probation_rows(n: int) -> int:
    return int(min(math.floor(0.15 * n), 0.15 * 5000))


def windows(n: int, labels: Sequence[int]) -> list[tuple[int, int]]:
    """Inclusive (left, right) row windows around the labelled rows, merged where they overlap."""
    if not labels:
        return []
    half = int(0.10 * n / len(labels)) // 2
    merged: list[tuple[int, int]] = []
    for row in sorted(labels):
        left, right = max(0, row - half), min(n - 1, row + half)
        if merged and left <= merged[-1][1]:
            merged[-1] = (merged[-1][0], max(right, merged[-1][1]))
        else:
            merged.append((left, right))
    return merged


@dataclass(frozen=True)
class Point:
    """One scorable row: its anomaly score, its unweighted NAB value, and its window (or None)."""

    score: float
    value: float
    window: tuple[str, int] | None


def points(name: str, scores: Sequence[float], spans: Sequence[tuple[int, int]]) -> list[Point]:
    """The scorable rows of one series (probation left out)."""
    start = probation_rows(len(scores))
    out = []
    k = 0
    prev_right = prev_width = None
    for i, score in enumerate(scores):
        while k < len(spans) and spans[k][1] < i:
            prev_right, prev_width = spans[k][1], spans[k][1] - spans[k][0] + 1
            k += 1
        inside = k < len(spans) and spans[k][0] <= i
        if inside:
            left, right = spans[k]
            value = scaled_sigmoid(-(right - i + 1) / (right - left + 1)) / MAX_TP
            window = (name, k)
        else:
            y = 3.0 if prev_right is None else abs(i - prev_right) / max(1.0, prev_width - 1.0)
            value = scaled_sigmoid(y)
            window = None
        if i >= start:
            out.append(Point(score, value, window))
    return out


@dataclass(frozen=True)
class Result:
    profile: Profile
    threshold: float
    raw: float
    normalized: float


def _bounds(pts: Sequence[Point], profile: Profile, n_windows: int | None) -> tuple[int, float, float]:
    """(windows, null score, perfect score): what a raw score is normalized between."""
    if n_windows is None:
        n_windows = len({p.window for p in pts if p.window is not None})
    return n_windows, -profile.fn_weight * n_windows, profile.tp_weight * n_windows


def sweep(pts: Sequence[Point], profile: Profile, n_windows: int | None = None) -> Result:
    """The best threshold over the whole corpus for `profile` (NAB's optimizer, exhaustively)."""
    n_windows, null, perfect = _bounds(pts, profile, n_windows)
    best = Result(profile, 1.1, null, _normalize(null, null, perfect))
    parts: dict[tuple[str, int], float] = {}
    total = null
    ordered = sorted(pts, key=lambda p: p.score, reverse=True)
    for idx, p in enumerate(ordered):
        if p.window is None:
            total += p.value * profile.fp_weight
        else:
            gained = p.value * profile.tp_weight
            before = parts.get(p.window)
            if before is None:
                parts[p.window] = gained
                total += gained + profile.fn_weight
            elif gained > before:
                parts[p.window] = gained
                total += gained - before
        last_of_level = idx + 1 == len(ordered) or ordered[idx + 1].score != p.score
        if last_of_level and total > best.raw:
            best = Result(profile, p.score, total, _normalize(total, null, perfect))
    return best


def at_threshold(pts: Sequence[Point], profile: Profile, threshold: float, n_windows: int | None = None) -> Result:
    n_windows, null, perfect = _bounds(pts, profile, n_windows)
    detected: dict[tuple[str, int], float] = {}
    fp = 0.0
    for p in pts:
        if p.score < threshold:
            continue
        if p.window is None:
            fp += p.value * profile.fp_weight
        else:
            detected[p.window] = max(detected.get(p.window, -math.inf), p.value * profile.tp_weight)
    raw = sum(detected.values()) + fp - profile.fn_weight * (n_windows - len(detected))
    return Result(profile, threshold, raw, _normalize(raw, null, perfect))


def _normalize(raw: float, null: float, perfect: float) -> float:
    return 0.0 if perfect == null else 100.0 * (raw - null) / (perfect - null)
