"""The detector's speed against another revision's: paired, interleaved timed passes over the same series.

    python -m processor.anomaly.paired [--against main] [--rounds 5] [DIRECTORY]

On a shared machine a pass's absolute speed moves by tens of per cent from one minute to the next; the
ratio of two passes taken in turn (old then new, then new then old, ...) over the same series moves much
less. The other revision's detector and scorer come from git (``git show REV:processor/anomaly/...``) into
a temporary package, and both run as `evaluate.timed_pass` runs the detector (rows already parsed, the
event ids formatted in the loop). Before timing, every score, label and incident flag of both over the
corpus, and each sensor's final state, are compared: the line says whether they are bit-identical.
"""
from __future__ import annotations

import argparse
import importlib
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path
from types import ModuleType

from processor.anomaly import detector, native, score
from processor.anomaly.evaluate import LoadedSeries, load
from processor.anomaly.synthetic import Corpus, is_current, write_corpus

FILES = ("detector.py", "score.py")


def other_revision(rev: str, into: Path) -> tuple[ModuleType, ModuleType]:
    """(detector, score) as they are at `rev`, imported from a package under `into`."""
    package = into / "paired_other"
    package.mkdir()
    (package / "__init__.py").write_text("")
    for name in FILES:
        text = subprocess.run(["git", "show", f"{rev}:processor/anomaly/{name}"], check=True, capture_output=True,
                              text=True).stdout
        (package / name).write_text(text.replace("from processor.anomaly.detector import", "from .detector import"))
    sys.path.insert(0, str(into))
    return importlib.import_module("paired_other.detector"), importlib.import_module("paired_other.score")


def outputs(series: Sequence[LoadedSeries], det: ModuleType, sc: ModuleType) -> list[tuple]:
    """Every row's (score bits, label, incident) and each sensor's final state."""
    out: list[tuple] = []
    for s in series:
        state = det.DetectorState()
        out.extend((r[2].hex(), r[3], r[4]) for r in sc.score_series(s.rows, state, det.CONFIG))
        out.append((state.to_json(),))
    return out


def seconds(series: Sequence[LoadedSeries], det: ModuleType, sc: ModuleType) -> float:
    started = time.process_time()
    for s in series:
        for _ in sc.score_series(s.rows, det.DetectorState(), det.CONFIG):
            pass
    return time.process_time() - started


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m processor.anomaly.paired", description=__doc__.split("\n")[0])
    parser.add_argument("directory", type=Path, nargs="?", default=Path(".gen/anomaly-corpus"),
                        help="the synthetic corpus (generated as make eval-anomaly generates it, when missing)")
    parser.add_argument("--against", default="main", help="the git revision to compare with (default main)")
    parser.add_argument("--rounds", type=int, default=5, help="pairs of passes (default 5)")
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--series", type=int, default=60)
    parser.add_argument("--days", type=float, default=8.0)
    args = parser.parse_args(argv)
    if args.rounds < 1 or args.series < 1 or args.days < 3:
        parser.error("--rounds and --series must be at least 1, --days at least 3")
    if not is_current(args.directory, args.seed, args.series, args.days):
        write_corpus(args.directory, args.seed, args.series, days=args.days)
    series = load(Corpus.open(args.directory))
    readings = sum(len(s.rows) for s in series)
    with tempfile.TemporaryDirectory() as tmp:
        try:
            old_det, old_sc = other_revision(args.against, Path(tmp))
        except subprocess.CalledProcessError as error:
            print(f"error: git show {args.against}: {error.stderr.strip()}", file=sys.stderr)
            return 2
        same = outputs(series, old_det, old_sc) == outputs(series, detector, score)
        print(f"{readings:,} readings in {len(series)} series; scores, labels, incidents and states against "
              f"{args.against}: {'bit-identical' if same else 'DIFFERENT'}")
        print(f"this tree's detector: {native.implementation().describe()}; {args.against}'s: its detector.py, "
              f"pure Python")
        olds, news, ratios = [], [], []
        for r in range(args.rounds):
            first, second = ((old_det, old_sc), (detector, score)) if r % 2 == 0 else ((detector, score), (old_det, old_sc))
            a, b = seconds(series, *first), seconds(series, *second)
            old, new = (a, b) if r % 2 == 0 else (b, a)
            olds.append(readings / old)
            news.append(readings / new)
            ratios.append(old / new)
            print(f"round {r + 1}: {args.against} {olds[-1]:,.0f} readings/s, this tree {news[-1]:,.0f} readings/s, "
                  f"{ratios[-1]:.2f}x", flush=True)
    print(f"median of {args.rounds} rounds: {args.against} {statistics.median(olds):,.0f} readings/s, this tree "
          f"{statistics.median(news):,.0f} readings/s, ratio {statistics.median(ratios):.2f}x")
    return 0 if same else 1


if __name__ == "__main__":
    sys.exit(main())
