"""`python -m processor.produce`: send realistic retail or factory traffic to a Kinesis stream.

    python -m processor.produce retail --stream retail-dev-updates --rate 1000 --duration 60
    python -m processor.produce factory --stream factory-dev-readings --count 50000 --rate 0 \\
        --duplicates 0.01 --reorder 0.02 --poison 0.001 --anomalies 0.002 --labels labels.json

Rate 0 sends as fast as PutRecords allows. Throttled or failed entries are retried with
backoff, never dropped; the summary line on stdout says what was sent. AWS_ENDPOINT_URL
points it at an emulator.
"""
from __future__ import annotations

import argparse
import json
import sys
import time
from collections.abc import Iterable, Iterator
from datetime import UTC, datetime

from botocore.client import BaseClient

from processor.traffic import Faults, Labels
from processor.workloads import NAMES, workload

MAX_ENTRIES = 500  # PutRecords: at most 500 records...
MAX_BYTES = 5 * 1024 * 1024  # ...and 5 MiB per call


def batches(records: Iterable[tuple[str, bytes]]) -> Iterator[list[tuple[str, bytes]]]:
    batch: list[tuple[str, bytes]] = []
    size = 0
    for key, data in records:
        cost = len(key.encode()) + len(data)
        if batch and (len(batch) == MAX_ENTRIES or size + cost > MAX_BYTES):
            yield batch
            batch, size = [], 0
        batch.append((key, data))
        size += cost
    if batch:
        yield batch


def put_all(kinesis: BaseClient, stream: str, batch: list[tuple[str, bytes]], max_attempts: int = 10) -> int:
    """PutRecords with retries of the entries that failed; returns how many retries it took."""
    pending = batch
    for attempt in range(max_attempts):
        response = kinesis.put_records(StreamName=stream, Records=[{"PartitionKey": k, "Data": d} for k, d in pending])
        if not response.get("FailedRecordCount"):
            return attempt
        pending = [entry for entry, result in zip(pending, response["Records"], strict=True) if "ErrorCode" in result]
        time.sleep(min(2.0, 0.05 * 2**attempt))
    raise RuntimeError(f"{len(pending)} records still failing after {max_attempts} attempts")


def _start_time(text: str) -> datetime:
    try:
        parsed = datetime.fromisoformat(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not an RFC 3339 time: {text!r}") from None
    if parsed.tzinfo is None:
        raise argparse.ArgumentTypeError(f"give a UTC offset: {text!r}")
    return parsed.astimezone(UTC)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m processor.produce", description=__doc__.split("\n\n")[0],
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("workload", choices=NAMES)
    parser.add_argument("--stream", required=True, help="Kinesis stream name")
    parser.add_argument("--rate", type=float, default=1000.0, help="records per second; 0 = as fast as possible")
    size = parser.add_mutually_exclusive_group()
    size.add_argument("--count", type=int, help="records to send")
    size.add_argument("--duration", type=float, help="seconds to send for (at --rate)")
    for name in ("duplicates", "reorder", "poison", "anomalies"):
        parser.add_argument(f"--{name}", type=float, default=0.0, metavar="SHARE",
                            help=f"share of records with {name} (0..1)")
    parser.add_argument("--sensors", type=int, default=100, help="factory: how many sensors report (25 per line)")
    parser.add_argument("--step", type=float, default=0.001, metavar="SECONDS",
                        help="event time between consecutive records (default 1 ms)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--start", type=_start_time, metavar="RFC3339",
                        help="event time of the first record (default: now); with --seed, the stream is reproducible")
    parser.add_argument("--labels", metavar="FILE", help="write the injected anomalies' event ids here (JSON)")
    args = parser.parse_args(argv)
    if args.rate < 0:
        parser.error("--rate must be >= 0")
    if args.count is None and args.duration is None:
        parser.error("give --count or --duration")
    if args.sensors < 1:
        parser.error("--sensors must be at least 1")
    if args.step <= 0:
        parser.error("--step must be above 0")
    if args.duration is not None and args.rate == 0:
        parser.error("--duration needs a --rate above 0")
    count = args.count if args.count is not None else int(args.duration * args.rate)
    try:
        faults = Faults(args.duplicates, args.reorder, args.poison, args.anomalies)
    except ValueError as error:
        parser.error(str(error))

    import boto3
    from botocore.exceptions import BotoCoreError, ClientError

    kinesis = boto3.client("kinesis")
    labels = Labels()
    sent = retries = 0
    started = time.monotonic()
    try:
        for batch in batches(workload(args.workload).generate(count, faults=faults, seed=args.seed, labels=labels,
                                      start=args.start, sensors=args.sensors, step_s=args.step)):
            retries += put_all(kinesis, args.stream, batch)
            sent += len(batch)
            if args.rate:
                ahead = sent / args.rate - (time.monotonic() - started)
                if ahead > 0:
                    time.sleep(ahead)
    except (ClientError, BotoCoreError, RuntimeError) as error:
        print(f"produce: {str(error).splitlines()[0]} (after {sent} records)", file=sys.stderr)
        return 2
    elapsed = time.monotonic() - started
    if args.labels:
        with open(args.labels, "w", encoding="utf-8") as handle:
            json.dump({"anomalies": sorted(labels.anomalies), "poison": labels.poison,
                       "duplicates": labels.duplicates}, handle)
    print(json.dumps({"stream": args.stream, "sent": sent, "seconds": round(elapsed, 2),
                      "records_per_s": round(sent / elapsed) if elapsed else None, "retried_calls": retries,
                      "poison": labels.poison, "duplicates": labels.duplicates,
                      "anomalies": len(labels.anomalies)}))
    return 0


if __name__ == "__main__":
    sys.exit(main())
