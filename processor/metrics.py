"""Structured JSON logs and CloudWatch embedded-metric-format (EMF) lines on stdout.

The awslogs driver ships stdout to CloudWatch Logs, which turns EMF lines into metrics
in the stack's namespace; the stack's alarms watch ProcessingErrors and DeadLetters.
"""
from __future__ import annotations

import json
import logging
import sys
import time
from typing import Any

UNITS = {"RecordsProcessed": "Count", "DeadLetters": "Count", "Anomalies": "Count", "ProcessingErrors": "Count",
         "BatchLatencyMs": "Milliseconds", "MillisBehindLatest": "Milliseconds"}


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
    def __init__(self, namespace: str, workload: str, stream=sys.stdout) -> None:  # noqa: ANN001
        self.namespace, self.workload, self.stream = namespace, workload, stream

    def emit(self, values: dict[str, float], **dimensions: str) -> None:
        values = {k: v for k, v in values.items() if v is not None}
        if not values:
            return
        line = {
            "_aws": {"Timestamp": int(time.time() * 1000), "CloudWatchMetrics": [{
                "Namespace": self.namespace, "Dimensions": [[]],
                "Metrics": [{"Name": k, "Unit": UNITS.get(k, "None")} for k in values],
            }]},
            "workload": self.workload, **dimensions, **values,
        }
        self.stream.write(json.dumps(line) + "\n")
