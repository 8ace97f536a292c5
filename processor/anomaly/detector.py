"""Per-sensor streaming anomaly detector, shared by the processor and the offline scorer.

Two outputs per reading, for two questions:

* **score** (0..1): how rare this reading is by the sensor's own history, as a tail
  probability ``p``: ``score = q / (q + LIKELIHOOD_DECADES)`` with ``q = -log10(p)``, so 0.5
  (the alarm) means rarer than one reading in 10,000, and 0.6 one in a million (a line's
  incident turns critical). ``p`` is a claim about normal life that is measured, not
  assumed: on normal data the share of readings with ``p <= 10**-k`` stays within 3x of
  ``10**-k`` (`make eval-anomaly-calibration`, over real and generated series of many kinds).

  Four checks each turn a piece of evidence into a tail probability by the distribution
  that very evidence has had on this sensor (a streaming histogram, no Gaussian assumed):

  - *jump*: the move from the last reading, in recent typical moves, never less than half
    its long-run typical move (spikes, steps, the jump into a fault; on a square wave or a
    flat stretch the recent moves say nothing, and the long run still does);
  - *shift*: the recent level (a short average) against the level of the last few hundred
    readings, in their typical deviation (level shifts, drifts, a regime that moved);
  - *level*: the reading against the sensor's usual level, in its own units (values it
    has never taken);
  - *stuck*: a run of identical readings against the runs this sensor has had: by their
    histogram (a square wave's plateaus have a length of their own), and beyond the longest
    it has ended (the record fades over ``memory`` readings) each repeat as likely as the
    sensor's share of repeats, reported as the run crosses each further decade of rarity,
    not on every reading of it (a freeze is one event, not hundreds).

  Each check's histogram has `BINS_PER_OCTAVE` bins per doubling of the evidence's size,
  up and down kept apart, with a memory of ``memory`` readings. Inside what it has seen,
  ``p`` is the share of the sensor's history at least as extreme, ties included: a value
  the sensor takes often is never surprising, however far from its mean, and a clean
  periodic or quantised signal whose moves repeat is judged by its own repeats. Beyond the
  most extreme evidence it has seen twice, the tail is extrapolated along the slope of its
  own top decile (decades of p per doubling), at most ``max_beyond_octaves`` doublings out,
  and no further than its sample size allows (``p >= n**-novelty_power``: after a hundred
  readings nothing is one in a million, and a sensor's first `alarm_history()` readings
  raise no alarm). The checks' ``p`` combine as the smallest, times
  the number of checks (Bonferroni). After a high score, readings less surprising than it
  count for less (``refractory`` decades a reading): the aftermath of an alarm is not a
  new alarm.

* **incident** (latched): whether the sensor sits in an abnormal regime. The smoothed
  value is compared with a baseline learnt only outside incidents; the incident opens
  after a few readings more than ``incident_open_z`` normal spreads away, and closes
  when the sensor returns (below ``incident_close_z`` for a while) or moves again by as
  much from where the incident settled (a second change: the regime has ended, even if
  the new normal is not the old one), or when it has lasted ``incident_max_age``
  readings (it is the new normal: its level becomes the baseline). The factory sink groups
  sensor incidents into one incident per line (processor/incidents.py).

No assumption about the sampling rate or a daily cycle: the checks are per reading. A
reading timestamped before the last one (a clock stepped back, a late reading) is
applied as if it arrived then; an exact duplicate (same time, same event id) is
ignored. What is fresh is the caller's to decide: the sink feeds only readings
PostgreSQL had not stored, the offline scorer only rows after a restored state's last.

The state is constant in size (a few dozen numbers and the checks' histograms), JSON for
Redis. Restoring the JSON gives bit-identical floats, so a detector restored mid-series
carries on exactly as one that never stopped.
"""
from __future__ import annotations

import json
import math
from dataclasses import dataclass, field, fields
from datetime import datetime
from typing import NamedTuple

import msgspec

