"""Per-sensor streaming anomaly detector, shared by the processor and the offline scorer.

Two outputs per reading, for two questions:

* **score** (0..1): how surprising this reading is, as a likelihood with a sharp onset.
  Three channels each turn their evidence into a tail probability, and the score is the
  strongest of them: ``q / (q + LIKELIHOOD_DECADES)`` with ``q = -log10(p)``, so 0.5 means a
  one-in-a-million reading. It rises at the first surprising readings and falls back as
  the detector learns the new behaviour: an incident is one burst of high scores, not a
  plateau (NAB-style scoring charges every flagged reading outside the event's window).

  - *surprise*: the reading against a fast level (an EWMA that follows within a few
    readings), in units of its recent typical residual (spikes, steps, noise bursts, the
    jump into a fault);
  - *shift*: the reading against its recent mean, in recent standard deviations (a
    window of ~60 readings: level shifts, drifts that outpace it, a sensor stepping out of
    its recent range), with the same heavy-tail discount;
  - *stuck*: a run of identical readings longer than any this sensor has had, counted
    beyond that record at how often it repeats a value (a sensor that reports in whole
    steps sits on one value for dozens of readings as part of its normal life).

  For surprise, the raw evidence is averaged over a few readings and judged against its
  own long-run distribution, learnt from what came before: its mean and spread over a few
  hundred readings. For both, how far the evidence overshoots 1.25 spreads when it does is
  learnt, and a heavier tail than a Gaussian's counts a distance out there for less. A
  sensor that is always noisy, spiky or heavy-tailed is judged by its own standards.

* **incident** (latched): whether the sensor sits in an abnormal regime. The smoothed
  value is compared with a baseline learnt only outside incidents; the incident opens
  after a few readings more than ``incident_open_z`` normal spreads away, and closes
  when the sensor returns (below ``incident_close_z`` for a while) or moves again by as
  much from where the incident settled (a second change: the regime has ended, even if
  the new normal is not the old one), or when it has lasted ``incident_max_age``
  readings (it is the new normal: its level becomes the baseline). The factory sink groups sensor incidents into one
  incident per line (processor/incidents.py).

No assumption about the sampling rate or a daily cycle: the typical interval between
readings is learnt (an outage does not redefine it), and rates are per reading. A
reading timestamped before the last one (a clock stepped back, a late reading) is
applied as if it arrived then; an exact duplicate (same time, same event id) is
ignored. What is fresh is the caller's to decide: the sink feeds only readings
PostgreSQL had not stored, the offline scorer only rows after a restored state's last.

The state is a few dozen numbers, constant in time, JSON for Redis. Restoring the JSON
gives bit-identical floats, so a detector restored mid-series carries on exactly as one
that never stopped.
"""
from __future__ import annotations

import json
import math
from dataclasses import dataclass, fields
from datetime import datetime
from operator import attrgetter
from typing import NamedTuple

import msgspec

VERSION = 4  # 4: the shift channel judges the reading against a recent window; the run record
LIKELIHOOD_DECADES = 6.0  # a score of 0.5 = a one-in-a-million reading
SURPRISE, SHIFT, STUCK = "surprise", "shift", "stuck"


