"""The factory processor and the offline scorer flag the very same readings."""
from __future__ import annotations

import csv
import random
import subprocess
import sys
import uuid
from pathlib import Path

import psycopg2
import redis

from processor.anomaly.synthetic import generate_series
from processor.sinks.factory import FactorySink
from processor.workloads import FACTORY
from tests.processor.test_sinks import apply, rows

ROOT = Path(__file__).resolve().parents[2]


def test_the_sink_raises_exactly_the_anomalies_the_offline_scorer_labels(conn: psycopg2.extensions.connection,
                                                                         redis_client: redis.Redis, tmp_path: Path) -> None:
    series = generate_series(random.Random(17), "press-9", days=4.0, kinds=("stuck", "spike"))
    # GIVEN one sensor's series, as the offline scorer reads it and as the stream carries it
    source = tmp_path / "series.csv"
    source.write_text("timestamp,value\n" + "".join(f"{ts},{v}\n" for ts, v in series.rows))
    scored = tmp_path / "scored.csv"
    subprocess.run([sys.executable, "-m", "processor.anomaly", "score", str(source), str(scored)], cwd=ROOT,
                   check=True, capture_output=True, timeout=120)
    with scored.open(newline="") as f:
        labelled = {row["timestamp"] for row in csv.DictReader(f) if row["label"] == "1"}
    bodies = [{"event_id": str(uuid.UUID(int=random.Random(i).getrandbits(128), version=4)), "sensor_id": "press-9",
               "line_id": "line-1", "kind": series.kind, "value": v, "unit": series.unit, "ts": ts}
              for i, (ts, v) in enumerate(series.rows)]
    # WHEN the processor applies it in batches, handing the detector over through Redis midway
    FACTORY.migrate(conn)
    sink = FactorySink(redis_client)
    for start in range(0, len(bodies), 500):
        if start and start % 2000 == 0:  # a new task every four batches picks the detector up from Redis
            sink = FactorySink(redis_client)
        apply(conn, sink, bodies[start:start + 500], "factory")
    # THEN PostgreSQL holds one anomaly per labelled reading, and no other
    flagged = {ts.strftime("%Y-%m-%dT%H:%M:%SZ") for (ts,) in rows(conn, "SELECT ts AT TIME ZONE 'UTC' FROM anomalies")}
    assert len(labelled) >= 2
    assert flagged == labelled
