"""Per-sensor streaming detector: exponentially weighted mean and variance, z-score.

State is four numbers and the last applied (ts, event_id): small, constant in time,
JSON-serializable for Redis, and replay-safe (a reading at or before the last applied
one is ignored, so a redelivered batch cannot move the state twice).
"""
from __future__ import annotations

import json
import math
from dataclasses import dataclass

ALPHA = 0.05  # ~20-sample memory: follows slow drift, not single spikes
WARMUP = 20  # readings before a sensor may raise anomalies
THRESHOLD = 4.0  # |z| above which a reading is anomalous
MIN_STD_FRACTION = 1e-3  # floor on std relative to |mean| to avoid dividing by ~0


@dataclass
class DetectorState:
    count: int = 0
    mean: float = 0.0
    var: float = 0.0
    last_ts: str = ""
    last_event_id: str = ""

    def to_json(self) -> str:
        return json.dumps({"count": self.count, "mean": self.mean, "var": self.var, "last_ts": self.last_ts,
                           "last_event_id": self.last_event_id}, separators=(",", ":"))

    @classmethod
    def from_json(cls, text: str | bytes | None) -> DetectorState:
        return cls(**json.loads(text)) if text else cls()


@dataclass(frozen=True)
class Verdict:
    score: float  # in [0, 1]
    anomalous: bool
    reason: str


def update(state: DetectorState, value: float, ts: str, event_id: str) -> Verdict | None:
    """Fold one reading into `state`; None when it was already applied."""
    if (ts, event_id) <= (state.last_ts, state.last_event_id):
        return None
    state.last_ts, state.last_event_id = ts, event_id
    if state.count == 0:
        state.count, state.mean, state.var = 1, value, 0.0
        return Verdict(0.0, False, "warming up")
    std = max(math.sqrt(state.var), abs(state.mean) * MIN_STD_FRACTION, 1e-9)
    z = (value - state.mean) / std
    warm = state.count >= WARMUP
    anomalous = warm and abs(z) > THRESHOLD
    # An anomalous value is folded in at a tenth of the weight so one spike does not
    # teach the detector that spikes are normal.
    alpha = ALPHA / 10 if anomalous else ALPHA
    diff = value - state.mean
    state.mean += alpha * diff
    state.var = (1 - alpha) * (state.var + alpha * diff * diff)
    state.count += 1
    score = abs(z) / (abs(z) + THRESHOLD) if warm else 0.0
    reason = f"z={z:+.1f} vs mean {state.mean:.2f}" if anomalous else "normal"
    return Verdict(min(1.0, score), anomalous, reason)
