"""Does the score mean what it says? Claimed against observed exceedance on normal data.

The score is a documented function of a tail probability p (`detector.score_of`,
`detector.tail_probability`): p is how rarely the sensor's own history has produced evidence
like this reading's. On normal data, the share of readings with p <= 10^-k should then be
at most 10^-k; the target allows `TOLERANCE` times that, for k in `DECADES`.

The normal data, each series streamed through the detector from its first reading, every
reading counted (a sensor's first readings included: a young sensor must not claim more
than its history can show):

- SKAB's anomaly-free run, and the rows of every SKAB run before its first anomaly, each
  sensor a series of its own (real data);
- the factory traffic generator with no anomalies injected, each sensor a series;
- the normal life of each of the six classes of series in `classes.py`, several seeds each
  (periods, sampling, levels and noise drawn per seed).
"""
from __future__ import annotations

import json
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

from processor.anomaly import classes, skab
from processor.anomaly.detector import CONFIG, DetectorConfig, DetectorState, observe, tail_probability

DECADES = (2, 3, 4, 5)
TOLERANCE = 3.0
SEEDS = 30  # series per class: ~100,000 readings each, so that p <= 1e-5 is measured on a few allowed readings
TRAFFIC_RECORDS = 60_000
START = datetime(2026, 1, 5, tzinfo=UTC)

Readings = list[tuple[datetime, float]]


@dataclass(frozen=True)
class Row:
    """One class of normal data: how many readings reached p <= 10^-k, per k."""

    name: str
    describe: str
    series: int
    readings: int
    exceeding: dict[int, int]

    def observed(self, k: int) -> float:
        return self.exceeding[k] / self.readings if self.readings else 0.0

    def ratio(self, k: int) -> float:
        """Observed over claimed: 1 is exact, below 1 conservative."""
        return self.observed(k) / 10.0 ** -k


def skab_series(root: Path) -> list[Readings]:
    """SKAB's normal rows: the anomaly-free run, and each run up to its first anomaly; a series per sensor."""
    runs = [skab.load_anomaly_free(root)]
    runs += [skab.Run(r.name, r.times[:r.anomaly.index(1)], r.values[:r.anomaly.index(1)], [], [])
             for r in skab.load(root) if 1 in r.anomaly]
    return [[(t, row[j]) for t, row in zip(run.times, run.values, strict=True)]
            for run in runs for j in range(len(skab.SENSORS))]


def traffic_series(records: int = TRAFFIC_RECORDS, seed: int = 3) -> list[Readings]:
    """The factory traffic generator's numeric readings with no anomaly injected, a series per sensor."""
    from processor.traffic import FactoryTraffic, generate  # the processor's own generator, as the demo runs it

    per: dict[str, Readings] = {}
    for _, payload in generate(FactoryTraffic, records, seed=seed, start=START, step_s=1.0, sensors=24):
        body = json.loads(payload)
        if isinstance(body.get("value"), (int, float)):
            per.setdefault(body["sensor_id"], []).append((datetime.fromisoformat(body["ts"]), float(body["value"])))
    return list(per.values())


def normal_life(name: str, seeds: int = SEEDS) -> list[Readings]:
    return [[(datetime.fromisoformat(ts), v) for ts, v in s.rows]
            for s in classes.corpus(range(seeds), anomalies=False, classes=[name])]


def corpora(skab_root: Path | None, seeds: int = SEEDS) -> list[tuple[str, str, list[Readings]]]:
    """(name, what it is, its series) for every class of normal data; SKAB's only when `skab_root` is given."""
    out = []
    if skab_root is not None:
        out.append(("skab_normal", "SKAB: the anomaly-free run and each run before its anomaly (real)",
                    skab_series(skab_root)))
    out.append(("factory_traffic", "the factory traffic generator, no anomalies injected", traffic_series()))
    out += [(c.name, c.describe, normal_life(c.name, seeds)) for c in classes.CLASSES]
    return out


def measure(name: str, describe: str, series: Iterable[Readings], config: DetectorConfig = CONFIG) -> Row:
    """Stream each series through a fresh detector and count the readings whose p reaches each 10^-k."""
    bounds = {k: _score_at(10.0 ** -k) for k in DECADES}
    exceeding = dict.fromkeys(DECADES, 0)
    count = readings = 0
    for rows in series:
        count += 1
        state = DetectorState()
        for i, (ts, value) in enumerate(rows):
            verdict = observe(state, ts, value, f"{i:012d}", config)
            if verdict is None:
                continue
            readings += 1
            for k, bound in bounds.items():
                if verdict.score >= bound:
                    exceeding[k] += 1
    return Row(name, describe, count, readings, exceeding)


def _score_at(p: float) -> float:
    """The lowest score whose tail probability is at most `p` (the score is monotone in p)."""
    lo, hi = 0.0, 1.0
    for _ in range(60):
        mid = (lo + hi) / 2.0
        if tail_probability(mid) <= p:
            hi = mid
        else:
            lo = mid
    return hi


def evaluate(skab_root: Path | None, seeds: int = SEEDS) -> list[Row]:
    return [measure(name, describe, series) for name, describe, series in corpora(skab_root, seeds)]


def misses(rows: Sequence[Row]) -> list[str]:
    """Each class and k whose observed exceedance is over `TOLERANCE` times its claim."""
    return [f"{row.name}: {row.observed(k):.2g} of its readings have p <= 1e-{k}, {row.ratio(k):.1f}x the claim "
            f"(at most {TOLERANCE:g}x)" for row in rows for k in DECADES if row.ratio(k) > TOLERANCE]


def render(rows: Sequence[Row]) -> str:
    lines = [f"Calibration: the share of normal readings whose tail probability p reaches 10^-k (claimed) against "
             f"the share observed; within {TOLERANCE:g}x of the claim is the target", ""]
    head = " ".join(f"{f'p <= 1e-{k}':>19}" for k in DECADES)
    lines.append(f"{'class':18} {'series':>6} {'readings':>9}  {head}")
    lines.append(f"{'':18} {'':>6} {'':>9}  " + " ".join(f"{'observed (ratio)':>19}" for _ in DECADES))
    for row in rows:
        cells = " ".join(f"{f'{row.observed(k):.1e} ({row.ratio(k):.2f}x)':>19}" for k in DECADES)
        lines.append(f"{row.name:18} {row.series:6d} {row.readings:9,d}  {cells}")
    lines.append("")
    lines += [f"  {row.name}: {row.describe}" for row in rows]
    return "\n".join(lines)


def write_json(rows: Sequence[Row], path: Path) -> None:
    path.write_text(json.dumps({row.name: {"series": row.series, "readings": row.readings,
                                           **{f"1e-{k}": {"observed": row.observed(k), "ratio": round(row.ratio(k), 3)}
                                              for k in DECADES}} for row in rows}, indent=1))
