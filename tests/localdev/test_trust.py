"""STS's trust-policy decision, as the emulator takes it when a local process assumes a deployed role for
a service (localdev/access/trust.py): the service is the principal, and the request carries only the
condition keys that service sends (policy/conventions.py SERVICE_TRUST_KEYS)."""
from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import boto3
import pytest
from botocore.exceptions import ClientError

from localdev.access import ACCESS_LOG_ENV
from localdev.access.report import read, refusals
from localdev.access.trust import API_GATEWAY, ECS_TASKS, FIREHOSE, IOT, sent_context, trust_decision
from localdev.iot.rules import RulesEngine
from localdev.servers import MotoServer
from localdev.session import Session
from localdev.synthesized import bind
from pipeline_lib.iam import assume_role_policy
from policy.stack_json import StackJson

ACCOUNT = "123456789012"  # moto's account for the plain keys
OTHER_ACCOUNT = "210987654321"
REGION = "eu-west-1"
ROLE = f"arn:aws:iam::{ACCOUNT}:role/some-role"
RULE = f"arn:aws:iot:{REGION}:{ACCOUNT}:rule/factory_readings_dev"
BACKUP = "backup.amazonaws.com"


def trusting(service: str, condition: dict | None = None) -> dict:
    statement: dict[str, Any] = {"Effect": "Allow", "Principal": {"Service": service}, "Action": "sts:AssumeRole"}
    if condition:
        statement["Condition"] = condition
    return {"Version": "2012-10-17", "Statement": [statement]}


def decide(trust: dict | str, service: str, **sent: str) -> Any:
    return trust_decision(ROLE, trust, service, sent_context(service, account=ACCOUNT, **sent))


def test_api_gateway_cannot_assume_a_role_whose_trust_requires_aws_source_account_and_can_without() -> None:
    required = decide(trusting(API_GATEWAY, {"StringEquals": {"aws:SourceAccount": ACCOUNT}}), API_GATEWAY)
    assert not required.allowed
    assert required.reason.endswith("it requires aws:SourceAccount, which apigateway.amazonaws.com does not send "
                                    "when it assumes a role")
    assert decide(trusting(API_GATEWAY), API_GATEWAY).allowed


def test_each_service_sends_its_confused_deputy_keys_with_the_account_and_no_other_key() -> None:
    assert sent_context(ECS_TASKS, account=ACCOUNT) == {"aws:SourceAccount": ACCOUNT}
    assert sent_context(IOT, account=ACCOUNT, source_arn=RULE) == {"aws:SourceAccount": ACCOUNT, "aws:SourceArn": RULE}
    assert sent_context(FIREHOSE, account=ACCOUNT) == {"sts:ExternalId": ACCOUNT}
    assert sent_context(API_GATEWAY, account=ACCOUNT, source_arn=RULE) == {}
    assert sent_context(BACKUP, account=ACCOUNT) == {}


def test_an_ecs_task_role_trusting_another_account_is_refused_naming_what_ecs_sent() -> None:
    decision = decide(assume_role_policy(ECS_TASKS, account_id=OTHER_ACCOUNT), ECS_TASKS)
    assert not decision.allowed
    assert decision.reason.endswith(f"its conditions do not hold for what ecs-tasks.amazonaws.com sends "
                                    f"(aws:SourceAccount={ACCOUNT})")
    assert decide(assume_role_policy(ECS_TASKS, account_id=ACCOUNT), ECS_TASKS).allowed


def test_a_role_trusting_another_service_is_refused_to_this_one() -> None:
    decision = decide(assume_role_policy(IOT, account_id=ACCOUNT), ECS_TASKS)
    assert not decision.allowed and decision.reason.endswith("no statement trusts ecs-tasks.amazonaws.com "
                                                             "with sts:AssumeRole")


def test_conditions_are_read_as_iam_reads_them_arn_patterns_if_exists_and_keys_in_any_case() -> None:
    rules = {"ArnLike": {"aws:SOURCEARN": f"arn:aws:iot:{REGION}:{ACCOUNT}:rule/factory_*"}}
    assert decide(trusting(IOT, rules), IOT, source_arn=RULE).allowed
    assert not decide(trusting(IOT, rules), IOT, source_arn=RULE.replace("factory_", "retail_")).allowed
    if_exists = {"StringEqualsIfExists": {"aws:SourceAccount": ACCOUNT}}
    assert decide(trusting(API_GATEWAY, if_exists), API_GATEWAY).allowed  # absent: holds
    assert not decide(trusting(ECS_TASKS, {"StringEqualsIfExists": {"aws:SourceAccount": OTHER_ACCOUNT}}),
                      ECS_TASKS).allowed  # present and different: fails