@dataclass(frozen=True)
class DetectorConfig:
    warmup: int = 60  # readings before any score; the long-run distributions need that many
    level_alpha: float = 0.5  # the fast level: follows within a couple of readings
    scale_alpha: float = 0.05  # ~20-reading memory of the typical residual
    recent_alpha: float = 1.0 / 60.0  # the shift channel's window: the recent mean and variance, ~60 readings
    short_alpha: float = 0.5  # surprise averaged over ~2 readings: one odd reading is not yet an event
    long_alpha: float = 0.003  # ~330-reading memory of each channel's own normal evidence
    clip: float = 6.0  # residuals teach the levels at most this many typical residuals
    long_clip: float = 4.0  # evidence teaches its distribution at most this many spreads above its mean
    min_scale_fraction: float = 1e-3  # floor on the typical residual relative to |level|: never divide by ~0
    gap_inflation: float = 0.05  # expected residual grows by this share per missed reading after a gap
    stuck_min_run: int = 5  # at least this many repeats, however unlikely
    repeat_alpha: float = 0.01
    repeat_floor: float = 0.01  # never believe a repeat is rarer than 1 in 100
    # Runs of repeats are judged against the longest run this sensor has ended, not as a coin
    # tossed per reading: a quantized sensor (whole litres, whole degrees) repeats ~half its
    # readings and holds one value for 20-40 readings in a row, which as a coin reads as a
    # one-in-a-billion event. The record forgets 5 % per run it ends, and one run may at most
    # double it (plus stuck_min_run): a freeze does not teach the sensor that freezing is normal.
    record_decay: float = 0.05
    record_growth: float = 2.0
    incident_alpha: float = 0.1  # the regime's smoothing: ~10 readings
    baseline_alpha: float = 0.01  # its baseline, learnt outside incidents over ~100 readings
    incident_warmup: int = 100  # readings of normal before an incident may open
    incident_open_z: float = 3.5
    incident_open_n: int = 3  # readings in a row beyond incident_open_z
    incident_close_z: float = 2.0
    incident_close_n: int = 20  # readings in a row back within incident_close_z
    incident_settle: int = 60  # readings after opening over which the incident's own level is learnt
    incident_move_z: float = 4.0  # a second change this large (from that level) ends the incident
    incident_move_n: int = 5
    incident_max_age: int = 600  # an incident this many readings old closes, and its level becomes the baseline
    tail_k: float = 1.25  # each channel's tail starts this many spreads above its mean (~1 reading in 10)
    excess_alpha: float = 0.05  # its mean overshoot: ~20 exceedances' memory
    # An exceedance teaches the overshoot at most this many mean overshoots: a heavy tail is learnt
    # over many exceedances, not from one spike (at 10, one 12-sigma spike taught a fresh sensor that
    # the next was ordinary; at 2.5 the next stays sharp and a heavy-tailed sensor is still learnt).
    tail_clip: float = 2.5
    tail_shrink_floor: float = 0.4  # the heaviest tail still counts a distance beyond it at 40 %
    # The shift channel judges single readings (not a short average) against a window whose
    # variance a heavy tail's outliers inflate and deflate: its overshoot is learnt from
    # exceedances of up to 10 mean overshoots, and may count a distance beyond the tail down to
    # 20 % (Student-t noise with 2 degrees of freedom: 0.3 % of readings alarmed, as surprise's).
    shift_tail_clip: float = 10.0
    shift_shrink_floor: float = 0.2
    # The scales are set by their first 20 readings (their mean); until then a residual is judged
    # against a scale that is not known yet (the second reading's is 0), and that evidence, learnt
    # as this sensor's normal, inflated its spread for hundreds of readings: a 15-sigma spike on a
    # fresh sensor scored as ordinary. The evidence counts, and is learnt, from the 21st reading.
    evidence_from: int = 20


CONFIG = DetectorConfig()


