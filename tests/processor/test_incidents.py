"""One incident per line: grouping in event time, stored once in PostgreSQL, idempotent under replays and restarts."""
from __future__ import annotations

import uuid
from datetime import datetime, timedelta

import psycopg2
import pytest
import redis

from processor import incidents
from processor.anomaly.detector import DetectorState, observe
from processor.incidents import FAULT, REGIME, SHIFT, SURPRISE, Incident, Signal
from processor.samples import T0, encode, reading, status
from processor.sinks import run_batch
from processor.sinks.factory import FactorySink, IncidentSettings
from processor.workloads import FACTORY
from tests.processor.batches import apply, rows

WINDOW = timedelta(minutes=5)


def signal(at_s: float, line: str = "line-1", sensor: str = "temp-1", check: str | None = SURPRISE,
           score: float = 0.55, kind: str = "temperature") -> Signal:  # an alarm, short of one in a million
    return Signal(T0 + timedelta(seconds=at_s), line, sensor, kind, str(uuid.uuid4()), check, score)


def test_what_fires_on_the_sensors_of_one_line_within_the_window_is_one_incident() -> None:
    changes = incidents.group({}, [
        signal(0, sensor="temp-1"), signal(20, sensor="vibr-1", check=REGIME, kind="vibration", score=0.3),
        signal(200, sensor="temp-1", check="shift", score=0.7), signal(230, sensor="pres-2", check=None),
    ], WINDOW)
    (incident,) = changes.incidents.values()
    assert incident.sensors == {"temp-1", "vibr-1"} and incident.kinds == {"temperature", "vibration"}
    assert incident.checks == {SURPRISE, REGIME, "shift"} and incident.peak_score == 0.7 and incident.firings == 3
    assert incident.closed_at is None
    assert [m.event for m in changes.messages] == ["opened"]


def test_each_line_has_its_own_incident() -> None:
    changes = incidents.group({}, [signal(0, line="line-1"), signal(1, line="line-2"), signal(2, line="line-1")], WINDOW)
    assert sorted((i.line_id, i.firings) for i in changes.incidents.values()) == [("line-1", 2), ("line-2", 1)]
    assert changes.opened == 2


def test_a_reading_past_the_window_closes_the_incident_and_a_later_firing_opens_a_new_one() -> None:
    changes = incidents.group({}, [signal(0), signal(100, check=None), signal(301, check=None), signal(400)], WINDOW)
    first, second = sorted(changes.incidents.values(), key=lambda i: i.opened_at)
    assert first.closed_at == T0 + timedelta(seconds=301) and second.closed_at is None
    assert [(m.incident_id, m.event) for m in changes.messages] == [
        (first.incident_id, "opened"), (first.incident_id, "closed"), (second.incident_id, "opened")]
    assert changes.messages[1].body["closed_at"] == first.closed_at.isoformat()


def test_a_late_firing_inside_a_closed_incidents_span_joins_it_without_a_message() -> None:
    closed = Incident("i-1", "line-1", T0, T0 + timedelta(seconds=60), T0 + timedelta(seconds=400), {"temp-1"},
                      {"temperature"}, {SURPRISE}, 0.6, 1)
    changes = incidents.group({"line-1": closed}, [signal(30, sensor="pres-9", kind="pressure", score=0.8)], WINDOW)
    assert changes.messages == []
    assert changes.incidents["i-1"].sensors == {"temp-1", "pres-9"} and changes.incidents["i-1"].peak_score == 0.8
    assert closed.sensors == {"temp-1"}  # the caller's incident is not modified


def test_an_open_incident_takes_a_firing_older_than_itself_rather_than_opening_a_second() -> None:
    open_ = Incident("i-1", "line-1", T0 + timedelta(hours=2), T0 + timedelta(hours=2))
    changes = incidents.group({"line-1": open_}, [signal(0)], WINDOW)  # a shard two hours behind
    assert list(changes.incidents) == ["i-1"] and changes.messages == []


@pytest.mark.parametrize(("signals", "severity"), [
    ([signal(0, score=0.55)], "warning"),
    ([signal(0, score=0.55), signal(5, sensor="temp-2", score=0.52)], "warning"),  # one kind of sensor
    ([signal(0, score=0.55), signal(5, sensor="curr-1", kind="current")], "critical"),  # the machine, not a sensor
    ([signal(0, score=0.6)], "critical"),  # one in a million by the sensor's own history
    ([signal(0, sensor="mill-1", kind="status", check=FAULT, score=1.0)], "critical"),
])
def test_severity_is_critical_for_a_fault_sensors_of_several_kinds_or_an_extreme_reading(
        signals: list[Signal], severity: str) -> None:
    (incident,) = incidents.group({}, signals, WINDOW).incidents.values()
    assert incident.severity == severity


def test_messages_carry_the_incident_id_for_deduplication_and_attributes_for_filter_policies() -> None:
    signals = [signal(0, line="line-7", sensor="curr-1", kind="current"), signal(400, check=None, line="line-7")]
    changes = incidents.group({}, signals, WINDOW)
    opened, closed = changes.messages
    assert opened.incident_id == closed.incident_id == opened.body["incident_id"]
    assert opened.message_id != closed.message_id and opened.message_id == opened.body["message_id"]
    assert opened.attributes == {"line": "line-7", "kinds": ["current"], "severity": "warning", "event": "opened"}
    # the same readings give the same ids, whoever groups them: a replayed batch writes nothing new
    assert [m.message_id for m in incidents.group({}, signals, WINDOW).messages] == [
        opened.message_id, closed.message_id]


# -- in PostgreSQL, through the factory sink --------------------------------------------------------------------