def test_an_explicit_deny_in_a_trust_policy_wins_and_is_named() -> None:
    trust = trusting(ECS_TASKS)
    trust["Statement"].append({"Sid": "NotFromThisAccount", "Effect": "Deny", "Principal": {"Service": ECS_TASKS},
                               "Action": "sts:AssumeRole", "Condition": {"StringEquals": {"aws:SourceAccount": ACCOUNT}}})
    decision = decide(trust, ECS_TASKS)
    assert (decision.allowed, decision.reason) == (False, "explicitly denied by NotFromThisAccount "
                                                          "(trust policy of some-role)")


def test_every_role_of_both_stacks_can_be_assumed_by_each_service_it_trusts(
        dev_stacks: dict[str, StackJson]) -> None:
    base = {"aws_partition.partition": "aws", "aws_caller_identity.account_id": ACCOUNT}
    assumed: dict[str, set[str]] = {}
    for stack in dev_stacks.values():
        for role in stack.resources("aws_iam_role"):
            trust = json.loads(bind(role.config["assume_role_policy"], base))
            for statement in trust["Statement"]:
                services = statement["Principal"]["Service"]
                for service in [services] if isinstance(services, str) else services:
                    decision = decide(trust, service, source_arn=f"arn:aws:{service.split('.')[0]}:{REGION}:{ACCOUNT}:x")
                    assert decision.allowed, f"{stack.name} {role.path}: {decision.reason}"
                    assumed.setdefault(service, set()).add(role.path)
    # the services the stacks hand roles to, each with at least one role checked
    assert {ECS_TASKS, API_GATEWAY, IOT, FIREHOSE, BACKUP} <= assumed.keys()


def test_every_assume_role_localdev_makes_goes_through_assume_as_which_names_the_service() -> None:
    root = Path(__file__).resolve().parents[2] / "localdev"
    bare = [str(path.relative_to(root)) for path in root.rglob("*.py")
            if ".assume_role(" in path.read_text(encoding="utf-8") and path.name != "trust.py"]
    assert bare == []


def _plain(emulator: MotoServer, service: str) -> Any:
    return boto3.client(service, region_name=REGION, endpoint_url=emulator.url, aws_access_key_id="t",
                        aws_secret_access_key="t")