@dataclass(slots=True)
class DetectorState:
    count: int = 0
    t: float = 0.0  # epoch seconds of the last applied reading
    event_id: str = ""
    dt: float = 0.0  # typical interval between readings
    level: float = 0.0  # fast level
    scale: float = 0.0  # typical |residual| around it
    recent: float = 0.0  # the recent mean of the readings ...
    recent_var: float = 0.0  # ... and their recent variance
    surprise: float = 0.0  # short average of the surprise evidence ...
    surprise_mean: float = 0.0  # ... and its long-run mean and variance
    surprise_var: float = 0.0
    surprise_excess: float = 0.0  # ... and how far beyond its tail's threshold it overshoots
    shift_excess: float = 0.0  # the shift channel's overshoot, in recent standard deviations (a tail's shape)
    prev: float = 0.0
    run: int = 0  # repeats of `prev` in a row
    repeat: float = 0.0  # how often this sensor repeats a value at all
    longest: float = 0.0  # the longest run of repeats this sensor has ended, slowly forgotten
    smooth: float = 0.0  # the regime's smoothed value ...
    base: float = 0.0  # ... its baseline, learnt outside incidents ...
    base_var: float = 0.0  # ... and the baseline's spread
    incident: int = 0  # 1 while the sensor's incident is open
    streak: int = 0  # readings in a row towards opening, closing or ending
    moved: int = 0  # readings in a row a second change away from where the incident settled
    age: int = 0  # readings since the incident opened
    settled: float = 0.0  # where the incident settled
    v: int = VERSION  # the format's version travels with the state

    def to_bytes(self) -> bytes:
        """The state as compact JSON (UTF-8), as Redis keeps it."""
        # msgspec encodes the slotted dataclass directly, floats in their shortest exact form:
        # ~1.5 us a state, against ~15 us for json.dumps of a dict built field by field. A
        # factory batch writes one state per sensor it touched, so this is per-record cost.
        return _encode(self)

    def to_json(self) -> str:
        return _encode(self).decode()

    def snapshot(self) -> tuple:
        """Everything `observe` may change, for `restore` (one C call)."""
        return _fields(self)

    def restore(self, snapshot: tuple) -> None:
        """Put back the state `snapshot` was taken of (a rolled-back batch)."""
        for name, value in zip(_FIELD_NAMES, snapshot, strict=True):
            setattr(self, name, value)

    @classmethod
    def from_json(cls, text: str | bytes | None) -> DetectorState:
        """The stored state, or a fresh one when there is none, it has another version, or
        it does not hold a number where one belongs (JSON has no infinity: a state whose
        variance overflowed on absurd readings was stored with a null)."""
        if not text:
            return cls()
        try:
            body = json.loads(text)
        except ValueError:
            return cls()
        if not isinstance(body, dict) or body.get("v") != VERSION or body.keys() - _STATE_FIELDS:
            return cls()
        if not isinstance(body.get("event_id", ""), str):
            return cls()
        if not all(_is_number(x) for k, x in body.items() if k != "event_id"):
            return cls()
        return cls(**body)


def _is_number(x: object) -> bool:
    return isinstance(x, (int, float)) and not isinstance(x, bool)


_FIELD_NAMES = tuple(f.name for f in fields(DetectorState))
_STATE_FIELDS = frozenset(_FIELD_NAMES)
_fields = attrgetter(*_FIELD_NAMES)
_encode = msgspec.json.Encoder().encode


class Verdict(NamedTuple):  # built on every reading: a frozen dataclass costs ~1 us to build
    score: float  # in [0, 1); 0.5 and above is an anomaly
    anomalous: bool
    reason: str
    incident: bool  # the sensor's incident is open (after this reading)
    opened: bool  # ... and this reading opened it
    deviation: float  # the regime's distance from its baseline, in normal spreads (signed)


WARMING_UP = Verdict(0.0, False, "warming up", False, False, 0.0)
_LN10 = math.log(10.0)


def observe(state: DetectorState, ts: datetime, value: float, event_id: str,
            config: DetectorConfig = CONFIG) -> Verdict | None:
    """Fold one reading into `state`; None for an exact duplicate of the last one."""
    t = ts.timestamp()
    if state.count and t == state.t and event_id == state.event_id:
        return None
    return _step(state, t, float(value), event_id, config)


_SQRT2 = math.sqrt(2.0)


def _decades(z: float) -> float:
    """-log10 of the Gaussian upper tail beyond z (0 for z <= 0), without underflow."""
    if z <= 0.0:
        return 0.0
    if z < 30.0:
        return -math.log10(0.5 * math.erfc(z / _SQRT2))
    return (0.5 * z * z + math.log(z * math.sqrt(2.0 * math.pi))) / _LN10  # phi(z) / z


def _gaussian_excess(k: float) -> float:
    """E[Z - k | Z > k] for a standard normal Z: how far a Gaussian overshoots a threshold."""
    upper = 0.5 * math.erfc(k / _SQRT2)
    return math.exp(-0.5 * k * k) / math.sqrt(2.0 * math.pi) / upper - k


def _tail_decades(s: DetectorState, channel: str, m: float, c: DetectorConfig) -> float:
    """-log10 of how rarely this channel's evidence reaches `m`, by the channel's own tail.

    The evidence is judged in spreads from its long-run mean, as a Gaussian tail, with a
    heavy tail's discount beyond ``tail_k`` spreads (`_discounted`). Learns from this
    reading after judging it (clipped, so an event does not teach itself away).
    """
    var = getattr(s, channel + "_var")
    if var <= 0.0:
        return 0.0
    spread = math.sqrt(var)
    z, excess = _discounted((m - getattr(s, channel + "_mean")) / spread, getattr(s, channel + "_excess") / spread,
                            c.tail_clip, c.tail_shrink_floor, c)
    if excess:
        setattr(s, channel + "_excess", excess * spread)
    return _decades(z)


