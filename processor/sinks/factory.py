"""Factory: every reading once, anomalies at most once per triggering event, one incident
per line (processor/incidents.py) and its messages through the outbox (processor/outbox.py)."""
from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from operator import attrgetter
from typing import Any

import msgspec
import psycopg2
import redis

from processor import incidents
from processor.anomaly.detector import VERSION, DetectorState, observe
from processor.incidents import FAULT, REGIME, Signal
from processor.metrics import ANOMALIES, INCIDENTS_CLOSED, INCIDENTS_OPENED
from processor.outbox import OutboxPublisher, backlog
from processor.records import SensorReading
from processor.redis_rest import PROCESSOR_REDIS_REST_S, RedisRest
from processor.task_settings import INCIDENT_QUIET_S, INCIDENT_WINDOW_S

logger = logging.getLogger(__name__)

# The batch travels as one JSON text ([[event_id, ts, sensor, line, kind, value, status, unit], ...]):
# PostgreSQL parses jsonb far faster than psycopg2 adapts eight Python lists, and msgspec
# writes it (datetimes as RFC 3339 included) in ~0.5 us a reading, json.dumps in ~3.
INSERT_READINGS = """
INSERT INTO sensor_readings (event_id, ts, sensor_id, line_id, kind, value, status, unit)
SELECT (r->>0)::uuid, (r->>1)::timestamptz, r->>2, r->>3, r->>4, (r->>5)::float8, r->>6, r->>7
  FROM jsonb_array_elements(%s::jsonb) AS r
ON CONFLICT DO NOTHING
RETURNING event_id, ts
"""
INSERT_ANOMALIES = """
INSERT INTO anomalies (event_id, sensor_id, line_id, ts, kind, value, score, reason)
SELECT (a->>0)::uuid, a->>1, a->>2, (a->>3)::timestamptz, a->>4, (a->>5)::float8, (a->>6)::float8, a->>7
  FROM jsonb_array_elements(%s::jsonb) AS a
ON CONFLICT (event_id) DO NOTHING
"""
STATE_PREFIX = "detector:"
LATEST_PREFIX = "sensor:"
_encode = msgspec.json.Encoder().encode
_in_sensor_order = attrgetter("sensor_id", "ts", "event_id")

# KEYS: n latest-reading hashes, then detector-state keys. ARGV[1] = n; ARGV[2] = JSON
# [[ts, event_id, kind, line_id, value, status], ...] for the n hashes; ARGV[3] = JSON
# [[t, count, replace], ...], one per state; ARGV[4] = the states' format version; ARGV[5...] =
# the detector states, one per remaining key. A reading replaces the latest one only when its
# (ts, event_id) is greater: a reordered or replayed older reading cannot move a sensor's latest
# value backwards. ts is fixed-width UTC, so strings compare as times. A state replaces the
# stored one only when its (t, count) is not smaller (a task that stalled past its lease between
# commit and this write cannot put back an older state over the next owner's), unless the stored
# one is of another version or was unreadable when loaded (replace = 1): DetectorState.to_bytes
# writes count and t first and v last, which is what the patterns below read.
WRITE_SENSORS = """
local n = tonumber(ARGV[1])
local latest = cjson.decode(ARGV[2])
for i = 1, n do
  local r = latest[i]
  local order = r[1] .. '|' .. r[2]
  local current = redis.call('HGET', KEYS[i], 'order')
  if not current or current < order then
    redis.call('HSET', KEYS[i], 'order', order, 'ts', r[1], 'event_id', r[2], 'kind', r[3],
               'line_id', r[4], 'value', r[5], 'status', r[6])
  end
end
local stamps = cjson.decode(ARGV[3])
local version = ARGV[4]
for j = 1, #stamps do
  local key, stamp = KEYS[n + j], stamps[j]
  local write = stamp[3] == 1
  if not write then
    local stored = redis.call('GET', key)
    local count, t = nil, nil
    if stored and string.match(stored, ',"v":(%d+)}$') == version then
      count, t = string.match(stored, '^{"count":(%d+),"t":([^,]+),')
    end
    count, t = tonumber(count), tonumber(t)
    write = not count or not t or stamp[1] > t or (stamp[1] == t and stamp[2] >= count)
  end
  if write then
    redis.call('SET', key, ARGV[4 + j])
  end
end
return n
"""


def utc_offset_text(ts: datetime) -> str:
    """Fixed-width UTC text ending in +00:00 (ts is already UTC): lexical order is time order."""
    return ts.isoformat(timespec="microseconds")


@dataclass(frozen=True)
class FactoryOutcome:
    """What the batch stored (anomalies, incidents opened and closed, messages queued) and
    each touched sensor's latest new reading."""

    anomalies: int = 0
    latest: dict[str, SensorReading] = field(default_factory=dict)
    incidents_opened: int = 0
    incidents_closed: int = 0

    def metrics(self) -> Mapping[str, int]:
        return {ANOMALIES: self.anomalies, INCIDENTS_OPENED: self.incidents_opened, INCIDENTS_CLOSED: self.incidents_closed}

    @property
    def messages(self) -> int:
        return self.incidents_opened + self.incidents_closed


