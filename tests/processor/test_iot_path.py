"""Sensor -> MQTT -> the deployed rule -> Kinesis -> processor -> PostgreSQL, with a real MQTT client and
broker: the broker admits exactly what IoT Core would (registered, ACTIVE, attached; its own client id;
each publish evaluated against the synthesized device policy) and applies the synthesized rule as its
role (localdev/iot/)."""
from __future__ import annotations

import base64
import json
from collections.abc import Iterator
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import boto3
import psycopg2
import pytest
import redis

from localdev.iot.device import Device, Endpoint
from localdev.iot.local_broker import LocalBroker
from localdev.moto_extensions.iot import IOT_CA_ENV
from localdev.servers import MotoServer, PostgresServer, RedisServer, wait_for
from localdev.tls import make_ca, make_tls
from policy.stack_json import StackJson
from processor.device_messages import device_payload
from processor.samples import reading
from processor.scheduler import Scheduler
from tests.helpers import read_stream
from tests.processor.conftest import count, settings_for
from tests.processor.test_least_privilege import ACCOUNT, REGION, bind, synthesized
from tools.sensors import Environment, register, revoke

ENV = Environment(suffix="dev", readings_per_message=10, batch_wait_s=10.0, basic_ingest=True)
LINE = "line-1"


@dataclass
class Deployed:
    stream: str
    rule_role: str
    rule_policy: str
    error_group: str
    broker: LocalBroker
    endpoint: Endpoint
    devices: Path
    aws: dict[str, Any]


@pytest.fixture(scope="module")
def deployed(factory: StackJson, moto: MotoServer, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Deployed]:
    """The factory's key, stream, device policy, thing type, topic rule, its roles and error log group as the
    stack synthesizes them (references bound to this emulator), and the local broker reading them."""
    root = tmp_path_factory.mktemp("iot")
    make_ca(root / "iot-ca", "test IoT CA")
    patch = pytest.MonkeyPatch()
    patch.setenv(IOT_CA_ENV, str(root / "iot-ca"))  # the in-process emulator signs CSRs with it
    aws = {s: boto3.client(s, region_name=REGION, endpoint_url=moto.url)
           for s in ("kms", "kinesis", "iam", "iot", "logs")}
    base = {"aws_partition.partition": "aws", "aws_caller_identity.account_id": ACCOUNT}
    key_arn = aws["kms"].create_key(Policy=bind(synthesized(factory, "aws_kms_key", "/key/key", "policy"), base))[
        "KeyMetadata"]["Arn"]
    stream = "factory-updates-dev"
    aws["kinesis"].create_stream(StreamName=stream, ShardCount=2)
    aws["kinesis"].get_waiter("stream_exists").wait(StreamName=stream, WaiterConfig={"Delay": 0.1, "MaxAttempts": 50})
    aws["kinesis"].start_stream_encryption(StreamName=stream, EncryptionType="KMS", KeyId=key_arn)
    stream_arn = aws["kinesis"].describe_stream_summary(StreamName=stream)["StreamDescriptionSummary"]["StreamARN"]
    error_group = "/factory/dev/iot-rule-errors"
    aws["logs"].create_log_group(logGroupName=error_group)
    group_arn = f"arn:aws:logs:{REGION}:{ACCOUNT}:log-group:{error_group}"
    values = {**base, "aws_kms_key.arn": key_arn, "aws_kinesis_stream.arn": stream_arn,
              "aws_cloudwatch_log_group.arn": group_arn}
    roles = {}
    for role, policy in (("rule-role", "rule-policy"), ("error-role", "error-policy")):
        name = synthesized(factory, "aws_iam_role", f"iot/{role}", "name")
        roles[role] = aws["iam"].create_role(RoleName=name, AssumeRolePolicyDocument=bind(
            synthesized(factory, "aws_iam_role", f"iot/{role}", "assume_role_policy"), base))["Role"]["Arn"]
        aws["iam"].put_role_policy(RoleName=name, PolicyName="iot", PolicyDocument=bind(
            synthesized(factory, "aws_iam_role_policy", f"iot/{policy}", "policy"), values))
    rule = next(factory.resources("aws_iot_topic_rule")).config
    iot_text = lambda text: bind(text.replace("$${", "\x00"), base).replace("\x00", "${")  # noqa: E731
    aws["iot"].create_thing_type(thingTypeName=ENV.thing_type)
    aws["iot"].create_policy(policyName=ENV.policy,
                             policyDocument=iot_text(next(factory.resources("aws_iot_policy")).config["policy"]))
    (kinesis,) = rule["kinesis"]
    aws["iot"].create_topic_rule(ruleName=rule["name"], topicRulePayload={
        "sql": rule["sql"], "awsIotSqlVersion": rule["sql_version"], "ruleDisabled": False,
        "actions": [{"kinesis": {"roleArn": roles["rule-role"], "streamName": stream,
                                 "partitionKey": iot_text(kinesis["partition_key"])}}],
        "errorAction": {"cloudwatchLogs": {"logGroupName": error_group, "roleArn": roles["error-role"]}}})
    tls = make_tls(root / "tls")
    broker = LocalBroker(emulator=moto.url, region=REGION, client_ca=root / "iot-ca" / "ca.pem", cert=tls.cert,
                         key=tls.key, root=root / "broker")
    yield Deployed(stream, roles["rule-role"].rsplit("/", 1)[-1],
                   synthesized(factory, "aws_iam_role_policy", "iot/rule-policy", "policy"), error_group, broker,
                   Endpoint("127.0.0.1", broker.port, str(tls.ca)), root / "devices", aws)
    broker.close()
    patch.undo()


