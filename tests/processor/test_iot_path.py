"""Sensor -> MQTT -> the deployed rule -> Kinesis -> processor -> PostgreSQL, with a real MQTT client and
broker: the broker admits exactly what IoT Core would (registered, ACTIVE, attached; its own client id;
each publish evaluated against the synthesized device policy) and applies the synthesized rule as its
role (localdev/iot/)."""
from __future__ import annotations

import base64
import json
import threading
from collections.abc import Iterator
from dataclasses import replace
from datetime import UTC, datetime, timedelta

import boto3
import psycopg2
import pytest
import redis

from localdev.iot.device import Device
from localdev.iot.rules import RulesEngine
from localdev.iot.stand_up import IotPath, stand_up
from localdev.moto_extensions.iot import IOT_CA_ENV
from localdev.servers import MotoServer, PostgresServer, RedisServer, wait_for
from localdev.synthesized import bind
from localdev.tls import make_ca
from pipeline_lib.iot_topics import device_topic, thing_name
from policy.stack_json import StackJson
from processor.device_messages import device_payload
from processor.samples import reading
from processor.scheduler import Scheduler
from tests.helpers import read_stream
from tests.processor.conftest import count, settings_for
from tests.processor.test_least_privilege import ACCOUNT, REGION
from tools.sensors import WORKLOAD, Environment, register, revoke

ENV = Environment(suffix="dev", readings_per_message=10, batch_wait_s=10.0, basic_ingest=True)
LINE = "line-1"


@pytest.fixture(scope="module")
def deployed(factory: StackJson, moto: MotoServer, tmp_path_factory: pytest.TempPathFactory) -> Iterator[IotPath]:
    """The factory's key, stream, device policy, thing type, topic rule, its roles and error log group as the
    stack synthesizes them (references bound to this emulator), and the local broker reading them."""
    root = tmp_path_factory.mktemp("iot")
    make_ca(root / "iot-ca", "test IoT CA")
    patch = pytest.MonkeyPatch()
    patch.setenv(IOT_CA_ENV, str(root / "iot-ca"))  # the in-process emulator signs CSRs with it
    path = stand_up(factory, moto.url, root, account=ACCOUNT, region=REGION, iot_ca=root / "iot-ca")
    yield path
    path.close()
    patch.undo()


def sensor(deployed: IotPath, name: str) -> Device:
    config = register(deployed.aws["iot"], ENV, LINE, name, deployed.devices, say=lambda _: None)
    return Device(deployed.devices / config.thing_name.replace(":", "_"), deployed.endpoint)


def figure(deployed: IotPath, section: str, name: str, at_least: int = 1) -> int:
    """One of the broker's figures (written each second), once it reaches `at_least`."""
    wait_for(lambda: deployed.broker.stats().get(section, {}).get(name, 0) >= at_least, 20, f"broker {section} {name}")
    return deployed.broker.stats()[section][name]


def refusal(deployed: IotPath, starting: str) -> str:
    """The broker's refusal that starts so, once it is in its figures."""
    def found() -> list[str]:
        return [r for r in deployed.broker.stats().get("refusals", {}) if r.startswith(starting)]
    wait_for(lambda: bool(found()), 20, f"a refusal {starting}")
    return found()[0]


def rules_figure(deployed: IotPath, name: str, at_least: int) -> int:
    return figure(deployed, "rules", name, at_least)


