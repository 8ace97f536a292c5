from __future__ import annotations

import json

from policy.stack_json import StackJson
from tests.helpers import only, ref, statement


def test_key_rotates_yearly(stack: StackJson) -> None:
    key = only(stack, "aws_kms_key").config
    assert key["enable_key_rotation"] is True and key["rotation_period_in_days"] == 365


def test_key_deletion_window_is_short_outside_prod_and_long_in_prod(
    stack: StackJson, prod_stacks: dict[str, StackJson]
) -> None:
    assert only(stack, "aws_kms_key").config["deletion_window_in_days"] == 7
    assert only(prod_stacks[f"{stack.workload}-prod"], "aws_kms_key").config["deletion_window_in_days"] == 30


def test_alias_carries_workload_and_suffix(stack: StackJson) -> None:
    alias = only(stack, "aws_kms_alias").config
    assert alias["name"] == f"alias/{stack.workload}-data-dev"
    assert alias["target_key_id"] == ref(only(stack, "aws_kms_key"), "key_id")


def test_services_use_the_key_only_through_their_own_endpoints(stack: StackJson) -> None:
    key = only(stack, "aws_kms_key")
    via = statement(key, "AccountPrincipalsUseTheKeyThroughServices")["Condition"]["StringEquals"]["kms:ViaService"]
    region = stack.provider["region"]
    expected = {"kinesis", "firehose", "rds", "elasticache", "secretsmanager", "s3", "sns", "ecr", "backup"}
    assert set(via) == {f"{service}.{region}.amazonaws.com" for service in expected}


def test_grants_are_only_for_aws_resources(stack: StackJson) -> None:
    grants = statement(only(stack, "aws_kms_key"), "ServicesHoldGrantsForTheirResources")
    assert grants["Condition"]["Bool"] == {"kms:GrantIsForAWSResource": "true"}


def test_cloudwatch_logs_may_use_the_key_for_this_accounts_log_groups_only(stack: StackJson) -> None:
    logs = statement(only(stack, "aws_kms_key"), "CloudWatchLogsEncryptsThisAccountsLogGroups")
    assert logs["Principal"] == {"Service": f"logs.{stack.provider['region']}.amazonaws.com"}
    assert "log-group:*" in logs["Condition"]["ArnLike"]["kms:EncryptionContext:aws:logs:arn"]


def test_key_policy_is_valid_json_with_exactly_its_statements(stack: StackJson, prod_stacks: dict[str, StackJson],
                                                              exec_stacks: dict[str, StackJson]) -> None:
    common = ["AccountAdministersTheKey", "AccountPrincipalsUseTheKeyThroughServices",
              "ServicesHoldGrantsForTheirResources", "CloudWatchLogsEncryptsThisAccountsLogGroups",
              "CloudWatchAlarmsPublishToTheEncryptedTopic"]
    dev = json.loads(only(stack, "aws_kms_key").config["policy"])
    prod = json.loads(only(prod_stacks[f"{stack.workload}-prod"], "aws_kms_key").config["policy"])
    with_exec = json.loads(only(exec_stacks[stack.stack_id], "aws_kms_key").config["policy"])
    assert [s["Sid"] for s in dev["Statement"]] == common == [s["Sid"] for s in prod["Statement"]]
    assert [s["Sid"] for s in with_exec["Statement"]] == [*common, "EcsExecSessionsUseTheKey",
                                                          "EcsExecOperatorsOpenSessions"]


CRYPTO = {"kms:Encrypt", "kms:Decrypt", "kms:GenerateDataKey", "kms:GenerateDataKey*", "kms:ReEncrypt*",
          "kms:ReEncryptFrom", "kms:ReEncryptTo", "kms:CreateGrant", "kms:*"}


def test_the_account_administers_the_key_but_cannot_use_it_directly(stack: StackJson) -> None:
    admin = statement(only(stack, "aws_kms_key"), "AccountAdministersTheKey")
    assert admin["Principal"]["AWS"].endswith(":root") and "Condition" not in admin
    assert not set(admin["Action"]) & CRYPTO
    assert {"kms:PutKeyPolicy", "kms:ScheduleKeyDeletion", "kms:EnableKeyRotation", "kms:TagResource"} <= set(
        admin["Action"])


def test_every_use_of_the_key_goes_through_a_service_or_a_named_grant(dev_stacks: dict[str, StackJson],
                                                                      prod_stacks: dict[str, StackJson]) -> None:
    for stack in [*dev_stacks.values(), *prod_stacks.values()]:
        for s in json.loads(only(stack, "aws_kms_key").config["policy"])["Statement"]:
            if not set(s["Action"]) & CRYPTO or s["Sid"] == "AccountAdministersTheKey":
                continue
            scoped = "Service" in s["Principal"] or "kms:ViaService" in json.dumps(s.get("Condition", {}))
            assert scoped or s["Sid"] in ("EcsExecSessionsUseTheKey", "EcsExecOperatorsOpenSessions"), (
                stack.stack_id, s["Sid"])


def test_only_ecs_exec_outside_production_uses_the_key_directly(dev_stacks: dict[str, StackJson],
                                                                prod_stacks: dict[str, StackJson],
                                                                exec_stacks: dict[str, StackJson]) -> None:
    def sids(stack: StackJson) -> set[str]:
        return {s["Sid"] for s in json.loads(only(stack, "aws_kms_key").config["policy"])["Statement"]}

    direct = statement(only(exec_stacks["retail-dev"], "aws_kms_key"), "EcsExecSessionsUseTheKey")
    task_role = next(r for r in exec_stacks["retail-dev"].resources("aws_iam_role") if r.path.endswith("processor/task-role"))
    assert direct["Principal"] == {"AWS": ref(task_role, "arn")}
    assert direct["Action"] == ["kms:Decrypt", "kms:GenerateDataKey"]
    operators = statement(only(exec_stacks["retail-dev"], "aws_kms_key"), "EcsExecOperatorsOpenSessions")
    assert operators["Action"] == ["kms:GenerateDataKey"]
    assert operators["Principal"]["AWS"][0].endswith(":role/platform-operator")  # stacks/config.py's default
    for s in (direct, operators):  # Session Manager's session keys only
        assert s["Condition"] == {"Null": {"kms:EncryptionContext:aws:ssm:SessionId": "false"}}
    assert not {"EcsExecSessionsUseTheKey", "EcsExecOperatorsOpenSessions"} & (
        sids(prod_stacks["retail-prod"]) | sids(dev_stacks["retail-dev"]))


def test_the_task_decrypts_stream_records_only_through_kinesis(stack: StackJson) -> None:
    from tests.helpers import by_path

    decrypt = statement(by_path(stack, "aws_iam_role_policy", "processor/task-policy"), "DecryptTheStream")
    region = stack.provider["region"]
    assert decrypt["Condition"] == {"StringEquals": {"kms:ViaService": f"kinesis.{region}.amazonaws.com"}}
