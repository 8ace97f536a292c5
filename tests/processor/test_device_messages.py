"""A device's message through the IoT rule is one record of several readings: each reading is held to
the reading contract, the identity is the topic's, and a refused reading dead-letters its record
with its position while the others are stored, once (processor/records.py, DeviceMessage)."""
from __future__ import annotations

import json
from datetime import timedelta

import psycopg2
import pytest
import redis
from botocore.client import BaseClient

from localdev.servers import PostgresServer, RedisServer
from processor.device_messages import device_payload, envelope
from processor.records import FACTORY_RECORDS, DeviceMessage, Poison
from processor.samples import T0, reading, status
from processor.scheduler import Scheduler
from tests.processor.conftest import count, make_stream, put, settings_for

RECEIVED_MS = int((T0 + timedelta(days=1)).timestamp() * 1000)  # when IoT received the messages: after their readings


def record(readings: list[dict], line: str = "line-1", sensor: str = "temp-1-00") -> bytes:
    return envelope(line, sensor, device_payload(readings), RECEIVED_MS)


def test_a_message_of_ten_readings_is_ten_readings_of_the_sensor_its_topic_names() -> None:
    readings = [reading("anything", 70.0 + i, at=i) for i in range(9)] + [status("anything")]
    decoded = FACTORY_RECORDS.decode(record(readings))
    assert isinstance(decoded, DeviceMessage) and decoded.refusal is None
    assert [r.event_id for r in decoded.readings] == [r["event_id"] for r in readings]
    assert {(r.line_id, r.sensor_id) for r in decoded.readings} == {("line-1", "temp-1-00")}
    assert decoded.readings[-1].status == "RUNNING"


def test_a_reading_that_claims_another_sensor_or_breaks_the_contract_is_refused_by_position_the_rest_kept() -> None:
    good = [{**reading(at=i), "line_id": "line-1", "sensor_id": "temp-1-00"} for i in range(3)]  # may say who: itself
    payload = json.dumps({"readings": [good[0], {**reading(line="line-1"), "sensor_id": "temp-9-99"}, good[1],
                                       {**json.loads(device_payload([reading()]))["readings"][0], "unit": "F"},
                                       good[2]]}).encode()
    decoded = FACTORY_RECORDS.decode(envelope("line-1", "temp-1-00", payload, RECEIVED_MS))
    assert isinstance(decoded, DeviceMessage)
    assert [r.event_id for r in decoded.readings] == [g["event_id"] for g in good]
    assert decoded.refusal == Poison("device message from line-1/temp-1-00: 2 of 5 readings refused: [1] "
                                     "names sensor_id 'temp-9-99', but its topic is temp-1-00's; [3] temperature unit "
                                     "must be C (got 'F')")


@pytest.mark.parametrize(("payload", "reason"), [
    (b"not json at all", "not UTF-8 JSON"),
    (b"[1, 2, 3]", "not a JSON object with a readings list"),
    (b'{"readings": []}', "no readings"),
    (b"\xff\xfe\x00", "not UTF-8 JSON"),
    (b"", "empty message"),
])
def test_a_malformed_message_is_one_dead_letter_that_says_why(payload: bytes, reason: str) -> None:
    assert FACTORY_RECORDS.decode(envelope("line-1", "temp-1-00", payload, RECEIVED_MS)) == Poison(
        f"device message from line-1/temp-1-00: {reason}")


@pytest.mark.parametrize("digits", [4301, 100_000])
def test_a_value_of_more_digits_than_pythons_int_parser_takes_is_refused_as_a_number_not_as_unreadable_json(
        digits: int) -> None:
    # valid UTF-8 JSON whose number is far past float range: json.loads refuses ints over 4300 digits (a ValueError),
    # which read as "not UTF-8 JSON" and sent the operator looking for an encoding fault
    one = json.loads(device_payload([reading()]))["readings"][0]
    payload = json.dumps({"readings": [{**one, "value": 0}]}).encode().replace(b'"value": 0', b'"value": -' + b"9" * digits)
    assert FACTORY_RECORDS.decode(envelope("line-1", "temp-1-00", payload, RECEIVED_MS)).refusal == Poison(
        "device message from line-1/temp-1-00: 1 of 1 readings refused: [0] temperature value must be a finite number")


def test_an_envelope_the_rule_did_not_make_is_refused() -> None:
    bad_base64 = json.dumps({"line_id": "l", "sensor_id": "s", "payload": "***", "received_at_ms": 1}).encode()
    assert FACTORY_RECORDS.decode(bad_base64) == Poison("device message from l/s: payload is not base64")
    extra = json.dumps({"line_id": "l", "sensor_id": "s", "payload": "", "received_at_ms": 1, "x": 1}).encode()
    assert FACTORY_RECORDS.decode(extra) == Poison(
        "device record must have exactly line_id, payload, received_at_ms, sensor_id")
    negative = json.dumps({"line_id": "l", "sensor_id": "s", "payload": "", "received_at_ms": -1}).encode()
    assert FACTORY_RECORDS.decode(negative) == Poison("received_at_ms must be a non-negative integer")


