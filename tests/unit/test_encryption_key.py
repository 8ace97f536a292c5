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


def test_key_policy_is_valid_json_with_exactly_five_statements(stack: StackJson) -> None:
    policy = json.loads(only(stack, "aws_kms_key").config["policy"])
    assert [s["Sid"] for s in policy["Statement"]] == [
        "AccountAdministersTheKey", "AccountPrincipalsUseTheKeyThroughServices", "ServicesHoldGrantsForTheirResources",
        "CloudWatchLogsEncryptsThisAccountsLogGroups", "CloudWatchAlarmsPublishToTheEncryptedTopic",
    ]