def test_a_reading_reaches_postgres_exactly_once_through_broker_rule_stream_and_processor(
        deployed: IotPath, postgres: PostgresServer, database: str, redis_server: RedisServer,
        redis_client: redis.Redis, conn: psycopg2.extensions.connection) -> None:
    # GIVEN two registered sensors, each publishing device messages of 10 readings; one message sent twice
    # (a QoS 1 redelivery) and one that is not JSON at all
    devices = [sensor(deployed, "temp-1-00"), sensor(deployed, "pres-1-01")]
    assert all(d.connect() for d in devices)
    messages = [[reading(at=m * 10 + i) for i in range(10)] for m in range(6)]
    before = deployed.broker.stats().get("rules", {}).get("put", 0)
    for index, readings in enumerate(messages):
        assert devices[index % 2].publish(device_payload(readings))
    assert devices[0].publish(device_payload(messages[0]))
    assert devices[1].publish(b"\x00not json")
    rules_figure(deployed, "put", before + 8)
    for device in devices:
        device.close()

    # WHEN the processor reads the stream
    settings = replace(settings_for("factory", postgres=postgres, database=database, redis_server=redis_server,
                                    stream=deployed.stream), region=REGION)
    Scheduler(settings, kinesis=deployed.aws["kinesis"], redis_client=redis_client).run(exit_when_idle_s=1.0)

    # THEN every reading is stored once, as the sensor its topic names, and the bad message is a dead letter
    assert count(conn, "SELECT count(*) FROM sensor_readings") == 60
    assert count(conn, "SELECT count(DISTINCT event_id) FROM sensor_readings") == 60
    assert count(conn, "SELECT count(*) FROM sensor_readings WHERE line_id = %s AND sensor_id = %s",
                 LINE, "temp-1-00") == 30
    with conn.cursor() as cur:
        cur.execute("SELECT reason FROM dead_letters")
        assert cur.fetchall() == [("device message from line-1/pres-1-01: not UTF-8 JSON",)]
    keys = {r["PartitionKey"] for r in read_stream(deployed.aws["kinesis"], deployed.stream)}
    assert keys == {"temp-1-00", "pres-1-01"}  # keyed by the sensor its topic names: its order kept on one shard


def test_a_device_publishing_to_another_sensors_topic_is_disconnected_and_nothing_reaches_the_stream(
        deployed: IotPath) -> None:
    device, other = sensor(deployed, "vibr-1-02"), sensor(deployed, "vibr-1-03")
    assert device.connect()
    refused_before = deployed.broker.stats().get("counts", {}).get("publish refused", 0)
    assert not device.publish(device_payload([reading()]), topic=other.topic, timeout_s=5)
    assert device.disconnected.wait(5)
    assert figure(deployed, "counts", "publish refused", refused_before + 1) == refused_before + 1
    refusal(deployed, "publish: iot:Publish on topic/$aws/rules/factory_readings_dev/factory/line-1/vibr-1-03")


def test_a_revoked_certificate_cannot_connect_and_neither_can_a_client_id_that_is_not_its_thing(
        deployed: IotPath) -> None:
    device = sensor(deployed, "curr-1-04")
    revoke(deployed.aws["iot"], ENV, LINE, "curr-1-04", say=lambda _: None)
    assert not device.connect()
    assert "Not authorized" in str(device.refused)
    impostor = sensor(deployed, "curr-1-05")
    impostor.client._client_id = b"factory-dev:line-1:temp-1-00"  # another sensor's thing name
    assert not impostor.connect()
    assert figure(deployed, "refusals", "connect: certificate REVOKED") >= 1
    refusal(deployed, "connect: iot:Connect on client/factory-dev:line-1:temp-1-00")


def test_qos_2_and_a_message_over_128_kb_close_the_connection_as_iot_core_does(deployed: IotPath) -> None:
    for payload, qos, reason in ((device_payload([reading()]), 2, "publish: QoS 2 (IoT Core supports QoS 0 and 1)"),
                                 (b"x" * (128 * 1024 + 1), 1, "publish: payload of 131073 bytes")):
        device = sensor(deployed, f"flow-1-{qos}{len(payload) % 7}")
        assert device.connect()
        assert not device.publish(payload, qos=qos, timeout_s=5)
        assert device.disconnected.wait(5)
        refusal(deployed, reason)