def sensor(deployed: Deployed, name: str) -> Device:
    config = register(deployed.aws["iot"], ENV, LINE, name, deployed.devices, say=lambda _: None)
    return Device(deployed.devices / config.thing_name.replace(":", "_"), deployed.endpoint)


def figure(deployed: Deployed, section: str, name: str, at_least: int = 1) -> int:
    """One of the broker's figures (written each second), once it reaches `at_least`."""
    wait_for(lambda: deployed.broker.stats().get(section, {}).get(name, 0) >= at_least, 20, f"broker {section} {name}")
    return deployed.broker.stats()[section][name]


def refusal(deployed: Deployed, starting: str) -> str:
    """The broker's refusal that starts so, once it is in its figures."""
    def found() -> list[str]:
        return [r for r in deployed.broker.stats().get("refusals", {}) if r.startswith(starting)]
    wait_for(lambda: bool(found()), 20, f"a refusal {starting}")
    return found()[0]


def rules_figure(deployed: Deployed, name: str, at_least: int) -> int:
    return figure(deployed, "rules", name, at_least)


def test_a_reading_reaches_postgres_exactly_once_through_broker_rule_stream_and_processor(
        deployed: Deployed, postgres: PostgresServer, database: str, redis_server: RedisServer,
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
        deployed: Deployed) -> None:
    device, other = sensor(deployed, "vibr-1-02"), sensor(deployed, "vibr-1-03")
    assert device.connect()
    refused_before = deployed.broker.stats().get("counts", {}).get("publish refused", 0)
    assert not device.publish(device_payload([reading()]), topic=other.topic, timeout_s=5)
    assert device.disconnected.wait(5)
    assert figure(deployed, "counts", "publish refused", refused_before + 1) == refused_before + 1
    refusal(deployed, "publish: iot:Publish on topic/$aws/rules/factory_readings_dev/factory/line-1/vibr-1-03")


def test_a_revoked_certificate_cannot_connect_and_neither_can_a_client_id_that_is_not_its_thing(
        deployed: Deployed) -> None:
    device = sensor(deployed, "curr-1-04")
    revoke(deployed.aws["iot"], ENV, LINE, "curr-1-04", say=lambda _: None)
    assert not device.connect()
    assert "Not authorized" in str(device.refused)
    impostor = sensor(deployed, "curr-1-05")
    impostor.client._client_id = b"factory-dev:line-1:temp-1-00"  # another sensor's thing name
    assert not impostor.connect()
    assert figure(deployed, "refusals", "connect: certificate REVOKED") >= 1
    refusal(deployed, "connect: iot:Connect on client/factory-dev:line-1:temp-1-00")


def test_qos_2_and_a_message_over_128_kb_close_the_connection_as_iot_core_does(deployed: Deployed) -> None:
    for payload, qos, reason in ((device_payload([reading()]), 2, "publish: QoS 2 (IoT Core supports QoS 0 and 1)"),
                                 (b"x" * (128 * 1024 + 1), 1, "publish: payload of 131073 bytes")):
        device = sensor(deployed, f"flow-1-{qos}{len(payload) % 7}")
        assert device.connect()
        assert not device.publish(payload, qos=qos, timeout_s=5)
        assert device.disconnected.wait(5)
        refusal(deployed, reason)


def test_a_message_the_rules_role_may_not_put_lands_in_the_error_log_with_its_original_payload(
        deployed: Deployed) -> None:
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