def line_traffic(start_s: int, end_s: int, line: str = "line-1") -> list[dict]:
    """Two status sensors of `line`, RUNNING once a second."""
    return [{**status(f"{line}-mill-{n}", "RUNNING", at=t), "line_id": line}
            for t in range(start_s, end_s) for n in (1, 2)]


def fault(at_s: int, line: str = "line-1", sensor: str = "mill-1") -> dict:
    return {**status(f"{line}-{sensor}", "FAULT", at=at_s), "line_id": line}


def test_an_event_on_a_line_is_stored_once_as_one_incident_with_one_message_per_transition(
        conn: psycopg2.extensions.connection) -> None:
    FACTORY.migrate(conn)
    sink = FactorySink(incident_settings=IncidentSettings(window=timedelta(seconds=60)))
    apply(conn, sink, line_traffic(0, 10) + [fault(10), fault(12, sensor="mill-2")] + line_traffic(13, 40))
    apply(conn, sink, line_traffic(40, 80))  # 80 s > 12 s + 60 s: closed
    assert rows(conn, "SELECT line_id, sensors, checks, severity, firings, closed_at IS NOT NULL FROM incidents") == [
        ("line-1", ["line-1-mill-1", "line-1-mill-2"], [FAULT], "critical", 2, True)]
    assert rows(conn, "SELECT event FROM incident_outbox ORDER BY created_at") == [("opened",), ("closed",)]


def test_replaying_a_batch_or_restarting_the_task_changes_no_incident(conn: psycopg2.extensions.connection) -> None:
    FACTORY.migrate(conn)
    settings = IncidentSettings(window=timedelta(seconds=60))
    batch = line_traffic(0, 5) + [fault(5)] + line_traffic(6, 20)
    apply(conn, FactorySink(incident_settings=settings), batch)
    before = rows(conn, "SELECT * FROM incidents"), rows(conn, "SELECT message_id FROM incident_outbox")
    apply(conn, FactorySink(incident_settings=settings), batch)  # a new task reads the same records again
    assert (rows(conn, "SELECT * FROM incidents"), rows(conn, "SELECT message_id FROM incident_outbox")) == before
    # a restarted task carries the open incident on: the next fault joins it
    apply(conn, FactorySink(incident_settings=settings), [fault(30, sensor="mill-2")])
    assert rows(conn, "SELECT firings, closed_at FROM incidents") == [(2, None)]
    assert rows(conn, "SELECT count(*) FROM incident_outbox") == [(1,)]


def test_a_batch_that_does_not_commit_leaves_no_incident_and_no_message(conn: psycopg2.extensions.connection) -> None:
    FACTORY.migrate(conn)
    sink = FactorySink()
    records = [FACTORY.decode(encode(fault(0)))]

    def fail(cur: psycopg2.extensions.cursor) -> None:
        raise RuntimeError("the checkpoint could not be written")

    with pytest.raises(RuntimeError):
        run_batch(conn, sink, records, within=fail)
    assert rows(conn, "SELECT count(*) FROM incidents") == [(0,)]
    assert rows(conn, "SELECT count(*) FROM incident_outbox") == [(0,)]


def test_the_database_holds_at_most_one_open_incident_per_line(conn: psycopg2.extensions.connection) -> None:
    FACTORY.migrate(conn)
    apply(conn, FactorySink(), [fault(0)])
    with pytest.raises(psycopg2.errors.UniqueViolation), conn, conn.cursor() as cur:
        cur.execute("INSERT INTO incidents (incident_id, line_id, opened_at, last_fired_at, sensors, kinds, checks, "
                    "peak_score, firings, severity) VALUES (gen_random_uuid(), 'line-1', now(), now(), '{}', '{}', "
                    "'{}', 0, 0, 'warning')")


def test_readings_of_the_detector_fire_into_the_lines_incident(conn: psycopg2.extensions.connection,
                                                               redis_client: redis.Redis) -> None:
    FACTORY.migrate(conn)
    sink = FactorySink(redis_client)
    # a sensor with a few hundred readings of history: a young one may not claim an alarm's rarity
    normal = [reading("temp-1", 70.0 + (i % 5) / 10, at=i) for i in range(400)]
    spike = [reading("temp-1", 95.0, at=400), reading("temp-1", 70.1, at=401)]
    apply(conn, sink, normal)
    apply(conn, sink, spike)
    # the checks the detector itself names for these readings (a spike: surprise, shift or both)
    state, fired = DetectorState(), set()
    for r in normal + spike:
        verdict = observe(state, datetime.fromisoformat(r["ts"]), r["value"], r["event_id"])
        if verdict.anomalous:
            fired.add(verdict.reason.partition(":")[0])
    assert fired and fired <= {SURPRISE, SHIFT}
    (incident,) = rows(conn, "SELECT line_id, sensors, checks, peak_score FROM incidents")
    assert incident[:3] == ("line-2", ["temp-1"], sorted(fired)) and incident[3] >= 0.5


def test_a_line_gone_silent_is_closed_by_housekeeping_on_wall_time(conn: psycopg2.extensions.connection) -> None:
    FACTORY.migrate(conn)
    sink = FactorySink(incident_settings=IncidentSettings(window=timedelta(seconds=60), quiet_s=60))
    apply(conn, sink, [fault(0)])
    sink.maintain(conn)
    assert rows(conn, "SELECT closed_at FROM incidents") == [(None,)]  # touched just now
    with conn, conn.cursor() as cur:
        cur.execute("UPDATE incidents SET updated_at = now() - interval '2 minutes'")
    gauges = sink.maintain(conn)
    assert rows(conn, "SELECT closed_at FROM incidents") == [(T0 + timedelta(seconds=60),)]
    assert rows(conn, "SELECT event FROM incident_outbox ORDER BY created_at") == [("opened",), ("closed",)]
    assert gauges["IncidentOutboxBacklog"] == 2  # no topic here: they wait