def test_a_message_the_rules_role_may_not_put_lands_in_the_error_log_with_its_original_payload(
        deployed: IotPath) -> None:
    device = sensor(deployed, "volt-1-06")
    assert device.connect()
    iam = deployed.aws["iam"]
    iam.delete_role_policy(RoleName=deployed.rule_role, PolicyName="iot")  # the role lost its grant
    try:
        logged = deployed.broker.stats().get("rules", {}).get("errors_logged", 0)
        payload = device_payload([reading()])
        assert device.publish(payload)
        rules_figure(deployed, "errors_logged", logged + 1)
    finally:
        policy = bind(deployed.rule_policy, {"aws_kinesis_stream.arn": deployed.aws["kinesis"].describe_stream_summary(
            StreamName=deployed.stream)["StreamDescriptionSummary"]["StreamARN"], "aws_kms_key.arn": "*"})
        iam.put_role_policy(RoleName=deployed.rule_role, PolicyName="iot", PolicyDocument=policy)
        device.close()
    events = deployed.aws["logs"].get_log_events(logGroupName=deployed.error_group,
                                                 logStreamName="factory_readings_dev")["events"]
    body = json.loads(events[-1]["message"])
    assert base64.b64decode(body["base64OriginalPayload"]) == payload
    assert body["ruleName"] == "factory_readings_dev" and body["clientId"] == "factory-dev:line-1:volt-1-06"
    (failure,) = body["failures"]
    assert failure["failedAction"] == "KinesisAction" and "not authorized to perform: kinesis:PutRecord" in failure[
        "errorMessage"]


def rows(conn: psycopg2.extensions.connection, sql: str) -> list[tuple]:
    with conn.cursor() as cur:
        cur.execute(sql)
        return cur.fetchall()


def stream_of(deployed: IotPath, sensor_id: str) -> list[bytes]:
    """The device messages on the stream from one sensor (keyed by it), as the device published them."""
    return [base64.b64decode(json.loads(r["Data"])["payload"])
            for r in read_stream(deployed.aws["kinesis"], deployed.stream) if r["PartitionKey"] == sensor_id]


def test_a_device_over_100_publishes_a_second_has_the_excess_unacknowledged_and_kept_out_of_the_stream_but_stays_connected(
        deployed: IotPath) -> None:
    # GIVEN one device bursting 600 QoS 1 messages without waiting for acknowledgements (six times IoT Core's 100 a
    # second a connection, sent in far less than six seconds), and one sending 60 (within the limit however fast)
    fast, calm = sensor(deployed, "rate-1-00"), sensor(deployed, "rate-1-01")
    fast.client.max_inflight_messages_set(0)  # no client-side window: every message goes out at once
    assert fast.connect() and calm.connect()
    before = deployed.broker.stats().get("counts", {})
    handled = before.get("publish accepted", 0) + before.get("publish throttled", 0)
    sent = {}
    for device, count_ in ((fast, 600), (calm, 60)):
        for _ in range(count_):
            one = reading()
            sent[one["event_id"]] = (device, device.client.publish(device.topic, device_payload([one]), qos=1))

    # WHEN the broker has handled every publish and the rules engine has put what it accepted
    def handled_now() -> int:
        counts = deployed.broker.stats().get("counts", {})
        return counts.get("publish accepted", 0) + counts.get("publish throttled", 0)
    wait_for(lambda: handled_now() >= handled + 660, 30, "the broker handling the 660 publishes")
    counts = deployed.broker.stats()["counts"]
    accepted = counts.get("publish accepted", 0) - before.get("publish accepted", 0)
    throttled = counts.get("publish throttled", 0) - before.get("publish throttled", 0)
    wait_for(lambda: len(stream_of(deployed, "rate-1-00")) + len(stream_of(deployed, "rate-1-01")) >= accepted, 30,
             "the accepted messages on the stream")

    # THEN the calm device lost nothing; the fast one had the excess throttled: never acknowledged, never on the
    # stream, and exactly the acknowledged messages are; its connection stays open (IoT Core throttles, it does not
    # disconnect), and once the second has passed it publishes again
    on_stream = {json.loads(m)["readings"][0]["event_id"]: key
                 for key in ("rate-1-00", "rate-1-01") for m in stream_of(deployed, key)}
    acknowledged = {event for event, (_, info) in sent.items() if info.is_published()}
    assert throttled > 0 and accepted + throttled == 660
    assert {e for e, (d, _) in sent.items() if d is calm} <= acknowledged
    assert set(on_stream) == acknowledged and len(acknowledged) == accepted
    assert sum(1 for key in on_stream.values() if key == "rate-1-00") == 600 - throttled
    assert not fast.disconnected.is_set()
    wait_for(lambda: fast.publish(device_payload([reading()]), timeout_s=2), 10, "a publish after the throttled second")
    for device in (fast, calm):
        device.close()