def test_device_messages_on_the_stream_are_stored_once_and_their_refusals_dead_lettered(
        kinesis: BaseClient, postgres: PostgresServer, database: str, redis_server: RedisServer,
        redis_client: redis.Redis, conn: psycopg2.extensions.connection) -> None:
    # GIVEN 50 device messages of 10 readings from 5 sensors, one sent twice, one with a bad reading, one not JSON
    stream = make_stream(kinesis, shards=2)
    sensors = [f"temp-1-{n:02d}" for n in range(5)]
    messages = [(sensors[i % 5], [reading(at=i * 10 + j) for j in range(10)]) for i in range(50)]
    bodies = [record(readings, sensor=sensor) for sensor, readings in messages]
    bodies.append(bodies[7])  # a QoS 1 redelivery
    good_of_bad = reading(at=900)
    bodies_good_id = good_of_bad["event_id"]
    bodies.append(record([good_of_bad, {**reading(at=901), "event_id": "x"}], sensor=sensors[0]))
    bodies.append(envelope("line-1", sensors[1], b"\x00garbage", RECEIVED_MS))
    keys = [sensor for sensor, _ in messages] + [messages[7][0], sensors[0], sensors[1]]
    put(kinesis, stream, bodies, key=lambda i: keys[i])
    settings = settings_for("factory", postgres=postgres, database=database, redis_server=redis_server, stream=stream)

    # WHEN the processor reads the stream
    stats = Scheduler(settings, kinesis=kinesis, redis_client=redis_client).run(exit_when_idle_s=1.0)

    # THEN every reading is stored once, and each bad message is one dead letter naming what was wrong
    assert stats.records == 53 and stats.dead_letters == 2
    assert count(conn, "SELECT count(*) FROM sensor_readings") == 501
    assert count(conn, "SELECT count(DISTINCT sensor_id) FROM sensor_readings") == 5
    with conn.cursor() as cur:
        cur.execute("SELECT reason FROM dead_letters ORDER BY reason")
        assert [r for (r,) in cur.fetchall()] == [
            "device message from line-1/temp-1-00: 1 of 2 readings refused: [1] event_id must be a UUID string",
            "device message from line-1/temp-1-01: not UTF-8 JSON"]
    with conn.cursor() as cur:
        cur.execute("SELECT event_id::text FROM sensor_readings")
        stored = {r for (r,) in cur.fetchall()}
    sent = {r["event_id"] for _, readings in messages for r in readings}
    assert stored == sent | {bodies_good_id}


def test_a_reading_dated_more_than_five_minutes_after_iot_received_its_message_is_refused_by_position() -> None:
    # IoT's receipt time is IoT's clock; a device's is its own (an RTC reset or jumped to 2036 is common)
    received = T0 + timedelta(days=1)
    on_time = [reading(at=86_400), reading(at=86_400 + 299)]  # at receipt, and a device clock 4 min 59 s ahead
    ahead = [reading(at=86_400 + 301), {**reading(), "ts": "9997-12-31T23:59:59Z"}]
    payload = device_payload([on_time[0], ahead[0], on_time[1], ahead[1]])
    decoded = FACTORY_RECORDS.decode(envelope("line-1", "temp-1-00", payload, int(received.timestamp() * 1000)))
    assert isinstance(decoded, DeviceMessage)
    assert [r.event_id for r in decoded.readings] == [r["event_id"] for r in on_time]
    assert decoded.refusal == Poison(
        "device message from line-1/temp-1-00: 2 of 4 readings refused: [1] ts 2026-11-02T12:05:01+00:00 is more than "
        "5 minutes after IoT received the message; [3] ts 9997-12-31T23:59:59+00:00 is more than 5 minutes after IoT "
        "received the message")


def test_a_device_dating_readings_in_the_future_neither_pins_its_latest_value_nor_makes_partitions_for_them(
        kinesis: BaseClient, postgres: PostgresServer, database: str, redis_server: RedisServer,
        redis_client: redis.Redis, conn: psycopg2.extensions.connection) -> None:
    # GIVEN a sensor whose clock jumped: one message dated across twelve future years, then one on time
    stream = make_stream(kinesis)
    future = [{**reading(), "ts": f"{year}-06-01T00:00:00Z"} for year in range(2040, 2052)]
    now = reading(at=86_400)
    put(kinesis, stream, [record(future), record([now])], key=lambda i: "temp-1-00")
    settings = settings_for("factory", postgres=postgres, database=database, redis_server=redis_server, stream=stream)

    # WHEN the processor reads the stream
    Scheduler(settings, kinesis=kinesis, redis_client=redis_client).run(exit_when_idle_s=1.0)

    # THEN only the reading on time is stored and is the sensor's latest value; no partition was made for the future
    assert count(conn, "SELECT count(*) FROM sensor_readings") == 1
    assert redis_client.hget("sensor:temp-1-00", "event_id").decode() == now["event_id"]
    assert count(conn, "SELECT count(*) FROM pg_inherits WHERE inhparent = 'sensor_readings'::regclass") == 1
    assert count(conn, "SELECT count(*) FROM dead_letters WHERE reason LIKE '%12 of 12 readings refused%'") == 1