@dataclass(frozen=True)
class IncidentSettings:
    window: timedelta = timedelta(seconds=INCIDENT_WINDOW_S.default)  # processor/task_settings.py
    quiet_s: float = INCIDENT_QUIET_S.default


class FactorySink:

    def __init__(self, redis_client: redis.Redis | None = None, *, incident_settings: IncidentSettings | None = None,
                 publisher: OutboxPublisher | None = None, redis_rest_s: float = PROCESSOR_REDIS_REST_S) -> None:
        self.redis = redis_client
        # A Redis that failed is left alone for `redis_rest_s`: states start fresh (`_unloaded`), and what
        # was not written waits in `_behind` and `_unwritten` for the first write once Redis answers.
        self.redis_rest = RedisRest(redis_rest_s, away="detector states and latest readings wait in memory",
                                    back="detector states and latest readings are written again")
        self._behind: dict[str, SensorReading] = {}  # latest readings Redis does not have yet
        self._unwritten: set[str] = set()  # sensors whose state Redis does not have yet
        self._write_sensors = redis_client.register_script(WRITE_SENSORS) if redis_client is not None else None
        self.states: dict[str, DetectorState] = {}  # this task's sensors; Redis is the hand-over
        # Sensors whose state started fresh because Redis did not answer: Redis may hold their history,
        # so it is asked again at their next batch and never overwritten with the fresh state meanwhile.
        self._unloaded: set[str] = set()
        # Sensors whose stored state could not be read (another version, malformed): their next write
        # replaces it, whatever its stamp says.
        self._replace: set[str] = set()
        self._partitions: set[tuple[int, int]] = set()  # (year, month) known to exist
        self._undo: dict[str, tuple] = {}  # sensor -> DetectorState.snapshot()
        self.incident_settings = incident_settings or IncidentSettings()
        self.publisher = publisher  # None: the messages wait in the outbox (no topic configured)

    @classmethod
    def from_settings(cls, redis_client: redis.Redis | None, settings: Any) -> FactorySink:
        """As the processor runs it (processor.config.ProcessorConfig): incidents grouped over
        INCIDENT_WINDOW_S, and published to INCIDENT_TOPIC_ARN when it is set."""
        if settings is None:
            return cls(redis_client)
        publisher = None
        if settings.incident_topic_arn:
            import boto3
            from botocore.config import Config

            sns = boto3.client("sns", region_name=settings.region, config=Config(
                connect_timeout=3, read_timeout=5, retries={"total_max_attempts": 2, "mode": "standard"}))
            publisher = OutboxPublisher(sns, settings.incident_topic_arn)
        return cls(redis_client, publisher=publisher, incident_settings=IncidentSettings(
            timedelta(seconds=settings.incident_window_s), settings.incident_quiet_s))

    def maintain(self, conn: psycopg2.extensions.connection) -> Mapping[str, float]:
        """Write to Redis what it missed, close the incidents of lines gone silent, send what the outbox holds, and report
        its backlog (the alarm on IncidentOutboxOldestAgeS watches it)."""
        self._write_redis(FactoryOutcome())  # what a resting Redis missed, also when no batch comes
        settings = self.incident_settings
        incidents.close_quiet(conn, settings.quiet_s, settings.window)
        if self.publisher is not None:
            self.publisher.publish(conn)
        return backlog(conn).gauges()

    def prepare(self, conn: psycopg2.extensions.connection, records: Sequence[SensorReading]) -> None:
        """Create missing monthly partitions in their own transaction, before the batch,
        through the schema's ensure_reading_partition (the processor's role runs no DDL)."""
        for month in sorted({(r.ts.year, r.ts.month) for r in records}):
            if month in self._partitions:
                continue
            with conn:
                with conn.cursor() as cur:
                    cur.execute("SELECT ensure_reading_partition(%s, %s)", month)
            self._partitions.add(month)

    def _load_states(self, sensors: set[str]) -> None:
        missing = sorted(s for s in sensors if s not in self.states or s in self._unloaded)
        if not missing:
            return
        raw: list = [None] * len(missing)
        if self.redis is not None:
            if self.redis_rest.resting():
                self._start_fresh(missing)
                return
            try:
                raw = self.redis.mget([STATE_PREFIX + s for s in missing])
            except redis.RedisError as error:
                self.redis_rest.failed(error)
                self._start_fresh(missing)
                return
            self.redis_rest.answered()
        for sensor, text in zip(missing, raw, strict=True):
            # A stored history wins over what a fresh state learnt during an outage (a few readings).
            if text is not None or sensor not in self.states:
                state = self.states[sensor] = DetectorState.from_json(text)
                if text is not None and state.count == 0:  # a stored state counts at least one reading
                    self._replace.add(sensor)
        self._unloaded.difference_update(missing)

    def _start_fresh(self, sensors: list[str]) -> None:
        """Redis did not answer (or rests): these sensors start fresh, and are asked for again next time."""
        for sensor in sensors:
            self.states.setdefault(sensor, DetectorState.from_json(None))
        self._unloaded.update(sensors)

    def apply(self, cur: psycopg2.extensions.cursor, records: Sequence) -> FactoryOutcome:
        readings = [r for r in records if isinstance(r, SensorReading)]
        if not readings:
            return FactoryOutcome()
        cur.execute(INSERT_READINGS, (_encode([
            (r.event_id, r.ts, r.sensor_id, r.line_id, r.kind, r.value, r.status, r.unit)
            for r in readings]).decode(),))
        # Each row this batch stored, once: a record the producer sent twice may be twice in one page,
        # and it must fire, count and teach the detector once, as it does when its copies span two batches.
        stored = {(str(event_id), ts) for event_id, ts in cur.fetchall()}
        new = []
        for r in readings:
            if (r.event_id, r.ts) in stored:
                stored.discard((r.event_id, r.ts))
                new.append(r)
        new.sort(key=_in_sensor_order)
        touched = {r.sensor_id for r in new if r.kind != "status"}
        self._load_states(touched)
        self._undo = {s: self.states[s].snapshot() for s in touched}
        anomalies = []
        firing: list[Signal] = []
        quiet: dict[str, list[datetime]] = {}
        for reading in new:
            check, score = None, 0.0
            if reading.kind == "status":
                if reading.status == "FAULT":
                    anomalies.append((reading, 1.0, "equipment reported FAULT"))
                    check, score = FAULT, 1.0
            else:
                verdict = observe(self.states[reading.sensor_id], reading.ts, reading.value, reading.event_id)
                if verdict is not None:
                    if verdict.anomalous:
                        anomalies.append((reading, verdict.score, verdict.reason))
                        check, score = verdict.reason.partition(":")[0], verdict.score
                    elif verdict.incident:
                        check, score = REGIME, verdict.score
            if check is None:
                times = quiet.get(reading.line_id)
                if times is None:
                    quiet[reading.line_id] = [reading.ts]
                else:
                    times.append(reading.ts)
            else:
                firing.append(Signal(reading.ts, reading.line_id, reading.sensor_id, reading.kind, reading.event_id,
                                     check, score))
        changes = incidents.apply(cur, firing, quiet, self.incident_settings.window)
        if anomalies:
            cur.execute(INSERT_ANOMALIES, (_encode([
                (r.event_id, r.sensor_id, r.line_id, r.ts, r.kind, r.value, score, reason)
                for r, score, reason in anomalies]).decode(),))
        latest: dict[str, SensorReading] = {}
        for reading in new:
            latest[reading.sensor_id] = reading
        return FactoryOutcome(len(anomalies), latest, changes.opened, changes.closed)

    def release(self) -> None:
        """Another task may read this task's sensors from now on and move their detectors on in Redis:
        each is loaded again at its next batch here, never carried on from a stale copy."""
        self.states.clear()
        self._unloaded.clear()
        self._replace.clear()
        self._unwritten.clear()  # another task owns these states now; the latest readings still go (guarded)

    def rollback(self) -> None:
        """The batch transaction failed: forget what it taught the detectors."""
        for sensor, snapshot in self._undo.items():
            self.states[sensor].restore(snapshot)
        self._undo = {}

    def after_commit(self, conn: psycopg2.extensions.connection, outcome: FactoryOutcome) -> None:
        self._undo = {}
        self._write_redis(outcome)
        if outcome.messages and self.publisher is not None:
            self.publisher.publish(conn)  # at once; what SNS refuses goes on the next tries

    def _write_redis(self, outcome: FactoryOutcome) -> None:
        """Each sensor's latest reading and detector state, with those a resting or failed Redis missed."""
        if self._write_sensors is None:
            return
        for sensor, reading in outcome.latest.items():
            behind = self._behind.get(sensor)
            if behind is None or (behind.ts, behind.event_id) < (reading.ts, reading.event_id):
                self._behind[sensor] = reading
        self._unwritten.update(outcome.latest)
        if not self._behind or self.redis_rest.resting():
            return
        latest = self._behind
        sensors = sorted(latest)
        with_state = sorted(s for s in self._unwritten if s in self.states and s not in self._unloaded)
        states = [self.states[s] for s in with_state]
        stamps = [(state.t, state.count, int(s in self._replace)) for s, state in zip(with_state, states, strict=True)]
        try:
            self._write_sensors(
                keys=[LATEST_PREFIX + s for s in sensors] + [STATE_PREFIX + s for s in with_state],
                args=[len(sensors), _encode([
                    (utc_offset_text(r.ts), r.event_id, r.kind, r.line_id, "" if r.value is None else repr(r.value),
                     r.status or "") for r in (latest[s] for s in sensors)]),
                      _encode(stamps), VERSION, *(state.to_bytes() for state in states)])
        except redis.RedisError as error:
            # The in-memory states and readings carry on; Redis gets them with the first write it answers.
            self.redis_rest.failed(error)
            return
        self.redis_rest.answered()
        self._behind = {}
        self._unwritten.clear()
        self._replace.difference_update(with_state)