def _discounted(z: float, excess: float, clip: float, floor: float, c: DetectorConfig) -> tuple[float, float]:
    """(z discounted for a heavy tail, the learnt overshoot after this one), or (z, 0) below the tail.

    Beyond ``tail_k`` the distance counts for less on a sensor whose tail is heavier than a
    Gaussian's: the mean overshoot of that threshold is learnt (peaks over a threshold) and
    the distance beyond it is scaled by the Gaussian's overshoot over the learnt one (never
    below `floor`). So a heavy-tailed sensor's ordinary outliers stay ordinary, and a
    Gaussian one keeps its sharp onset. An overshoot teaches at most `clip` mean overshoots.
    """
    beyond = z - c.tail_k
    if beyond <= 0.0:
        return z, 0.0
    gaussian = _gaussian_excess(c.tail_k)
    excess = excess or gaussian
    if excess > gaussian:
        shrink = gaussian / excess
        z = c.tail_k + beyond * (shrink if shrink > floor else floor)
    cap = clip * excess
    return z, excess + c.excess_alpha * ((beyond if beyond < cap else cap) - excess)


def _record(longest: float, run: int, c: DetectorConfig) -> float:
    """The longest run of repeats, after one more run of `run` repeats ended."""
    decayed = longest * (1.0 - c.record_decay)
    cap = c.record_growth * longest + c.stuck_min_run
    return max(decayed, min(float(run), cap))