VERSION = 5  # 5: checks judged by their own histograms (a calibrated tail probability), not a Gaussian tail
LIKELIHOOD_DECADES = 4.0  # a score of 0.5 (the alarm) = a reading rarer than one in 10,000
SURPRISE, SHIFT, STUCK = "surprise", "shift", "stuck"

BINS_PER_OCTAVE = 3  # a bin per 26 % of the evidence's size
OCTAVES = 15  # each histogram spans a 30,000-fold range of its evidence
BINS = BINS_PER_OCTAVE * OCTAVES
# The histograms, in the state's order: each signed check keeps its ups and downs apart.
JUMP_UP, JUMP_DOWN, SHIFT_UP, SHIFT_DOWN, LEVEL_UP, LEVEL_DOWN, RUN = range(7)
HISTOGRAMS = 7
CHECKS = 4  # jump, shift, level, stuck: the Bonferroni factor
UNSET = -(2**31)  # a histogram that has not seen its evidence yet
CAP = 2.0**40  # evidence beyond this (a ratio over a collapsed scale) counts as this
# A move so small against its scale that the ratio underflows to 0 (1e-300 over 1e300) counts as the least
# evidence a float holds: still a move, in the lowest bin (log2 of 0 would raise).
LEAST = math.ulp(0.0)


@dataclass(frozen=True)
class DetectorConfig:
    memory: int = 4000  # readings of history each check's distribution holds (exponential forgetting)
    warmup: int = 10  # readings before the jump check, whose recent typical move needs that many
    jump_alpha: float = 1.0 / 20.0  # the recent typical move: ~20 readings
    typical_alpha: float = 1.0 / 1000.0  # the long-run typical move, a floor under the scales
    scale_floor: float = 0.5  # no scale below this share of the long-run typical move (a flat stretch)
    level_alpha: float = 1.0 / 200.0  # the usual level: ~200 readings ...
    level_huber: float = 2.0  # ... moved by at most this many typical deviations a reading (bursts do not drag it)
    short_alpha: float = 0.2  # the shift check's recent level: ~5 readings ...
    slow_alpha: float = 1.0 / 300.0  # ... against ~300
    shift_from: int = 30
    tail_from: float = 0.1  # the extrapolated tail's slope is that of the top decile ...
    top_samples: float = 2.0  # ... up to the most extreme evidence seen at least twice
    slope_min: float = 0.3  # decades of p per doubling: Pareto-heavy at the least ...
    slope_max: float = 3.0  # ... Gaussian-light at the most
    slope_default: float = 1.0  # when the top decile is one bin
    max_beyond_octaves: float = 10.0  # beyond a thousand-fold of its most extreme, evidence counts no more
    novelty_power: float = 2.0  # p >= n ** -novelty_power: nothing rarer than the history can show
    refractory: float = 0.03  # decades a reading by which an alarm's shadow fades
    repeat_memory: int = 1000  # readings over which the share of repeats is learnt
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
    long_clip: float = 4.0  # the baseline learns a deviation of at most this many spreads
    min_scale_fraction: float = 1e-3  # floor on the regime's spread relative to the level: never divide by ~0


CONFIG = DetectorConfig()


def _histograms() -> list[float]:
    return [0.0] * (HISTOGRAMS * BINS)


