"""One incident per production line, not one alarm per check.

Whatever fires on the sensors of one line (a reading the detector scores as anomalous, a
sensor whose regime incident is open, an equipment `FAULT`) within `window` of event time
belongs to one incident: opened by the first firing, updated by every later one (its
sensors, sensor kinds, checks, peak score, severity), closed by the first reading of the
line (firing or not) more than `window` after the last firing, or by `close_quiet` when
the line has gone silent. A firing that arrives late, inside the span of an incident
already closed, joins that incident instead of opening another.

PostgreSQL holds the incidents (`incidents`, at most one open per line by a partial unique
index), written in the batch's transaction. Sensors of one line reach different shards,
so several workers may touch a line at once: each batch takes a transaction-level lock per
line it touches (in name order), reads the line's current incident, and writes what
changed. Nothing is kept between batches, so a rolled-back batch, a replay or a restart
changes nothing: the sink feeds only readings PostgreSQL had not stored, and an incident's
id derives from its line and the reading that opened it.

Each open and close also writes one message to the outbox (`incident_outbox`, same
transaction), which processor/outbox.py publishes after the commit.
"""
from __future__ import annotations

import json
import uuid
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from datetime import datetime, timedelta
from typing import Any, Literal, NamedTuple

import psycopg2

from processor.anomaly.detector import score_of

NAMESPACE = uuid.UUID("5d1f0e7a-3c2b-4b8e-9a41-6f0c2d9e8b17")  # incident and message ids (uuid5)
SURPRISE, SHIFT, STUCK, REGIME, FAULT = "surprise", "shift", "stuck", "regime", "fault"
CHECKS = (SURPRISE, SHIFT, STUCK, REGIME, FAULT)
# A reading this rare makes the incident critical: one in a million by the sensor's own history, which only a
# sensor with thousands of readings behind it can claim (detector.alarm_history's reasoning, a hundredfold).
CRITICAL_SCORE = score_of(1e-6)
Severity = Literal["warning", "critical"]
Event = Literal["opened", "closed"]


class Signal(NamedTuple):  # one per firing reading, and per quiet one of a line with an incident open
    """One reading of a line as the incidents see it: firing (`check` set) or quiet."""

    ts: datetime
    line_id: str
    sensor_id: str
    kind: str
    event_id: str
    check: str | None = None  # one of CHECKS when the reading fires
    score: float = 0.0


@dataclass
class Incident:
    incident_id: str
    line_id: str
    opened_at: datetime
    last_fired_at: datetime
    closed_at: datetime | None = None
    sensors: set[str] = field(default_factory=set)
    kinds: set[str] = field(default_factory=set)
    checks: set[str] = field(default_factory=set)
    peak_score: float = 0.0
    firings: int = 0

    @property
    def severity(self) -> Severity:
        """Critical when the equipment reported a fault, when sensors of more than one kind
        fire (the machine, not a sensor), or when a reading was extremely surprising."""
        if FAULT in self.checks or len(self.kinds) > 1 or self.peak_score >= CRITICAL_SCORE:
            return "critical"
        return "warning"

    def fire(self, signal: Signal) -> None:
        self.sensors.add(signal.sensor_id)
        self.kinds.add(signal.kind)
        self.checks.add(signal.check or "")
        self.peak_score = max(self.peak_score, signal.score)
        self.firings += 1
        if signal.ts > self.last_fired_at:
            self.last_fired_at = signal.ts

    def message(self, event: Event) -> Message:
        """The outbox message for this incident's `event`, as it stands now."""
        message_id = str(uuid.uuid5(NAMESPACE, f"{self.incident_id}:{event}"))
        kinds = sorted(self.kinds)
        body = {
            "message_id": message_id, "incident_id": self.incident_id, "event": event, "line_id": self.line_id,
            "severity": self.severity, "opened_at": self.opened_at.isoformat(),
            "closed_at": self.closed_at.isoformat() if self.closed_at else None,
            "last_fired_at": self.last_fired_at.isoformat(), "sensors": sorted(self.sensors), "kinds": kinds,
            "checks": sorted(self.checks), "peak_score": round(self.peak_score, 6), "firings": self.firings,
        }
        attributes = {"line": self.line_id, "kinds": kinds, "severity": self.severity, "event": event}
        return Message(message_id, self.incident_id, event, body, attributes)