def _step(s: DetectorState, t: float, x: float, event_id: str, c: DetectorConfig) -> Verdict:
    n = s.count
    if t < s.t:
        t = s.t  # stepped back or late: it arrives now
    gap = t - s.t
    s.t, s.event_id = t, event_id
    if n == 0:
        s.count = 1
        s.level = s.prev = s.smooth = s.base = x
        return WARMING_UP
    n += 1
    s.count = n

    dt = s.dt
    if dt <= 0.0:
        dt = gap
    elif gap > 0.0:
        dt += 0.05 * (min(gap, 4.0 * dt) - dt)  # an outage does not redefine the sampling rate
    s.dt = dt
    steps = gap / dt if dt > 0.0 else 1.0
    if steps < 1.0:
        steps = 1.0
    warm = n > c.warmup
    learning = 1.0 / (n - 1) if n <= 20 else 0.0  # the first readings set the scales by their mean

    # surprise: the reading against the fast level
    level = s.level
    floor = abs(level) * c.min_scale_fraction
    if floor < 1e-9:
        floor = 1e-9
    scale = s.scale if s.scale > floor else floor
    expected = scale * (1.0 + c.gap_inflation * (steps - 1.0))
    r = x - level
    raw = (r if r > 0.0 else -r) / expected
    if raw > 30.0:
        raw = 30.0
    bound = c.clip * expected
    rc = bound if r > bound else (-bound if r < -bound else r)
    if n <= 3:
        rc = r
    level += c.level_alpha * rc
    s.level = level
    a = learning or c.scale_alpha
    s.scale += a * ((rc if rc > 0.0 else -rc) - s.scale)

    # surprise's short average against its long-run distribution
    q = 0.0
    reason = ""
    early = n <= c.evidence_from
    if early:  # the scales are still being learnt: what the evidence would say means nothing yet
        raw = 1.0
    m1 = s.surprise + c.short_alpha * (raw - s.surprise)
    s.surprise = m1
    if warm:
        q, reason = _tail_decades(s, SURPRISE, m1, c), SURPRISE
    if not early:
        la = c.long_alpha if warm else 1.0 / (n - c.evidence_from)
        mean, var = s.surprise_mean, s.surprise_var
        m = m1
        if warm:
            top = mean + c.long_clip * math.sqrt(var)
            if m > top:
                m = top
        dm = m - mean
        s.surprise_mean = mean + la * dm
        s.surprise_var = var + la * (dm * dm - var)

    # shift: the reading against its recent mean, in recent standard deviations
    recent = s.recent if n > 2 else s.prev
    recent_sd = math.sqrt(s.recent_var) if s.recent_var > 0.0 else 0.0
    d = x - recent
    if warm and recent_sd > floor:
        z2 = (d if d > 0.0 else -d) / recent_sd
        if z2 > 30.0:  # as surprise's evidence: beyond 30 deviations (or overflowing) is as certain as it gets
            z2 = 30.0
        z2, excess = _discounted(z2, s.shift_excess, c.shift_tail_clip, c.shift_shrink_floor, c)
        if excess:
            s.shift_excess = excess
        q2 = _decades(z2)
        if q2 > q:
            q, reason = q2, SHIFT
    ra = c.recent_alpha if n * c.recent_alpha > 1.0 else 1.0 / n
    s.recent = recent + ra * d
    s.recent_var = (1.0 - ra) * (s.recent_var + ra * d * d)

    # stuck: a run of identical readings beyond this sensor's longest, at its own repeat rate
    run = s.run + 1 if x == s.prev else 0
    if not run and s.run:
        s.longest = _record(s.longest, s.run, c)
    s.run, s.prev = run, x
    repeat = s.repeat
    beyond_record = run - s.longest
    if run >= c.stuck_min_run and beyond_record > 0.0 and warm:
        q3 = beyond_record * -math.log10(repeat if repeat > c.repeat_floor else c.repeat_floor)
        if q3 > q:
            q, reason = q3, STUCK
    if run < c.stuck_min_run:
        s.repeat = repeat + (c.repeat_alpha if warm else 1.0 / (n - 1)) * ((1.0 if run else 0.0) - repeat)

    # the regime: smoothed value against a baseline learnt outside incidents
    smooth = s.smooth + c.incident_alpha * (x - s.smooth)
    s.smooth = smooth
    dev = smooth - s.base
    base_sd = math.sqrt(s.base_var) if s.base_var > 0.0 else 0.0
    sd = base_sd if base_sd > floor else floor
    z = dev / sd if n > c.incident_warmup else 0.0
    az = z if z > 0.0 else -z
    opened = False
    if not s.incident:
        ba = c.baseline_alpha if n > c.incident_warmup else 1.0 / (n - 1)
        devc = dev
        if n > c.incident_warmup:
            cap = c.long_clip * base_sd
            devc = cap if dev > cap else (-cap if dev < -cap else dev)
        s.base += ba * devc
        s.base_var += ba * (devc * devc - s.base_var)
        s.streak = s.streak + 1 if az > c.incident_open_z else 0
        if s.streak >= c.incident_open_n:
            s.incident, opened = 1, True
            s.streak = s.moved = s.age = 0
            s.settled = smooth
    else:
        age = s.age + 1
        s.age = age
        if age < c.incident_settle:
            s.settled += (smooth - s.settled) / age
        move = (smooth - s.settled) / sd
        s.moved = s.moved + 1 if age > c.incident_settle and (move > c.incident_move_z or -move > c.incident_move_z) else 0
        s.streak = s.streak + 1 if az < c.incident_close_z else 0
        if age >= c.incident_max_age:  # this long is no longer an incident: it is the new normal
            s.base = smooth
            s.incident = 0
            s.streak = s.moved = 0
        elif s.streak >= c.incident_close_n or s.moved >= c.incident_move_n:
            s.incident = 0
            s.streak = s.moved = 0

    if not warm:
        return Verdict(0.0, False, "warming up", bool(s.incident), opened, z)
    score = q / (q + LIKELIHOOD_DECADES)
    anomalous = score >= 0.5
    if not anomalous:
        return Verdict(score, False, "normal", bool(s.incident), opened, z)
    if reason == SURPRISE:
        text = f"surprise: {r / expected:+.1f} typical residuals from its level"
    elif reason == SHIFT:
        text = f"shift: {d / recent_sd:+.1f} recent standard deviations from its recent mean"
    else:
        text = f"stuck: {run + 1} identical readings (its longest run before: {s.longest + 1:.0f})"
    return Verdict(score, True, text, bool(s.incident), opened, z)