def test_every_kind_of_bad_payload_is_dead_lettered_with_its_reason_or_refused_to_the_device_none_lost_silently(
        deployed: IotPath, postgres: PostgresServer, database: str, redis_server: RedisServer,
        redis_client: redis.Redis, conn: psycopg2.extensions.connection) -> None:
    # GIVEN a device publishing, besides one good message, every kind of bad payload IoT Core would pass to the rule:
    # the rule's SQL (topic levels, encode(*, 'base64'), timestamp()) reads no field of the payload, so IoT applies
    # it to any bytes, empty included, and the Kinesis action puts each
    device = sensor(deployed, "bad-1-00")
    assert device.connect()
    good = [reading() for _ in range(3)]
    half = [reading(), {**reading(), "unit": "F"}]
    bad = {b"": "empty", b"temperature=70.4": "not JSON", b"\xff\xfe": "not UTF-8",
           b"[1, 2]": "JSON not an object", b'{"reading": {}}': "no readings", b'{"readings": []}': "no readings",
           device_payload(half): "one bad reading of two"}
    put_before = deployed.broker.stats().get("rules", {}).get("put", 0)
    for payload in (device_payload(good), *bad):
        assert device.publish(payload)
    rules_figure(deployed, "put", put_before + 1 + len(bad))
    # and one over IoT Core's 128 KB, which IoT refuses at the door: the connection closes, the device knows
    assert not device.publish(b"{" + b" " * (128 * 1024) + b"}", timeout_s=5)
    assert device.disconnected.wait(5)

    # WHEN the processor reads the stream
    settings = replace(settings_for("factory", postgres=postgres, database=database, redis_server=redis_server,
                                    stream=deployed.stream), region=REGION)
    Scheduler(settings, kinesis=deployed.aws["kinesis"], redis_client=redis_client).run(exit_when_idle_s=1.0)

    # THEN each payload that reached the stream is there once, the good readings are stored, and every bad payload
    # is one dead letter naming its fault; the oversized one never reached the stream
    assert sorted(stream_of(deployed, "bad-1-00")) == sorted([device_payload(good), *bad])
    stored = {r for (r,) in rows(conn, "SELECT event_id::text FROM sensor_readings WHERE sensor_id = 'bad-1-00'")}
    assert stored == {r["event_id"] for r in good} | {half[0]["event_id"]}
    reasons = sorted(r for (r,) in rows(conn, "SELECT reason FROM dead_letters") if "line-1/bad-1-00" in r)
    assert reasons == sorted(f"device message from line-1/bad-1-00: {reason}" for reason in (
        "empty message", "not UTF-8 JSON", "not UTF-8 JSON", "not a JSON object with a readings list",
        "not a JSON object with a readings list", "no readings",
        "1 of 2 readings refused: [1] temperature unit must be C (got 'F')"))
    refusal(deployed, "publish: payload of 131074 bytes")


def alarm(factory: StackJson, metric: str) -> dict:
    (found,) = [a.config for a in factory.resources("aws_cloudwatch_metric_alarm") if a.config.get("metric_name") == metric]
    return found


def watched_sum(deployed: IotPath, watched: dict) -> float:
    """What the alarm's metric adds up to over the alarm's period, in the emulator's CloudWatch."""
    now = datetime.now(UTC)
    points = deployed.aws["cloudwatch"].get_metric_statistics(
        Namespace=watched["namespace"], MetricName=watched["metric_name"],
        Dimensions=[{"Name": k, "Value": v} for k, v in watched["dimensions"].items()],
        StartTime=now - timedelta(seconds=watched["period"]), EndTime=now + timedelta(seconds=60),
        Period=watched["period"], Statistics=[watched["statistic"]])["Datapoints"]
    return sum(p[watched["statistic"]] for p in points)


