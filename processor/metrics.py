"""Structured JSON logs and CloudWatch embedded-metric-format (EMF) lines on stdout.

The awslogs driver ships stdout to CloudWatch Logs, which turns EMF lines into metrics
in the stack's namespace. `EMITTED` is the one list of the metrics the processor emits (name
and unit): `Metrics.emit` refuses any other name, and the stacks' alarms and dashboard name
their metrics from these constants (pipeline_lib), so a metric renamed here cannot leave an
alarm watching nothing.
"""
from __future__ import annotations

import json
import logging
import sys
import time
from collections.abc import Iterable, Mapping
from typing import Any, TextIO

# Per batch
RECORDS_PROCESSED, DEAD_LETTERS, ANOMALIES = "RecordsProcessed", "DeadLetters", "Anomalies"
BATCH_LATENCY_MS, MILLIS_BEHIND_LATEST, RECORD_TO_COMMIT_MS = "BatchLatencyMs", "MillisBehindLatest", "RecordToCommitMs"
INCIDENTS_OPENED, INCIDENTS_CLOSED = "IncidentsOpened", "IncidentsClosed"
# Per heartbeat
LEASES_HELD, LIVE_WORKERS, GET_RECORDS_CALLS, READ_THROTTLED = "LeasesHeld", "LiveWorkers", "GetRecordsCalls", "ReadThrottled"
INCIDENT_OUTBOX_BACKLOG, INCIDENT_OUTBOX_OLDEST_AGE_S = "IncidentOutboxBacklog", "IncidentOutboxOldestAgeS"
# On failure
PROCESSING_ERRORS = "ProcessingErrors"

EMITTED: dict[str, str] = {
    RECORDS_PROCESSED: "Count", DEAD_LETTERS: "Count", ANOMALIES: "Count", BATCH_LATENCY_MS: "Milliseconds",
    MILLIS_BEHIND_LATEST: "Milliseconds", RECORD_TO_COMMIT_MS: "Milliseconds", INCIDENTS_OPENED: "Count",
    INCIDENTS_CLOSED: "Count", LEASES_HELD: "Count", LIVE_WORKERS: "Count", GET_RECORDS_CALLS: "Count",
    READ_THROTTLED: "Count", INCIDENT_OUTBOX_BACKLOG: "Count", INCIDENT_OUTBOX_OLDEST_AGE_S: "Seconds",
    PROCESSING_ERRORS: "Count",
}


def namespace_for(workload: str, suffix: str) -> str:
    """The CloudWatch namespace of one deployment's processor metrics (the task gets it as METRICS_NAMESPACE)."""
    return f"Pipeline/{workload}-{suffix}"


class JsonFormatter(logging.Formatter):
    RESERVED = set(logging.LogRecord("", 0, "", 0, "", (), None).__dict__) | {"message"}

    def format(self, record: logging.LogRecord) -> str:
        body: dict[str, Any] = {"level": record.levelname, "logger": record.name, "message": record.getMessage(),
                                "time": round(record.created, 3)}
        body.update({k: v for k, v in record.__dict__.items() if k not in self.RESERVED})
        if record.exc_info:
            body["exception"] = self.formatException(record.exc_info)
        return json.dumps(body, default=str)


def configure_logging(level: str = "INFO") -> None:
    handler = logging.StreamHandler(sys.stdout)
    handler.setFormatter(JsonFormatter())
    logging.basicConfig(level=level, handlers=[handler], force=True)


class Metrics:
    def __init__(self, namespace: str, workload: str, stream: TextIO = sys.stdout) -> None:
        self.namespace, self.workload, self.stream = namespace, workload, stream

    def emit(self, values: dict[str, float], **dimensions: str) -> None:
        values = {k: v for k, v in values.items() if v is not None}
        if not values:
            return
        unknown = sorted(k for k in values if k not in EMITTED)
        if unknown:
            raise ValueError(f"metrics {unknown} are not in processor.metrics.EMITTED: add them there, "
                             "where the alarms and the dashboard find them")
        line = {
            "_aws": {"Timestamp": int(time.time() * 1000), "CloudWatchMetrics": [{
                "Namespace": self.namespace, "Dimensions": [[]],
                "Metrics": [{"Name": k, "Unit": EMITTED[k]} for k in values],
            }]},
            "workload": self.workload, **dimensions, **values,
        }
        self.stream.write(json.dumps(line) + "\n")


class LatencyHistogram:
    """Record-to-commit latency: from Kinesis accepting a record (its
    ApproximateArrivalTimestamp) to the commit of the batch that holds it.

    Fixed buckets, so memory stays constant however long the processor runs: 1 ms wide
    up to 1 s, then 10 ms wide up to 60 s, then one overflow bucket. Quantiles are the
    upper edge of the bucket they fall in."""

    FINE_MS, COARSE_MS, COARSE_STEP = 1000, 60_000, 10

    def __init__(self) -> None:
        self.counts = [0] * (self.FINE_MS + (self.COARSE_MS - self.FINE_MS) // self.COARSE_STEP + 1)
        self.total = 0

    def _bucket(self, ms: float) -> int:
        if ms < self.FINE_MS:
            return max(0, int(ms))
        if ms < self.COARSE_MS:
            return self.FINE_MS + int(ms - self.FINE_MS) // self.COARSE_STEP
        return len(self.counts) - 1

    def _upper_ms(self, bucket: int) -> float:
        if bucket < self.FINE_MS:
            return bucket + 1.0
        if bucket < len(self.counts) - 1:
            return float(self.FINE_MS + (bucket - self.FINE_MS + 1) * self.COARSE_STEP)
        return float("inf")

    def add(self, records: Iterable[Mapping[str, Any]], committed_at: float) -> float | None:
        """Count each record's latency; returns the batch's largest (ms), None if no record has an arrival time."""
        worst = None
        for record in records:
            arrived = record.get("ApproximateArrivalTimestamp")
            if arrived is None:
                continue
            ms = (committed_at - arrived.timestamp()) * 1000.0
            self.counts[self._bucket(ms)] += 1
            self.total += 1
            worst = ms if worst is None or ms > worst else worst
        return None if worst is None else round(worst, 1)

    def quantile(self, q: float) -> float | None:
        """The latency (ms) that a fraction `q` of records stayed within; None before any record."""
        if not self.total:
            return None
        rank = max(1, round(q * self.total))
        seen = 0
        for bucket, count in enumerate(self.counts):
            seen += count
            if seen >= rank:
                return self._upper_ms(bucket)
        return float("inf")  # pragma: no cover - the counts add up to total
