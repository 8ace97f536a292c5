"""python -m processor.anomaly score | generate | evaluate | evaluate-real | calibration

  score INPUT.csv OUTPUT.csv [--state STATE.json]
      timestamp,value -> timestamp,value,anomaly_score,label,incident for every row, with
      the processor's own detector: the score (a function of the reading's tail probability),
      the alarm the sink raises (label: score >= 0.5, one in a million) and whether the
      sensor's latched incident is open after the reading (incident), as operators see it.
      A row out of time order is scored as the processor scores a late reading, and counted
      on stderr; --state restores and saves its per-sensor state (the JSON the processor
      keeps in Redis).
  generate DIR [--seed N] [--series N] [--days D]
      a labelled synthetic corpus: one CSV per sensor and labels.json.
  evaluate [DIR] [--seed N] [--series N] [--days D] [--json FILE]
      NAB scores, event precision/recall/delay and speed of the project's detector and the
      baselines. DIR (default .gen/anomaly-corpus) is generated from the seed unless it
      already holds that corpus, or a labelled corpus of your own (labels.json with
      {"<series>": {"events": [{"kind", "timestamp"}]}} beside <series>.csv). Exits 1 when
      the detector misses a target.
  evaluate-real [--skab DIR] [DIR] [--seed N] [--series N] [--days D] [--json FILE] [--class-seeds N]
      the same on real data: SKAB (DIR default ../shared/data/skab) by its own protocols,
      beside the baselines, SKAB's leaderboard, the six classes of series (classes.py, N
      series each) and the synthetic corpus. Exits 1 naming each cell where a target is
      missed (NAB's windowed Gaussian not beaten in a profile, among them).
  calibration [--skab DIR] [--seeds N] [--json FILE]
      the reliability table: on normal data (SKAB's normal rows, the factory traffic, the
      six classes' normal life, N series each), the share of readings whose tail probability
      reaches 10^-k against the claimed 10^-k. Exits 1 naming the class and k over 3x.

  evaluate and evaluate-real also take --min-rate R: the speed under which a target is
  missed (default 100,000 readings/s; 0 to judge the scores alone).
"""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

from processor.anomaly.calibration import SEEDS
from processor.anomaly.evaluate import CLASS_SEEDS
from processor.anomaly.score import InputError, score_file


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m processor.anomaly", description=__doc__.split("\n")[0])
    sub = parser.add_subparsers(dest="command", required=True)
    score = sub.add_parser("score", help="score one sensor's series with the processor's detector")
    score.add_argument("input", type=Path)
    score.add_argument("output", type=Path)
    score.add_argument("--state", type=Path, help="detector state JSON to restore from and save to")
    for name in ("generate", "evaluate", "evaluate-real"):
        p = sub.add_parser(name, help={"generate": "write a labelled synthetic corpus",
                                       "evaluate": "score the detectors on a labelled corpus",
                                       "evaluate-real": "score them on SKAB, the six classes and the synthetic corpus"}[name])
        p.add_argument("directory", type=Path, nargs=None if name == "generate" else "?",
                       default=Path(".gen/anomaly-corpus"))
        if name == "evaluate-real":
            p.add_argument("--skab", type=Path, default=Path("../shared/data/skab"), help="the SKAB data folder")
            p.add_argument("--class-seeds", type=int, default=CLASS_SEEDS, help="series per class of classes.py")
        p.add_argument("--seed", type=int, default=7)
        p.add_argument("--series", type=int, default=60)
        p.add_argument("--days", type=float, default=8.0)
        if name != "generate":
            p.add_argument("--json", type=Path, help="also write the figures as JSON")
            p.add_argument("--min-rate", type=float, default=100_000.0, help="readings/s under which speed is a miss")
    calibrate = sub.add_parser("calibration", help="claimed against observed tail probabilities on normal data")
    calibrate.add_argument("--skab", type=Path, default=Path("../shared/data/skab"), help="the SKAB data folder")
    calibrate.add_argument("--seeds", type=int, default=SEEDS, help="series per class of classes.py")
    calibrate.add_argument("--json", type=Path, help="also write the table as JSON")
    args = parser.parse_args(argv)

    if args.command == "score":
        return _score(args)
    if args.command == "calibration":
        return _calibration(args)
    from processor.anomaly import evaluate, synthetic

    if args.series < 1 or args.days < 3:
        parser.error("--series must be at least 1 and --days at least 3 (two days of calibration come first)")
    if args.command == "generate" or not synthetic.is_current(args.directory, args.seed, args.series, args.days):
        corpus = synthetic.write_corpus(args.directory, args.seed, args.series, days=args.days)
        print(f"generated {len(corpus.series)} series into {args.directory} (seed {args.seed})", file=sys.stderr)
        if args.command == "generate":
            return 0
    corpus = synthetic.Corpus.open(args.directory)
    if args.command == "evaluate-real":
        from processor.anomaly import skab

        try:
            real = evaluate.evaluate_real(args.skab, corpus, args.class_seeds)
        except (InputError, skab.SkabError) as error:
            print(f"error: {error}", file=sys.stderr)
            return 2
        print(evaluate.render_real(real, corpus))
        if args.json:
            evaluate.write_real_json(real, args.json)
        misses = evaluate.targets_real(real, args.min_rate)
        for miss in misses:
            print(f"target missed: {miss}", file=sys.stderr)
        return 1 if misses else 0
    try:
        report = evaluate.evaluate(corpus)
    except InputError as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    print(evaluate.render(report, corpus))
    if args.json:
        evaluate.write_report_json(report, args.json)
    misses = evaluate.targets(report, args.min_rate)
    for miss in misses:
        print(f"target missed: {miss}", file=sys.stderr)
    return 1 if misses else 0


def _calibration(args: argparse.Namespace) -> int:
    from processor.anomaly import calibration, skab

    if args.seeds < 1:
        print("error: --seeds must be at least 1", file=sys.stderr)
        return 2
    try:
        rows = calibration.evaluate(args.skab, args.seeds)
    except skab.SkabError as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    print(calibration.render(rows))
    if args.json:
        calibration.write_json(rows, args.json)
    misses = calibration.misses(rows)
    for miss in misses:
        print(f"target missed: {miss}", file=sys.stderr)
    return 1 if misses else 0


def _score(args: argparse.Namespace) -> int:
    if not args.input.is_file():
        print(f"error: {args.input} is not a file", file=sys.stderr)
        return 2
    if args.input.resolve() == args.output.resolve():
        print("error: OUTPUT must differ from INPUT (the input would be lost)", file=sys.stderr)
        return 2
    try:
        rows, anomalies, late = score_file(args.input, args.output, args.state)
    except InputError as error:
        print(f"error: {args.input}: {error}", file=sys.stderr)
        return 2
    except UnicodeDecodeError:
        print(f"error: {args.input} is not UTF-8 text", file=sys.stderr)
        return 2
    print(f"scored {rows} readings of {args.input}: {anomalies} anomalies -> {args.output}", file=sys.stderr)
    if late:
        print(f"{late} readings were timestamped before the reading before them (a clock stepped back, or late); "
              "each was scored as if it arrived right after the last, as the processor does", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