@dataclass(slots=True)
class DetectorState:
    count: int = 0
    t: float = 0.0  # epoch seconds of the last applied reading
    event_id: str = ""
    prev: float = 0.0  # the last reading
    run: int = 0  # repeats of `prev` in a row
    repeat: float = 0.0  # the share of readings that repeat the one before
    longest: float = 0.0  # the longest run of repeats this sensor has ended, fading
    stuck_q: float = 0.0  # the rarity the current run has been reported at
    jump: float = 0.0  # the recent typical move
    typical: float = 0.0  # the long-run typical move
    level: float = 0.0  # the usual level ...
    spread: float = 0.0  # ... and its typical deviation
    short: float = 0.0  # the shift check's recent level ...
    slow: float = 0.0  # ... against a slower one ...
    slow_dev: float = 0.0  # ... and its typical deviation
    weight: float = 1.0  # the weight of the next reading's evidence: grows by 1/(1 - 1/memory) a reading
    total: float = 0.0  # the weight of every reading so far
    peak: float = 0.0  # the last alarm's q, fading by `refractory` a reading
    lo: list[int] = field(default_factory=lambda: [UNSET] * HISTOGRAMS)  # each histogram's lowest bin
    top: list[int] = field(default_factory=lambda: [-1] * HISTOGRAMS)  # ... its top bin seen `top_samples` times
    calm: list[int] = field(default_factory=lambda: [-1] * HISTOGRAMS)  # ... and its highest bin still common (`_calm`)
    hist: list[float] = field(default_factory=_histograms)  # BINS weights per histogram, one after another
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
        return _encode(self)

    def to_json(self) -> str:
        return _encode(self).decode()

    def snapshot(self) -> tuple:
        """Everything `observe` may change, for `restore` (the histograms copied)."""
        return tuple(getattr(self, name)[:] if name in _LISTS else getattr(self, name) for name in _FIELD_NAMES)

    def restore(self, snapshot: tuple) -> None:
        """Put back the state `snapshot` was taken of (a rolled-back batch)."""
        for name, value in zip(_FIELD_NAMES, snapshot, strict=True):
            setattr(self, name, value[:] if name in _LISTS else value)

    @classmethod
    def from_json(cls, text: str | bytes | None) -> DetectorState:
        """The stored state, or a fresh one when there is none, it has another version, or
        it does not hold what belongs where (JSON has no infinity: a state whose weights
        overflowed on absurd readings was stored with a null)."""
        if not text:
            return cls()
        try:
            body = json.loads(text)
        except ValueError:
            return cls()
        if not isinstance(body, dict) or body.get("v") != VERSION or body.keys() != _STATE_FIELDS:
            return cls()
        if not isinstance(body["event_id"], str):
            return cls()
        for name, value in body.items():
            if name in _LISTS:
                if not (isinstance(value, list) and len(value) == _LISTS[name]
                        and all(_is_number(x) for x in value)):
                    return cls()
            elif name != "event_id" and not _is_number(value):
                return cls()
        return cls(**body)


def _is_number(x: object) -> bool:
    return isinstance(x, (int, float)) and not isinstance(x, bool)


_FIELD_NAMES = tuple(f.name for f in fields(DetectorState))
_STATE_FIELDS = frozenset(_FIELD_NAMES)
_LISTS = {"lo": HISTOGRAMS, "top": HISTOGRAMS, "calm": HISTOGRAMS, "hist": HISTOGRAMS * BINS}
_encode = msgspec.json.Encoder().encode


class Verdict(NamedTuple):  # built on every reading: a frozen dataclass costs ~1 us to build
    score: float  # in [0, 1); 0.5 and above is an anomaly
    anomalous: bool
    reason: str
    incident: bool  # the sensor's incident is open (after this reading)
    opened: bool  # ... and this reading opened it
    deviation: float  # the regime's distance from its baseline, in normal spreads (signed)


WARMING_UP = Verdict(0.0, False, "warming up", False, False, 0.0)
_verdict = tuple.__new__  # Verdict(...) without the Python-level __new__ (a frame a reading)
_log2, _log10, _floor, _sqrt = math.log2, math.log10, math.floor, math.sqrt
_BONFERRONI = math.log10(CHECKS)
# Evidence this common (a share of the history at least this large reaches it) cannot move the score: one check's
# q below log10(CHECKS) is cancelled by the Bonferroni factor. Bins below the `calm` bin skip the arithmetic; the
# bin is found at a share of 0.3 and refreshed every 64 readings, long before a share can fall from 0.3 to 0.2.
_CALM_SHARE = 0.3


def observe(state: DetectorState, ts: datetime, value: float, event_id: str,
            config: DetectorConfig = CONFIG) -> Verdict | None:
    """Fold one reading into `state`; None for an exact duplicate of the last one."""
    return observe_at(state, ts.timestamp(), float(value), event_id, config)


