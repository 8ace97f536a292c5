"""The processor runs on exactly the synthesized task role: every call it makes is allowed by it, and
without any one action it needs the run fails with that action named (localdev/access/)."""
from __future__ import annotations

import json
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import boto3
import pytest

from localdev.access import ACCESS_LOG_ENV
from localdev.access.policy import Policy
from localdev.access.report import grants, read, refusals, unused_grants
from localdev.servers import MotoServer, PostgresServer, RedisServer
from localdev.synthesized import bind, synthesized
from policy.stack_json import StackJson
from processor.samples import encode, reading
from tests.processor.conftest import ROOT, count, processor_env, put

ACCOUNT, REGION = "123456789012", "eu-west-1"  # the factory stack's region: its key policy names its services there

HISTORY = 400  # readings before the spike


@pytest.fixture()
def deployed(factory: StackJson, moto: MotoServer) -> Callable[..., dict[str, str]]:
    """The factory's key (with its key policy), stream, incidents topic and task role as the stack
    defines them, in the emulator; the returned function makes the role with a policy (optionally
    without one action) and gives the processor's environment additions for a session of it."""
    aws = {s: boto3.client(s, region_name=REGION, endpoint_url=moto.url) for s in ("kms", "kinesis", "sns", "iam", "sts")}
    base = {"aws_partition.partition": "aws", "aws_caller_identity.account_id": ACCOUNT}
    key = aws["kms"].create_key(Policy=bind(synthesized(factory, "aws_kms_key", "/key/key", "policy"), base))
    key_arn = key["KeyMetadata"]["Arn"]
    stream = f"readings-{key_arn[-8:]}"
    aws["kinesis"].create_stream(StreamName=stream, ShardCount=1)
    aws["kinesis"].get_waiter("stream_exists").wait(StreamName=stream, WaiterConfig={"Delay": 0.1, "MaxAttempts": 50})
    aws["kinesis"].start_stream_encryption(StreamName=stream, EncryptionType="KMS", KeyId=key_arn)
    stream_arn = aws["kinesis"].describe_stream_summary(StreamName=stream)["StreamDescriptionSummary"]["StreamARN"]
    topic = aws["sns"].create_topic(Name=f"incidents-{key_arn[-8:]}", Attributes={"KmsMasterKeyId": key_arn})["TopicArn"]
    values = {**base, "aws_kms_key.arn": key_arn, "aws_kinesis_stream.arn": stream_arn, "aws_sns_topic.arn": topic,
              "aws_db_instance.resource_id": "db-TESTINSTANCE"}
    policy = json.loads(bind(synthesized(factory, "aws_iam_role_policy", "/processor/task-policy", "policy"), values))
    role = f"task-{key_arn[-8:]}"
    aws["iam"].create_role(RoleName=role, AssumeRolePolicyDocument="{}")

    def session(without: str = "") -> dict[str, str]:
        statements = []
        for statement in policy["Statement"]:
            actions = [a for a in statement["Action"] if a != without]
            statements += [{**statement, "Action": actions}] if actions else []
        aws["iam"].put_role_policy(RoleName=role, PolicyName="run",
                                   PolicyDocument=json.dumps({**policy, "Statement": statements}))
        keys = aws["sts"].assume_role(RoleArn=f"arn:aws:iam::{ACCOUNT}:role/{role}",
                                      RoleSessionName="factory-task-1")["Credentials"]
        return {"STREAM_NAME": stream, "INCIDENT_TOPIC_ARN": topic, "AWS_REGION": REGION, "AWS_DEFAULT_REGION": REGION,
                "AWS_ACCESS_KEY_ID": keys["AccessKeyId"], "AWS_SECRET_ACCESS_KEY": keys["SecretAccessKey"],
                "AWS_SESSION_TOKEN": keys["SessionToken"], "KEY_ARN": key_arn, "STREAM_ARN": stream_arn,
                "POLICY": json.dumps(policy), "TASK_ROLE": role}

    # a few hundred readings of history (a young sensor cannot claim an alarm), then a spike: an incident
    put(aws["kinesis"], stream, [encode(reading("s-1", 70.0 + (i % 5) * 0.1, at=i)) for i in range(HISTORY)]
        + [encode(reading("s-1", 400.0, at=HISTORY))], key=lambda i: "s-1")
    return session


def run_processor(env: dict[str, str], log: Path, monkeypatch: pytest.MonkeyPatch) -> tuple[Any, list]:
    """The processor's run and the emulator's decisions on its role's calls (the emulator runs in this
    process and also decides for others, e.g. a Firehose reader another test left)."""
    monkeypatch.setenv(ACCESS_LOG_ENV, str(log))
    result = subprocess.run([sys.executable, "-m", "processor", "--exit-when-idle", "3"], cwd=ROOT, env=env,
                            capture_output=True, text=True, timeout=180)
    return result, [e for e in read(log) if e.role == env["TASK_ROLE"]]


def test_the_synthesized_task_role_allows_every_call_the_processor_makes(
        deployed: Callable[..., dict[str, str]], moto: MotoServer, postgres: PostgresServer, database: str,
        redis_server: RedisServer, conn: Any, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    extra = deployed()
    env = processor_env("factory", extra["STREAM_NAME"], moto=moto, postgres=postgres, database=database,
                        redis_server=redis_server, **extra)
    result, entries = run_processor(env, tmp_path / "access.jsonl", monkeypatch)
    assert result.returncode == 0, result.stderr[-2000:]
    assert count(conn, "SELECT count(*) FROM sensor_readings") == HISTORY + 1
    assert refusals(entries) == []
    assert {(e.action, e.resource) for e in entries} == {
        ("kinesis:DescribeStreamSummary", extra["STREAM_ARN"]), ("kinesis:ListShards", extra["STREAM_ARN"]),
        ("kinesis:GetShardIterator", extra["STREAM_ARN"]), ("kinesis:GetRecords", extra["STREAM_ARN"]),
        ("kms:Decrypt", extra["KEY_ARN"]), ("sns:Publish", extra["INCIDENT_TOPIC_ARN"]),
        ("kms:GenerateDataKey", extra["KEY_ARN"])}
    # and nothing more: every grant of the role was used, but the sign-in a local PostgreSQL cannot check
    unused, unexercisable = unused_grants(entries, grants(entries[0].role, [Policy.parse("task", extra["POLICY"])]))
    assert unused == []
    assert [g.action for g, _ in unexercisable] == ["rds-db:connect"]


@pytest.mark.parametrize("missing", ["kinesis:GetShardIterator", "kms:Decrypt", "sns:Publish"])
def test_a_task_role_without_one_action_the_processor_needs_fails_naming_that_action(
        missing: str, deployed: Callable[..., dict[str, str]], moto: MotoServer, postgres: PostgresServer,
        database: str, redis_server: RedisServer, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    extra = deployed(without=missing)
    env = processor_env("factory", extra["STREAM_NAME"], moto=moto, postgres=postgres, database=database,
                        redis_server=redis_server, **extra)
    _, entries = run_processor(env, tmp_path / "access.jsonl", monkeypatch)
    refused = refusals(entries)
    assert refused and all(f": {missing} on " in line for line in refused), refused