def test_refused_connections_raise_the_metric_the_connection_alarm_watches_past_its_threshold(
        deployed: IotPath, factory: StackJson) -> None:
    # GIVEN the stack's alarms on connections refused at authentication and by the policy, a sensor whose
    # certificate was revoked, and a sensor whose own certificate asks for another sensor's client id
    authn, authz = alarm(factory, "Connection.AuthNError"), alarm(factory, "Connect.AuthError")
    assert authn["comparison_operator"] == authz["comparison_operator"] == "GreaterThanThreshold"
    before = watched_sum(deployed, authn), watched_sum(deployed, authz)
    config = register(deployed.aws["iot"], ENV, LINE, "lost-1-00", deployed.devices, say=lambda _: None)
    revoke(deployed.aws["iot"], ENV, LINE, "lost-1-00", say=lambda _: None)
    folder = deployed.devices / config.thing_name.replace(":", "_")
    other = register(deployed.aws["iot"], ENV, LINE, "astray-1-00", deployed.devices, say=lambda _: None)

    # WHEN each tries to connect one time more than its alarm tolerates in its period
    for _ in range(int(authn["threshold"]) + 1):
        device = Device(folder, deployed.endpoint)
        assert not device.connect()
        device.client.loop_stop()
    for _ in range(int(authz["threshold"]) + 1):
        impostor = Device(deployed.devices / other.thing_name.replace(":", "_"), deployed.endpoint)
        impostor.client._client_id = config.thing_name.encode()  # a thing its certificate is not attached to
        assert not impostor.connect()
        impostor.client.loop_stop()

    # THEN the broker reported each refusal as IoT Core's metric for its step, enough for each alarm to fire
    wait_for(lambda: watched_sum(deployed, authn) - before[0] > authn["threshold"], 20, "Connection.AuthNError")
    wait_for(lambda: watched_sum(deployed, authz) - before[1] > authz["threshold"], 20, "Connect.AuthError")


def test_a_failed_kinesis_action_raises_the_metric_the_rule_failure_alarm_watches(
        deployed: IotPath, factory: StackJson) -> None:
    watched = alarm(factory, "Failure")
    before = watched_sum(deployed, watched)
    device = sensor(deployed, "volt-1-07")
    assert device.connect()
    iam = deployed.aws["iam"]
    policy = iam.get_role_policy(RoleName=deployed.rule_role, PolicyName="iot")["PolicyDocument"]
    iam.delete_role_policy(RoleName=deployed.rule_role, PolicyName="iot")
    try:
        assert device.publish(device_payload([reading()]))
        wait_for(lambda: watched_sum(deployed, watched) > before, 20, "the rule's Failure metric")
    finally:
        iam.put_role_policy(RoleName=deployed.rule_role, PolicyName="iot",
                            PolicyDocument=policy if isinstance(policy, str) else json.dumps(policy))
        device.close()
    assert watched["dimensions"] == {"RuleName": deployed.rule_name, "ActionType": "Kinesis"}


def test_a_refused_connect_with_a_connected_devices_client_id_leaves_that_device_connected(deployed: IotPath) -> None:
    # GIVEN a sensor connected as itself, and another sensor's certificate trying its client id (refused: the
    # certificate is not attached to that thing)
    victim, impostor = sensor(deployed, "take-1-00"), sensor(deployed, "take-1-01")
    assert victim.connect()
    impostor.client._client_id = victim.config["thing_name"].encode()

    # WHEN the impostor connects
    assert not impostor.connect()
    impostor.client.loop_stop()

    # THEN IoT Core closes an existing connection only for a second client it admits (iot:Connect is checked first):
    # the victim is still connected and still publishes
    refusal(deployed, f"connect: iot:Connect on client/{victim.config['thing_name']}")
    assert not victim.disconnected.wait(2)
    assert victim.publish(device_payload([reading()]))
    victim.close()


def test_a_device_may_subscribe_to_nothing_its_policy_does_not_allow_not_even_its_own_topic(deployed: IotPath) -> None:
    # GIVEN a connected sensor, whose policy allows iot:Subscribe and iot:Receive on nothing
    device = sensor(deployed, "subs-1-00")
    assert device.connect()
    granted: list[list[int]] = []
    answered = threading.Event()

    def on_subscribe(client: object, userdata: object, mid: int, codes: list, properties: object) -> None:
        granted.append([code.value for code in codes])
        answered.set()
    device.client.on_subscribe = on_subscribe

    # WHEN it subscribes to every topic, and to its own
    device.client.subscribe([("#", 1), (device.topic, 1), ("factory/+/+/readings", 0)])

    # THEN each filter is refused (SUBACK 0x80), and the refusals are counted as IoT's Subscribe.AuthError
    assert answered.wait(10)
    assert granted == [[0x80, 0x80, 0x80]]
    refusal(deployed, "subscribe: iot:Subscribe on topicfilter/#")
    device.close()