def alarm_history(config: DetectorConfig = CONFIG) -> int:
    """The fewest readings a sensor needs before any reading of it can be an alarm: its checks' p is
    never below n**-novelty_power, and the alarm needs CHECKS * p <= 10**-LIKELIHOOD_DECADES."""
    return math.ceil(10.0 ** ((LIKELIHOOD_DECADES + _BONFERRONI) / config.novelty_power))


def score_of(p: float) -> float:
    """The score of a tail probability: q / (q + LIKELIHOOD_DECADES), q = -log10(p)."""
    q = -_log10(p) if p < 1.0 else 0.0
    return q / (q + LIKELIHOOD_DECADES)


def tail_probability(score: float) -> float:
    """The tail probability a score stands for (the inverse of `score_of`)."""
    return 10.0 ** (-LIKELIHOOD_DECADES * score / (1.0 - score))


# -- the checks' histograms -----------------------------------------------------------------------------------------


def _rare(s: DetectorState, c: int, j: int, log_total: float, c_: DetectorConfig) -> float:
    """-log10 of how rarely histogram `c`'s evidence has reached bin `j` when `j` is above its top (or
    the histogram is new); then the evidence is learnt. (`observe_at` takes the common bins itself: evidence
    at or below the calm bin learnt at q = 0, and up to the top the share of the history at or above it.)"""
    lo = s.lo[c]
    h, base, g = s.hist, c * BINS, s.weight
    if lo == UNSET:  # the first evidence: the window opens with it in the middle
        s.lo[c] = j + UNSET - BINS // 2
        h[base + BINS // 2] += g
        return 0.0
    top = s.top[c]
    q = _beyond(s, c, j, top, c_) if top >= 0 else 0.0
    if 0 <= j < BINS:
        h[base + j] += g
    else:
        _learn_outside(s, c, j)
    s.top[c] = _top(h, base, c_.top_samples * g)
    return q


def _beyond(s: DetectorState, c: int, j: int, top: int, c_: DetectorConfig) -> float:
    """-log10 p of evidence above the top: the top's share, then the top decile's slope, capped by n."""
    h, base, total, g = s.hist, c * BINS, s.total, s.weight
    at_top = sum(h[base + top:base + BINS])
    u, acc = top, 0.0  # where the top decile starts, or the lowest bin with evidence if it holds less
    for i in range(base + top, base - 1, -1):
        if h[i]:
            u = i - base
            acc += h[i]
            if acc >= c_.tail_from * total:
                break
    slope = c_.slope_default
    if top > u:
        slope = _log10(sum(h[base + u:base + BINS]) / at_top) / ((top - u) / BINS_PER_OCTAVE)
    slope = min(c_.slope_max, max(c_.slope_min, slope))
    beyond = min(j - top, c_.max_beyond_octaves * BINS_PER_OCTAVE) / BINS_PER_OCTAVE
    q = -_log10(max(at_top, g) / total) + slope * beyond
    cap = c_.novelty_power * _log10(total / g)
    return q if q < cap else cap


def _top(h: list[float], base: int, least: float) -> int:
    """The highest bin with at least `least` weight at or above it (-1: none)."""
    acc = 0.0
    for i in range(base + BINS - 1, base - 1, -1):
        acc += h[i]
        if acc >= least:
            return i - base
    return -1


def _learn_outside(s: DetectorState, c: int, j: int) -> None:
    """Learn evidence outside the window: below it into the lowest bin; above it the window
    moves up (its lowest bins merge), unless it is absurdly far beyond the bulk of the
    evidence, which stays in the top bin rather than costing the bulk its resolution."""
    h, base, g = s.hist, c * BINS, s.weight
    if j < 0:
        h[base] += g
        return
    if j - _median(h, base) > (2 * BINS) // 3:
        h[base + BINS - 1] += g
        return
    _move(s, c, j - BINS + 1)
    h[base + BINS - 1] += g


def _median(h: list[float], base: int) -> int:
    half = 0.5 * sum(h[base:base + BINS])
    acc = 0.0
    for i in range(base, base + BINS):
        acc += h[i]
        if acc >= half:
            return i - base
    return 0


def _move(s: DetectorState, c: int, shift: int) -> None:
    """Move histogram `c`'s window up (`shift` > 0: the lowest bins merge into the lowest
    kept) or down (< 0: the highest bins merge into the top bin)."""
    h, base = s.hist, c * BINS
    w = h[base:base + BINS]
    if shift > 0:
        w = [sum(w[:shift + 1])] + w[shift + 1:] + [0.0] * shift
    else:
        d = -shift
        w = [0.0] * d + w[:BINS - d - 1] + [sum(w[BINS - d - 1:])]
    h[base:base + BINS] = w
    s.lo[c] += shift
    s.top[c] = min(BINS - 1, max(-1, s.top[c] - shift)) if s.top[c] >= 0 else -1
    s.calm[c] = -1


def _recentre(s: DetectorState) -> None:
    """Keep the bulk of each histogram's evidence two fifths of the way up its window."""
    h = s.hist
    for c in range(HISTOGRAMS):
        if s.lo[c] == UNSET:
            continue
        base = c * BINS
        shift = _median(h, base) - (2 * BINS) // 5
        if shift > BINS // 6 or (shift < -BINS // 6 and h[base] < 0.5 * sum(h[base:base + BINS])):
            _move(s, c, shift)


def _refresh_tops(s: DetectorState, c_: DetectorConfig) -> None:
    """Old evidence fades: each top is where `top_samples` readings' weight now lies, each
    calm bin the highest that a `_CALM_SHARE` of the history reaches (one pass down each)."""
    least, common, h = c_.top_samples * s.weight, _CALM_SHARE * s.total, s.hist
    young = s.count <= 64
    for c in range(HISTOGRAMS):
        if s.lo[c] == UNSET:
            continue
        base, top, calm, acc = c * BINS, -1, -1, 0.0
        for i in range(base + BINS - 1, base - 1, -1):
            acc += h[i]
            if top < 0 and acc >= least:
                top = i - base
            if acc >= common:
                calm = -1 if young else i - base
                break
        s.top[c], s.calm[c] = top, calm


def _rescale(s: DetectorState) -> None:
    """The growing weights are brought back near 1 (nothing else changes: every p is a ratio)."""
    g = s.weight
    s.hist = [w / g for w in s.hist]
    s.total /= g
    s.weight = 1.0


# -- one reading -----------------------------------------------------------------------------------------------------


def observe_at(s: DetectorState, t: float, x: float, event_id: str, c: DetectorConfig = CONFIG) -> Verdict | None:
    """`observe` with the reading's time as epoch seconds and its value a float (the offline scorer's loop)."""
    n = s.count
    if n and t == s.t and event_id == s.event_id:
        return None
    if t < s.t:
        t = s.t  # stepped back or late: it arrives now
    s.t, s.event_id = t, event_id
    if n == 0:
        s.count = 1
        s.prev = s.level = s.short = s.slow = s.smooth = s.base = x
        s.total = 1.0
        return WARMING_UP
    n += 1
    s.count = n
    # Each check's histogram is read and taught here, not in a function (a call per check would be a tenth of
    # the detector's time): its bin `j`; at or below the calm bin the evidence is learnt at q = 0 (too common to
    # move the score); up to the top, q is the share of the history at or above the bin; above it `_rare`.
    g = s.weight = s.weight * (c.memory / (c.memory - 1.0))
    h, lo, calm, top = s.hist, s.lo, s.calm, s.top
    log_total = _log10(s.total)
    d = x - s.prev
    floor = c.scale_floor * s.typical
    q, reason, shown = 0.0, "", 0.0

    if d != 0.0:
        if n > c.warmup:  # jump: the move in recent typical moves
            scale = s.jump if s.jump > floor else floor
            e = d / scale if scale > 0.0 else CAP
            i = JUMP_UP if d > 0.0 else JUMP_DOWN
            e = e if e > 0.0 else -e
            try:
                j = _floor(BINS_PER_OCTAVE * _log2(e if e < CAP else CAP)) - lo[i]
            except ValueError:  # the move underflowed to 0 against its scale (a try costs nothing until it raises)
                j = _floor(BINS_PER_OCTAVE * _log2(LEAST)) - lo[i]
            if j <= calm[i]:
                h[i * BINS + (j if j > 0 else 0)] += g
            else:
                if j <= top[i]:
                    i *= BINS
                    seen = sum(h[i + j:i + BINS])
                    qj = log_total - _log10(seen if seen > g else g)  # at least one reading's share
                    h[i + j] += g
                else:
                    qj = _rare(s, i, j, log_total, c)
                if qj > q:
                    q, reason, shown = qj, "jump", d / scale if scale > 0.0 else math.inf

    short = s.short + c.short_alpha * (x - s.short)
    s.short = short
    if n > c.shift_from:  # shift: the recent level against the slower one
        e = short - s.slow
        if e != 0.0:
            scale = s.slow_dev if s.slow_dev > floor else floor
            ratio = e / scale if scale > 0.0 else CAP
            i = SHIFT_UP if e > 0.0 else SHIFT_DOWN
            ratio = ratio if ratio > 0.0 else -ratio
            try:
                j = _floor(BINS_PER_OCTAVE * _log2(ratio if ratio < CAP else CAP)) - lo[i]
            except ValueError:  # underflowed to 0, as above
                j = _floor(BINS_PER_OCTAVE * _log2(LEAST)) - lo[i]
            if j <= calm[i]:
                h[i * BINS + (j if j > 0 else 0)] += g
            else:
                if j <= top[i]:
                    i *= BINS
                    seen = sum(h[i + j:i + BINS])
                    qs = log_total - _log10(seen if seen > g else g)
                    h[i + j] += g
                else:
                    qs = _rare(s, i, j, log_total, c)
                if qs > q:
                    q, reason, shown = qs, "shift", e / scale if scale > 0.0 else math.inf

    e = x - s.level  # level: the reading against the usual level
    if e != 0.0:
        i = LEVEL_UP if e > 0.0 else LEVEL_DOWN
        a = e if e > 0.0 else -e
        j = _floor(BINS_PER_OCTAVE * _log2(a if a < CAP else CAP)) - lo[i]
        if j <= calm[i]:
            h[i * BINS + (j if j > 0 else 0)] += g
        else:
            if j <= top[i]:
                i *= BINS
                seen = sum(h[i + j:i + BINS])
                ql = log_total - _log10(seen if seen > g else g)
                h[i + j] += g
            else:
                ql = _rare(s, i, j, log_total, c)
            if ql > q:
                q, reason, shown = ql, "level", x - e

    repeat = d == 0.0
    run = s.run + 1 if repeat else 0
    longest = s.longest * (1.0 - 1.0 / c.memory)
    if not run:
        if s.run > longest:
            longest = float(s.run)
        s.stuck_q = 0.0
    else:  # stuck: the run against the runs it has had ...
        a = float(run)
        j = _floor(BINS_PER_OCTAVE * _log2(a if a < CAP else CAP)) - lo[RUN]
        qr = 0.0
        if j <= calm[RUN]:
            h[RUN * BINS + (j if j > 0 else 0)] += g
        elif j <= top[RUN]:
            seen = sum(h[RUN * BINS + j:RUN * BINS + BINS])
            qr = log_total - _log10(seen if seen > g else g)
            h[RUN * BINS + j] += g
        else:
            qr = _rare(s, RUN, j, log_total, c)
        if run > longest and n > c.warmup:  # ... and beyond its longest, each repeat as likely as it repeats
            share = s.repeat if s.repeat * (n + 1) > 1.0 else 1.0 / (n + 1)
            qb = (run - longest) * -_log10(share)
            cap = c.novelty_power * log_total
            qb = qb if qb < cap else cap
            if qb >= s.stuck_q + 1.0:  # a further decade of rarity: reported; in between, the run is the same event
                s.stuck_q = qb
                qr = qb if qb > qr else qr
        if qr > q:
            q, reason, shown = qr, "stuck", float(run + 1)  # a float like every `shown` (a compiler could type it)
    s.longest = longest

    s.total += g
    s.run, s.prev = run, x
    move = d if d > 0.0 else -d
    if n * c.typical_alpha > 1.0:  # every memory filled (typical_alpha's is the longest): constant rates
        ar, aj, at, al, asl = 1.0 / c.repeat_memory, c.jump_alpha, c.typical_alpha, c.level_alpha, c.slow_alpha
    else:  # the first readings count equally, until each memory is full
        ar = 1.0 / n if n < c.repeat_memory else 1.0 / c.repeat_memory
        aj = c.jump_alpha if n * c.jump_alpha > 1.0 else 1.0 / n
        at = 1.0 / n
        al = c.level_alpha if n * c.level_alpha > 1.0 else 1.0 / n
        asl = c.slow_alpha if n * c.slow_alpha > 1.0 else 1.0 / n
    s.repeat += ar * ((1.0 if repeat else 0.0) - s.repeat)
    s.jump += aj * (move - s.jump)
    s.typical += at * (move - s.typical)
    level = s.level
    dl = x - level
    bound = c.level_huber * s.spread
    if n > c.warmup and (dl > bound or dl < -bound):  # a burst moves the usual level by a bounded step
        dl = bound if dl > 0.0 else -bound
    level += al * dl
    s.level = level
    s.spread += al * ((x - level if x > level else level - x) - s.spread)
    slow = s.slow
    s.slow_dev += asl * ((x - slow if x > slow else slow - x) - s.slow_dev)
    s.slow = slow + asl * (x - slow)
    if n & 511 == 0 or (n < 512 and n & (n - 1) == 0):  # early and then now and then: the windows follow the bulk
        _recentre(s)
        _refresh_tops(s, c)
    elif n & 63 == 0:
        _refresh_tops(s, c)
    if g > 1e100:
        _rescale(s)

    q -= _BONFERRONI
    if q < 0.0:
        q = 0.0
    peak = s.peak - c.refractory
    if q >= peak:
        s.peak = q
    else:
        s.peak = peak
        q = 2.0 * q - peak if 2.0 * q > peak else 0.0  # in an alarm's shadow: only what outdoes it counts

    # The incident: the smoothed value against a baseline learnt outside incidents; z is its distance in the
    # baseline's spreads. (Inline rather than a function: a call a reading is 4 % of the detector's time.)
    floor = abs(s.short) * c.min_scale_fraction
    if floor < 1e-9:
        floor = 1e-9
    smooth = s.smooth + c.incident_alpha * (x - s.smooth)
    s.smooth = smooth
    dev = smooth - s.base
    base_sd = _sqrt(s.base_var) if s.base_var > 0.0 else 0.0
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
    if n <= c.warmup:
        return Verdict(0.0, False, "warming up", bool(s.incident), opened, z)
    score = q / (q + LIKELIHOOD_DECADES)
    if score < 0.5:
        return _verdict(Verdict, (score, False, "normal", s.incident == 1, opened, z))
    return Verdict(score, True, _reason(reason, shown, q, x), bool(s.incident), opened, z)


def _reason(check: str, shown: float, q: float, x: float) -> str:
    """What the strongest check saw (`shown`: its ratio, the level before, or the run's length)."""
    rarity = f"1 in {10.0 ** q:.2g} by its own history"
    if check == "jump":
        return f"{SURPRISE}: a move of {shown:+.1f} recent typical moves, {rarity}"
    if check == "shift":
        return f"{SHIFT}: its recent level is {shown:+.1f} typical deviations from its level before, {rarity}"
    if check == "level":
        return f"{SHIFT}: {x - shown:+.6g} from its usual level {shown:.6g}, {rarity}"
    return f"{STUCK}: {shown:.0f} identical readings in a row, {rarity}"