def test_an_ecs_task_role_trusting_another_account_is_refused_by_sts_and_the_refusal_stops_the_run(
        emulator: MotoServer, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    log = tmp_path / "access.jsonl"
    monkeypatch.setenv(ACCESS_LOG_ENV, str(log))
    iam = _plain(emulator, "iam")
    elsewhere = iam.create_role(RoleName="task-trusting-elsewhere", AssumeRolePolicyDocument=assume_role_policy(
        ECS_TASKS, account_id=OTHER_ACCOUNT))["Role"]["Arn"]
    here = iam.create_role(RoleName="task-trusting-here", AssumeRolePolicyDocument=assume_role_policy(
        ECS_TASKS, account_id=ACCOUNT))["Role"]["Arn"]
    session = Session(suffix="t", emulator_port=emulator.port, emulator_pid=0)
    # WHEN a task's role is assumed as ECS assumes it (localdev.session.Session.assume)
    with pytest.raises(ClientError) as raised:
        session.assume(elsewhere, "retail-t-task-1", REGION)
    # THEN STS's AccessDenied, and the access log's refusal is one the demo stops on (deploy.fail_on_refusals)
    error = raised.value.response
    assert (error["ResponseMetadata"]["HTTPStatusCode"], error["Error"]["Code"]) == (403, "AccessDenied")
    assert error["Error"]["Message"].startswith(
        f"ecs-tasks.amazonaws.com is not authorized to perform: sts:AssumeRole on resource: {elsewhere} because")
    assert [line.split(" denied:")[0] for line in refusals(read(log))] == [
        f"task-trusting-elsewhere: sts:AssumeRole on {elsewhere}"]
    # AND a role trusting ECS in this account is assumed, and its credentials are the role's
    keys = session.assume(here, "retail-t-task-1", REGION)
    who = boto3.client("sts", region_name=REGION, endpoint_url=emulator.url, aws_access_key_id=keys["AWS_ACCESS_KEY_ID"],
                       aws_secret_access_key=keys["AWS_SECRET_ACCESS_KEY"],
                       aws_session_token=keys["AWS_SESSION_TOKEN"]).get_caller_identity()
    assert who["Arn"] == f"arn:aws:sts::{ACCOUNT}:assumed-role/task-trusting-here/retail-t-task-1"


def test_an_assume_role_naming_no_service_is_the_operators_and_is_not_evaluated(
        emulator: MotoServer, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    log = tmp_path / "access.jsonl"
    monkeypatch.setenv(ACCESS_LOG_ENV, str(log))
    arn = _plain(emulator, "iam").create_role(RoleName="trusts-no-one", AssumeRolePolicyDocument="{}")["Role"]["Arn"]
    answer = _plain(emulator, "sts").assume_role(RoleArn=arn, RoleSessionName="fixture")
    assert answer["AssumedRoleUser"]["Arn"] == f"arn:aws:sts::{ACCOUNT}:assumed-role/trusts-no-one/fixture"
    assert read(log) == []


def test_the_rules_engine_assumes_a_rules_role_as_iot_sending_that_rules_arn(
        emulator: MotoServer, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(ACCESS_LOG_ENV, str(tmp_path / "access.jsonl"))
    kinesis, iam, iot = (_plain(emulator, s) for s in ("kinesis", "iam", "iot"))
    kinesis.create_stream(StreamName="trusted-readings", ShardCount=1)
    stream_arn = kinesis.describe_stream_summary(StreamName="trusted-readings")["StreamDescriptionSummary"]["StreamARN"]
    # GIVEN a role IoT may assume for the rules called kept_* only, and two rules that put with it
    kept = f"arn:aws:iot:{REGION}:{ACCOUNT}:rule/kept_*"
    role = iam.create_role(RoleName="rules-role", AssumeRolePolicyDocument=json.dumps(trusting(IOT, {
        "StringEquals": {"aws:SourceAccount": ACCOUNT}, "ArnLike": {"aws:SourceArn": kept}})))["Role"]["Arn"]
    iam.put_role_policy(RoleName="rules-role", PolicyName="put", PolicyDocument=json.dumps({
        "Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Action": "kinesis:PutRecord", "Resource": stream_arn}]}))
    for rule, topics in (("kept_readings", "kept/#"), ("other_readings", "other/#")):
        iot.create_topic_rule(ruleName=rule, topicRulePayload={"sql": f"SELECT * FROM '{topics}'", "ruleDisabled": False,
                                                              "actions": [{"kinesis": {"roleArn": role,
                                                                                       "streamName": "trusted-readings"}}]})

    def client(service: str, credentials: dict[str, str] | None = None) -> Any:
        return boto3.client(service, region_name=REGION, endpoint_url=emulator.url,
                            **(credentials or {"aws_access_key_id": "t", "aws_secret_access_key": "t"}))

    engine = RulesEngine(client)
    try:
        # WHEN a message reaches each rule
        for topic in ("kept/line-1", "other/line-1"):
            for applied in engine.submit(topic, b'{"reading": 1}', "sensor-1", "certificate"):
                applied.result(timeout=30)
    finally:
        engine.close()
    # THEN the kept rule's message is put, and the other rule's action fails: STS refused IoT the role for it
    outcomes = {rule: (engine.figures.metrics[("Success", (("RuleName", rule), ("ActionType", "Kinesis")))],
                       engine.figures.metrics[("Failure", (("RuleName", rule), ("ActionType", "Kinesis")))])
                for rule in ("kept_readings", "other_readings")}
    assert outcomes == {"kept_readings": (1, 0), "other_readings": (0, 1)}
    (refused,) = refusals(read(tmp_path / "access.jsonl"))
    assert refused.startswith(f"rules-role: sts:AssumeRole on {role} denied: the role's trust policy does not let "
                              "iot.amazonaws.com assume it: its conditions do not hold for what iot.amazonaws.com "
                              f"sends (aws:SourceAccount={ACCOUNT}, aws:SourceArn=arn:aws:iot:{REGION}:{ACCOUNT}:"
                              "rule/other_readings)")
