"""Factory: every reading once, anomalies at most once per triggering event."""
from __future__ import annotations

import dataclasses
import logging
from collections.abc import Sequence
from datetime import datetime, timezone

import redis

from processor.anomaly.detector import DetectorState, update
from processor.records import SensorReading
from processor.sinks import Outcome

logger = logging.getLogger(__name__)

INSERT_READINGS = """
INSERT INTO sensor_readings (event_id, ts, sensor_id, line_id, kind, value, status, unit)
SELECT * FROM unnest(%s::uuid[], %s::timestamptz[], %s::text[], %s::text[], %s::text[], %s::float8[],
                     %s::text[], %s::text[])
ON CONFLICT DO NOTHING
RETURNING event_id
"""
INSERT_ANOMALIES = """
INSERT INTO anomalies (event_id, sensor_id, line_id, ts, kind, value, score, reason)
SELECT * FROM unnest(%s::uuid[], %s::text[], %s::text[], %s::timestamptz[], %s::text[], %s::float8[],
                     %s::float8[], %s::text[])
ON CONFLICT (event_id) DO NOTHING
"""
STATE_PREFIX = "detector:"
LATEST_PREFIX = "sensor:"


def month_bounds(ts: datetime) -> tuple[datetime, datetime]:
    start = datetime(ts.year, ts.month, 1, tzinfo=timezone.utc)
    end = datetime(ts.year + (ts.month == 12), ts.month % 12 + 1, 1, tzinfo=timezone.utc)
    return start, end


class FactorySink:
    workload = "factory"

    def __init__(self, redis_client: redis.Redis | None = None) -> None:
        self.redis = redis_client
        self.states: dict[str, DetectorState] = {}  # this task's sensors; Redis is the hand-over
        self._partitions: set[str] = set()
        self._undo: dict[str, DetectorState | None] = {}

    def maintain(self, conn) -> None:  # noqa: ANN001
        """No housekeeping: detector state is written after every batch."""

    def prepare(self, conn, records: Sequence[SensorReading]) -> None:  # noqa: ANN001
        """Create missing monthly partitions in their own transaction, before the batch."""
        for start, end in sorted({month_bounds(r.ts) for r in records}):
            name = f"sensor_readings_y{start.year}m{start.month:02d}"
            if name in self._partitions:
                continue
            with conn:
                with conn.cursor() as cur:
                    cur.execute("SELECT pg_advisory_xact_lock(hashtext(%s))", (name,))
                    cur.execute(
                        f"CREATE TABLE IF NOT EXISTS {name} PARTITION OF sensor_readings "
                        "FOR VALUES FROM (%s) TO (%s)",
                        (start, end),
                    )
            self._partitions.add(name)

    def _load_states(self, sensors: set[str]) -> None:
        missing = sorted(s for s in sensors if s not in self.states)
        if not missing:
            return
        raw: list = [None] * len(missing)
        if self.redis is not None:
            try:
                raw = self.redis.mget([STATE_PREFIX + s for s in missing])
            except redis.RedisError as error:
                logger.warning("detector state unavailable, starting fresh (%s)", error.__class__.__name__)
        for sensor, text in zip(missing, raw, strict=True):
            self.states[sensor] = DetectorState.from_json(text)

    def apply(self, cur, records: Sequence) -> Outcome:  # noqa: ANN001
        readings = [r for r in records if isinstance(r, SensorReading)]
        if not readings:
            return Outcome()
        cur.execute(INSERT_READINGS, (
            [r.event_id for r in readings], [r.ts for r in readings], [r.sensor_id for r in readings],
            [r.line_id for r in readings], [r.kind for r in readings], [r.value for r in readings],
            [r.status for r in readings], [r.unit for r in readings],
        ))
        fresh = {str(row[0]) for row in cur.fetchall()}
        new = sorted((r for r in readings if r.event_id in fresh), key=lambda r: (r.sensor_id, r.ts, r.event_id))
        touched = {r.sensor_id for r in new if r.kind != "status"}
        self._load_states(touched)
        self._undo = {s: dataclasses.replace(self.states[s]) for s in touched}
        anomalies = []
        for reading in new:
            if reading.kind == "status":
                if reading.status == "FAULT":
                    anomalies.append((reading, 1.0, "equipment reported FAULT"))
                continue
            verdict = update(self.states[reading.sensor_id], reading.value,
                             reading.ts.isoformat(timespec="microseconds"), reading.event_id)
            if verdict is not None and verdict.anomalous:
                anomalies.append((reading, verdict.score, verdict.reason))
        if anomalies:
            cur.execute(INSERT_ANOMALIES, (
                [a[0].event_id for a in anomalies], [a[0].sensor_id for a in anomalies],
                [a[0].line_id for a in anomalies], [a[0].ts for a in anomalies], [a[0].kind for a in anomalies],
                [a[0].value for a in anomalies], [a[1] for a in anomalies], [a[2] for a in anomalies],
            ))
        latest: dict[str, SensorReading] = {}
        for reading in new:
            latest[reading.sensor_id] = reading
        return Outcome(anomalies=len(anomalies), redis_payload=latest)

    def rollback(self) -> None:
        """The batch transaction failed: forget what it taught the detectors."""
        for sensor, state in self._undo.items():
            self.states[sensor] = state
        self._undo = {}

    def after_commit(self, conn, outcome: Outcome) -> None:  # noqa: ANN001
        self._undo = {}
        if self.redis is None or not outcome.redis_payload:
            return
        pipe = self.redis.pipeline(transaction=False)
        for sensor, reading in outcome.redis_payload.items():
            pipe.hset(LATEST_PREFIX + sensor, mapping={
                "ts": reading.ts.isoformat(), "kind": reading.kind, "line_id": reading.line_id,
                "value": "" if reading.value is None else repr(reading.value), "status": reading.status or "",
                "event_id": reading.event_id,
            })
            if sensor in self.states:
                pipe.set(STATE_PREFIX + sensor, self.states[sensor].to_json())
        try:
            pipe.execute()
        except redis.RedisError as error:
            # The in-memory state carries on; Redis catches up on the next batch.
            logger.warning("sensor state not written to Redis (%s)", error.__class__.__name__)
