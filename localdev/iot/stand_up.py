"""The factory's IoT path as the stack synthesizes it, stood up in an emulator: its key, stream,
device policy, thing type, topic rule with its two roles and error log group (each Terraform
reference bound to the emulator's resource), and the local broker reading them. Devices are then
registered with `tools.sensors register`, as a plant engineer would. Used by the IoT path's tests
(tests/processor/test_iot_path.py) and `make bench-ingest-iot` (bench/bench_iot.py)."""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import boto3

from localdev.iot.device import Endpoint
from localdev.iot.local_broker import LocalBroker
from localdev.synthesized import bind, synthesized
from localdev.tls import make_tls
from policy.stack_json import StackJson

STREAM = "factory-updates-dev"
ERROR_GROUP = "/factory/dev/iot-rule-errors"
SERVICES = ("kms", "kinesis", "iam", "iot", "logs", "sts", "cloudwatch")


@dataclass
class IotPath:
    stream: str
    rule_name: str
    rule_role: str  # the rule's role name
    rule_policy: str  # its synthesized policy, unbound
    error_group: str
    broker: LocalBroker
    endpoint: Endpoint  # where devices connect, trusting the broker's CA
    devices: Path  # where `tools.sensors register` writes the devices' folders
    aws: dict[str, Any]  # clients of the emulator, by service

    def close(self) -> dict[str, Any]:
        """Stop the broker; its last figures."""
        return self.broker.close()


def iot_text(text: str, values: dict[str, str]) -> str:
    """An IoT document (policy, partition key) bound: its `$${...}` are IoT's own variables, kept."""
    return bind(text.replace("$${", "\x00"), values).replace("\x00", "${")


def stand_up(factory: StackJson, emulator: str, root: Path, *, account: str, region: str, iot_ca: Path,
             shards: int = 2) -> IotPath:
    """Deploy the factory's IoT path into the emulator at `emulator` (which signs device CSRs with the
    CA in `iot_ca`) and start the broker, its files under `root`."""
    aws = {s: boto3.client(s, region_name=region, endpoint_url=emulator) for s in SERVICES}
    base = {"aws_partition.partition": "aws", "aws_caller_identity.account_id": account}
    key_arn = aws["kms"].create_key(Policy=bind(synthesized(factory, "aws_kms_key", "/key/key", "policy"), base))[
        "KeyMetadata"]["Arn"]
    aws["kinesis"].create_stream(StreamName=STREAM, ShardCount=shards)
    aws["kinesis"].get_waiter("stream_exists").wait(StreamName=STREAM, WaiterConfig={"Delay": 0.1, "MaxAttempts": 50})
    aws["kinesis"].start_stream_encryption(StreamName=STREAM, EncryptionType="KMS", KeyId=key_arn)
    stream_arn = aws["kinesis"].describe_stream_summary(StreamName=STREAM)["StreamDescriptionSummary"]["StreamARN"]
    aws["logs"].create_log_group(logGroupName=ERROR_GROUP)
    group_arn = f"arn:aws:logs:{region}:{account}:log-group:{ERROR_GROUP}"
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
    thing_type = next(factory.resources("aws_iot_thing_type")).config["name"]
    device_policy = next(factory.resources("aws_iot_policy")).config
    aws["iot"].create_thing_type(thingTypeName=thing_type)
    aws["iot"].create_policy(policyName=device_policy["name"], policyDocument=iot_text(device_policy["policy"], base))
    (kinesis,) = rule["kinesis"]
    aws["iot"].create_topic_rule(ruleName=rule["name"], topicRulePayload={
        "sql": rule["sql"], "awsIotSqlVersion": rule["sql_version"], "ruleDisabled": False,
        "actions": [{"kinesis": {"roleArn": roles["rule-role"], "streamName": STREAM,
                                 "partitionKey": iot_text(kinesis["partition_key"], base)}}],
        "errorAction": {"cloudwatchLogs": {"logGroupName": ERROR_GROUP, "roleArn": roles["error-role"]}}})
    tls = make_tls(root / "tls")
    broker = LocalBroker(emulator=emulator, region=region, client_ca=iot_ca / "ca.pem", cert=tls.cert, key=tls.key,
                         root=root / "broker")
    return IotPath(STREAM, rule["name"], roles["rule-role"].rsplit("/", 1)[-1],
                   synthesized(factory, "aws_iam_role_policy", "iot/rule-policy", "policy"), ERROR_GROUP, broker,
                   Endpoint("127.0.0.1", broker.port, str(tls.ca)), root / "devices", aws)