@dataclass(frozen=True)
class Message:
    message_id: str  # the consumer's de-duplication key: the same for every delivery of one event
    incident_id: str
    event: Event
    body: Mapping[str, Any]
    attributes: Mapping[str, str | list[str]]  # SNS message attributes, for subscription filter policies


@dataclass
class Changes:
    """What one batch did to the incidents: rows to write, messages to send."""

    incidents: dict[str, Incident] = field(default_factory=dict)  # by id
    messages: list[Message] = field(default_factory=list)

    @property
    def opened(self) -> int:
        return sum(m.event == "opened" for m in self.messages)

    @property
    def closed(self) -> int:
        return sum(m.event == "closed" for m in self.messages)


def incident_id(line_id: str, opening_event_id: str) -> str:
    return str(uuid.uuid5(NAMESPACE, f"{line_id}:{opening_event_id}"))


def group(current: Mapping[str, Incident], signals: Iterable[Signal], window: timedelta) -> Changes:
    """Fold a batch's signals into the lines' incidents. `current` holds each line's open
    incident, or else its latest closed one; it is not modified."""
    changes = Changes()
    latest = {line: replace(inc, sensors=set(inc.sensors), kinds=set(inc.kinds), checks=set(inc.checks))
              for line, inc in current.items()}
    for signal in sorted(signals, key=lambda s: (s.line_id, s.ts, s.event_id)):
        inc = latest.get(signal.line_id)
        if inc is not None and inc.closed_at is None and signal.ts > inc.last_fired_at + window:
            inc.closed_at = signal.ts
            changes.incidents[inc.incident_id] = inc
            changes.messages.append(inc.message("closed"))
        if signal.check is None:
            continue
        if inc is not None and (inc.closed_at is None  # open: one per line, whatever the reading's time
                                or inc.opened_at - window <= signal.ts <= inc.last_fired_at + window):
            inc.fire(signal)  # open, or late evidence of one that has closed since
            changes.incidents[inc.incident_id] = inc
            continue
        inc = Incident(incident_id(signal.line_id, signal.event_id), signal.line_id, signal.ts, signal.ts)
        inc.fire(signal)
        latest[signal.line_id] = inc
        changes.incidents[inc.incident_id] = inc
        changes.messages.append(inc.message("opened"))
    return changes


# -- PostgreSQL ----------------------------------------------------------------------------------------------------

LOCK_LINES = """
SELECT pg_advisory_xact_lock(hashtext('incidents:' || line_id))
  FROM (SELECT DISTINCT unnest(%s::text[]) AS line_id ORDER BY 1) AS lines
"""
CURRENT = """
SELECT DISTINCT ON (line_id) incident_id::text, line_id, opened_at, last_fired_at, closed_at, sensors, kinds, checks,
       peak_score, firings
  FROM incidents WHERE line_id = ANY(%s) ORDER BY line_id, (closed_at IS NULL) DESC, opened_at DESC
"""
UPSERT = """
INSERT INTO incidents (incident_id, line_id, opened_at, last_fired_at, closed_at, sensors, kinds, checks, peak_score,
                       firings, severity)
SELECT (i->>0)::uuid, i->>1, (i->>2)::timestamptz, (i->>3)::timestamptz, (i->>4)::timestamptz,
       ARRAY(SELECT jsonb_array_elements_text(i->5)), ARRAY(SELECT jsonb_array_elements_text(i->6)),
       ARRAY(SELECT jsonb_array_elements_text(i->7)), (i->>8)::float8, (i->>9)::integer, i->>10
  FROM jsonb_array_elements(%s::jsonb) AS i
ON CONFLICT (incident_id) DO UPDATE SET
    last_fired_at = excluded.last_fired_at, closed_at = excluded.closed_at, sensors = excluded.sensors,
    kinds = excluded.kinds, checks = excluded.checks, peak_score = excluded.peak_score, firings = excluded.firings,
    severity = excluded.severity, updated_at = now()
"""
ENQUEUE = """
INSERT INTO incident_outbox (message_id, incident_id, event, body, attributes)
SELECT (m->>0)::uuid, (m->>1)::uuid, m->>2, m->3, m->4 FROM jsonb_array_elements(%s::jsonb) AS m
ON CONFLICT (message_id) DO NOTHING
"""
# Open incidents no batch has touched for a while, in wall time: their line went silent (a
# line stopped, its sensors' shards stalled). Wall time of the last write, not event time:
# a backlog being caught up, hours behind, is not silence.
STALE = """
SELECT incident_id::text, line_id, opened_at, last_fired_at, closed_at, sensors, kinds, checks, peak_score, firings
  FROM incidents WHERE closed_at IS NULL AND updated_at < now() - %s * interval '1 second'
  ORDER BY line_id LIMIT 100
"""