def test_a_retained_publish_is_refused_as_the_policy_does_not_allow_iot_retain_publish(deployed: IotPath) -> None:
    # GIVEN a sensor whose policy allows iot:Publish on its own topic, and not iot:RetainPublish
    device = sensor(deployed, "keep-1-00")
    assert device.connect()
    put_before = deployed.broker.stats().get("rules", {}).get("put", 0)

    # WHEN it publishes a reading to its own topic with the RETAIN flag
    info = device.client.publish(device.topic, device_payload([reading()]), qos=1, retain=True)

    # THEN IoT Core refuses it as any publish its policy does not allow: the connection closes, nothing is put
    assert device.disconnected.wait(5) and not info.is_published()
    refusal(deployed, "publish: iot:RetainPublish on topic/$aws/rules/factory_readings_dev/factory/line-1/keep-1-00")
    assert deployed.broker.stats().get("rules", {}).get("put", 0) == put_before


def test_a_second_connection_admitted_with_the_same_client_id_closes_the_first_as_iot_core_does(
        deployed: IotPath) -> None:
    # GIVEN a sensor connected, and the same sensor connecting again (a restarted device, or a cloned one)
    first = sensor(deployed, "twin-1-00")
    first.client.reconnect_delay_set(60, 120)  # the first does not come straight back
    assert first.connect()
    second = Device(first.folder, deployed.endpoint)

    # WHEN the second is admitted
    assert second.connect()

    # THEN IoT Core closes the existing connection (one connection per client id), and the second publishes
    assert first.disconnected.wait(5)
    assert second.publish(device_payload([reading()]))
    second.close()
    first.client.loop_stop()


def test_a_connected_device_whose_certificate_is_revoked_is_disconnected_and_cannot_come_back(
        deployed: IotPath) -> None:
    # GIVEN a sensor connected and publishing
    device = sensor(deployed, "lost-1-01")
    device.client.reconnect_delay_set(60, 120)
    assert device.connect() and device.publish(device_payload([reading()]))

    # WHEN its certificate is revoked while it is connected (a device reported stolen)
    revoke(deployed.aws["iot"], ENV, LINE, "lost-1-01", say=lambda _: None)

    # THEN IoT Core closes its connection (AWS: "within a few minutes"; the local broker checks every few seconds),
    # and it cannot connect again
    wait_for(device.disconnected.is_set, 30, "the revoked certificate's connection closed")
    figure(deployed, "counts", "connection closed: certificate not ACTIVE")
    device.client.loop_stop()
    again = Device(device.folder, deployed.endpoint)
    assert not again.connect()
    again.client.loop_stop()


def test_a_message_neither_the_kinesis_action_nor_the_error_action_could_write_is_counted_lost_not_dropped_silently(
        deployed: IotPath) -> None:
    # GIVEN the rule's role and its error action's role both without their grants
    device = sensor(deployed, "volt-1-08")
    assert device.connect()
    iam = deployed.aws["iam"]
    (error_role,) = [r["RoleName"] for r in iam.list_roles()["Roles"]
                     if r["RoleName"].startswith("factory-iot-rule-errors")]
    saved = {name: iam.get_role_policy(RoleName=name, PolicyName="iot")["PolicyDocument"]
             for name in (deployed.rule_role, error_role)}
    for name in saved:
        iam.delete_role_policy(RoleName=name, PolicyName="iot")
    try:
        lost = deployed.broker.stats().get("rules", {}).get("error_action_failed", 0)
        # WHEN a device's message reaches the rule
        assert device.publish(device_payload([reading()]))
        # THEN the message is lost (as on AWS, where only IoT's own log would say so), and the broker counts it
        rules_figure(deployed, "error_action_failed", lost + 1)
    finally:
        for name, policy in saved.items():
            iam.put_role_policy(RoleName=name, PolicyName="iot",
                                PolicyDocument=policy if isinstance(policy, str) else json.dumps(policy))
        device.close()