def _row(row: Sequence) -> Incident:
    iid, line, opened, fired, closed, sensors, kinds, checks, peak, firings = row
    return Incident(iid, line, opened, fired, closed, set(sensors), set(kinds), set(checks), peak, firings)


OPEN_ON = "SELECT 1 FROM incidents WHERE closed_at IS NULL AND line_id = ANY(%s) LIMIT 1"


def apply(cur: psycopg2.extensions.cursor, firing: Sequence[Signal], quiet: Mapping[str, Sequence[datetime]],
          window: timedelta) -> Changes:
    """Group the batch's readings into incidents and write them, with their messages, in the
    batch's transaction (`cur`): `firing` signals, and the times of the quiet readings by
    line (they matter only on a line with an incident open: they may close it)."""
    lines = sorted(set(quiet) | {s.line_id for s in firing})
    if not lines:
        return Changes()
    if not firing:  # the usual batch: one read, no lock, unless a line of it has an incident open
        cur.execute(OPEN_ON, (lines,))
        if cur.fetchone() is None:
            return Changes()
    cur.execute(LOCK_LINES, (lines,))
    cur.execute(CURRENT, (lines,))
    current = {row[1]: _row(row) for row in cur.fetchall()}
    relevant = {s.line_id for s in firing} | {line for line, inc in current.items() if inc.closed_at is None}
    signals = [*firing, *(Signal(ts, line, "", "", "") for line in relevant for ts in quiet.get(line, ()))]
    changes = group(current, signals, window)
    write(cur, changes)
    return changes


def write(cur: psycopg2.extensions.cursor, changes: Changes) -> None:
    if changes.incidents:
        cur.execute(UPSERT, (json.dumps([
            (i.incident_id, i.line_id, i.opened_at.isoformat(), i.last_fired_at.isoformat(),
             i.closed_at.isoformat() if i.closed_at else None, sorted(i.sensors), sorted(i.kinds), sorted(i.checks),
             i.peak_score, i.firings, i.severity) for i in changes.incidents.values()]),))
    if changes.messages:
        cur.execute(ENQUEUE, (json.dumps([
            (m.message_id, m.incident_id, m.event, m.body, m.attributes) for m in changes.messages]),))


def close_quiet(conn: psycopg2.extensions.connection, quiet_s: float, window: timedelta) -> Changes:
    """Close the open incidents no batch has touched for `quiet_s` seconds of wall time, in
    a transaction of their own; each closes `window` after its last firing, as `group` would."""
    with conn, conn.cursor() as cur:
        cur.execute(STALE, (quiet_s,))
        stale = [_row(row) for row in cur.fetchall()]
        if not stale:
            return Changes()
        cur.execute(LOCK_LINES, ([i.line_id for i in stale],))
        cur.execute(STALE, (quiet_s,))  # again, under the locks: a batch may have moved one on
        changes = Changes()
        for inc in (_row(row) for row in cur.fetchall()):
            inc.closed_at = inc.last_fired_at + window
            changes.incidents[inc.incident_id] = inc
            changes.messages.append(inc.message("closed"))
        write(cur, changes)
    return changes