def test_a_certificate_allowed_every_topic_cannot_speak_for_another_sensor_the_rule_drops_its_message(
        deployed: IotPath) -> None:
    # GIVEN a sensor whose certificate also carries a policy that allows a publish to any topic (as a test rig's or
    # an operator's might), connected as itself
    device = sensor(deployed, "wide-1-00")
    iot = deployed.aws["iot"]
    cert_arn = iot.describe_certificate(certificateId=device.config["certificate_id"])["certificateDescription"][
        "certificateArn"]
    iot.create_policy(policyName="publish-anywhere", policyDocument=json.dumps({"Version": "2012-10-17", "Statement": [
        {"Effect": "Allow", "Action": "iot:Publish", "Resource": f"arn:aws:iot:{REGION}:{ACCOUNT}:topic/*"}]}))
    iot.attach_policy(policyName="publish-anywhere", target=cert_arn)
    before = deployed.broker.stats().get("rules", {})
    since = datetime.now(UTC) - timedelta(seconds=1)
    try:
        assert device.connect()
        # WHEN it publishes a reading on another sensor's topic (the broker accepts it: its policy allows that
        # topic), then one on its own
        assert device.publish(device_payload([reading()]),
                              topic=device_topic(deployed.rule_name, LINE, "wide-1-01", basic_ingest=True))
        assert device.publish(device_payload([reading()]))
        rules_figure(deployed, "put", before.get("put", 0) + 1)
        dropped = rules_figure(deployed, "dropped_by_where", before.get("dropped_by_where", 0) + 1)
    finally:
        device.close()
        iot.detach_policy(policyName="publish-anywhere", target=cert_arn)

    # THEN the rule dropped the message whose client id is not the thing its topic names, and put its own
    assert dropped == before.get("dropped_by_where", 0) + 1
    keys = [r["PartitionKey"] for r in read_stream(deployed.aws["kinesis"], deployed.stream, since=since)]
    assert "wide-1-01" not in keys and keys.count("wide-1-00") == 1


def test_a_publish_over_https_on_a_sensors_topic_is_dropped_by_the_deployed_rule_and_the_sensors_own_is_put(
        deployed: IotPath, moto: MotoServer) -> None:
    # GIVEN the rule as deployed in the emulator, read by the rules engine the broker runs (the broker speaks MQTT
    # only: an HTTPS publish is handed to the engine as IoT reports it, client id `n/a`, principal the IAM caller)
    def client(service: str, credentials: dict[str, str] | None = None) -> object:
        return boto3.client(service, region_name=REGION, endpoint_url=moto.url, **(credentials or {}))

    engine = RulesEngine(client)
    engine.load()
    topic = device_topic(deployed.rule_name, LINE, "http-1-00", basic_ingest=True)
    caller = deployed.aws["sts"].get_caller_identity()["UserId"]
    since = datetime.now(UTC) - timedelta(seconds=1)
    try:
        # WHEN an account principal publishes a reading on the sensor's topic over HTTPS, and the sensor publishes
        # its own over MQTT
        for client_id, principal in (("n/a", caller), (thing_name(WORKLOAD, ENV.suffix, LINE, "http-1-00"), "cert")):
            for applied in engine.submit(topic, device_payload([reading()]), client_id, principal):
                applied.result(timeout=30)
    finally:
        engine.close()

    # THEN only the sensor's own reading is on the stream; the other was dropped before any action (AWS shows it as
    # a TopicMatch with no Success or Failure)
    figures = engine.figures.as_dict()
    assert (figures["matched"], figures["put"], figures["dropped_by_where"], figures["failed"]) == (2, 1, 1, 0)
    assert engine.figures.metrics[("TopicMatch", (("RuleName", deployed.rule_name),))] == 2
    assert engine.figures.metrics[("Success", (("RuleName", deployed.rule_name), ("ActionType", "Kinesis")))] == 1
    keys = [r["PartitionKey"] for r in read_stream(deployed.aws["kinesis"], deployed.stream, since=since)]
    assert keys.count("http-1-00") == 1
