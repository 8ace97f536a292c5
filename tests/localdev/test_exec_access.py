"""ECS Exec with the synthesized dev stacks of ECS_EXEC=on, decided by the local access evaluator
(localdev/access/policy.py) as AWS would: the operator roles the config names may open a session
(ecs:ExecuteCommand, and the session key the ECS guide asks of them, kms:GenerateDataKey on the
cluster's key), the task's agent may read it, and nobody else may make one."""
from __future__ import annotations

import json
import re

import pytest

from localdev.access.policy import Decision, Policy, Request, evaluate
from policy.stack_json import StackJson
from stacks.config import DEFAULT_EXEC_OPERATOR_ROLES
from tests.helpers import by_path, only

ACCOUNT, PARTITION = "123456789012", "aws"
KEY = f"arn:aws:kms:us-east-1:{ACCOUNT}:key/0b3f6a2e-1111-2222-3333-444455556666"
TASK_ROLE = f"arn:aws:iam::{ACCOUNT}:role/retail-processor-task-dev"
OPERATOR = f"arn:aws:iam::{ACCOUNT}:role/{DEFAULT_EXEC_OPERATOR_ROLES[0]}"
DEVELOPER = f"arn:aws:iam::{ACCOUNT}:role/developer"
CLUSTER = "retail-cluster-dev"
TASK = f"arn:aws:ecs:us-east-1:{ACCOUNT}:task/{CLUSTER}/4f1c0c2a9d7e4b1f8a3b2c1d0e9f8a7b"
# What Session Manager's client and agent send with the session key (aws/session-manager-plugin).
SESSION = {"kms:EncryptionContext:aws:ssm:SessionId": "ecs-execute-command-0a1b2c3d4e5f",
           "kms:EncryptionContext:aws:ssm:TargetId": f"ecs:{CLUSTER}_4f1c0c2a9d7e4b1f8a3b2c1d0e9f8a7b_4f1c-1234",
           "kms:CallerAccount": ACCOUNT}
TOKEN = re.compile(r"\$\{([^}]+)\}")


def bound(stack: StackJson, text: str) -> str:
    """A synthesized policy with its Terraform references replaced by this test's account, key,
    cluster and task role; a reference it does not know fails the test by name."""
    values = {"aws_partition.partition": PARTITION, "aws_caller_identity.account_id": ACCOUNT,
              "aws_kms_key.arn": KEY, "aws_ecs_cluster.name": CLUSTER,
              "aws_ecs_cluster.arn": f"arn:aws:ecs:us-east-1:{ACCOUNT}:cluster/{CLUSTER}", "aws_iam_role.arn": TASK_ROLE,
              "aws_kinesis_stream.arn": f"arn:aws:kinesis:us-east-1:{ACCOUNT}:stream/retail-updates-dev",
              "aws_db_instance.resource_id": "db-TESTINSTANCE",
              "aws_cloudwatch_log_group.arn": f"arn:aws:logs:us-east-1:{ACCOUNT}:log-group:/retail/dev/ecs-exec"}

    def value(match: re.Match) -> str:
        parts = match.group(1).split(".")
        parts = parts[1:] if parts[0] == "data" else parts
        reference = f"{parts[0]}.{parts[-1]}"
        assert reference in values, f"the test does not bind {match.group(0)}"
        return values[reference]
    return TOKEN.sub(value, text)


@pytest.fixture(scope="module")
def exec_policies(exec_stacks: dict[str, StackJson]) -> tuple[Policy, Policy]:
    """(the key policy, the operators' policy) of the retail stack with Exec on, bound."""
    stack = exec_stacks["retail-dev"]
    key = Policy.parse("key policy", bound(stack, only(stack, "aws_kms_key").config["policy"]))
    operators = Policy.parse("policy retail-processor-exec-operators-dev",
                             bound(stack, by_path(stack, "aws_iam_policy", "processor/exec-operators").config["policy"]))
    return key, operators


def decide(principal: str, action: str, resource: str, context: dict[str, str], identity: list[Policy],
           key: Policy | None = None) -> Decision:
    return evaluate(Request(principal, action, resource, {"aws:PrincipalArn": principal, **context}), identity,
                    key_policy=key)


def test_a_named_operator_may_run_execute_command_on_the_processor_container_of_this_cluster(
        exec_policies: tuple[Policy, Policy]) -> None:
    _, operators = exec_policies
    decision = decide(OPERATOR, "ecs:ExecuteCommand", TASK, {"ecs:container-name": "processor"}, [operators])
    assert decision.allowed and decision.reason.startswith("allowed by ExecIntoTheProcessor")
    other_cluster = TASK.replace(CLUSTER, "factory-cluster-dev")
    assert not decide(OPERATOR, "ecs:ExecuteCommand", other_cluster, {"ecs:container-name": "processor"},
                      [operators]).allowed
    assert not decide(OPERATOR, "ecs:ExecuteCommand", TASK, {"ecs:container-name": "sidecar"}, [operators]).allowed


def test_a_named_operator_may_make_the_session_key_with_the_clusters_key(exec_policies: tuple[Policy, Policy]) -> None:
    key, operators = exec_policies
    decision = decide(OPERATOR, "kms:GenerateDataKey", KEY, SESSION, [operators], key)
    assert decision.allowed and decision.reason == "allowed by EcsExecOperatorsOpenSessions (key policy)"


def test_the_tasks_agent_may_read_the_session_key(exec_policies: tuple[Policy, Policy],
                                                  exec_stacks: dict[str, StackJson]) -> None:
    key, _ = exec_policies
    stack = exec_stacks["retail-dev"]
    task_policy = Policy.parse("task policy", bound(stack, by_path(stack, "aws_iam_role_policy",
                                                                   "processor/task-policy").config["policy"]))
    assert decide(TASK_ROLE, "kms:Decrypt", KEY, SESSION, [task_policy], key).allowed


def test_anyone_else_is_refused_the_session_key_whatever_their_own_policy_says(exec_policies: tuple[Policy, Policy]) -> None:
    key, _ = exec_policies
    everything = Policy.parse("developer policy", {"Statement": [{"Effect": "Allow", "Action": "kms:*", "Resource": "*"}]})
    decision = decide(DEVELOPER, "kms:GenerateDataKey", KEY, SESSION, [everything], key)
    assert not decision.allowed and decision.reason == "the key policy does not allow it for this principal"


def test_an_operator_gets_the_key_for_session_manager_sessions_only(exec_policies: tuple[Policy, Policy]) -> None:
    key, operators = exec_policies
    assert not decide(OPERATOR, "kms:GenerateDataKey", KEY, {"kms:CallerAccount": ACCOUNT}, [operators], key).allowed
    assert not decide(OPERATOR, "kms:Decrypt", KEY, SESSION, [operators], key).allowed  # reading data: no


def test_an_operator_cannot_go_around_execute_command_with_a_plain_ssm_session(exec_policies: tuple[Policy, Policy]) -> None:
    _, operators = exec_policies
    anything = Policy.parse("admin", {"Statement": [{"Effect": "Allow", "Action": "ssm:*", "Resource": "*"}]})
    decision = decide(OPERATOR, "ssm:StartSession", TASK, {}, [operators, anything])
    assert not decision.allowed and decision.reason.startswith("explicitly denied by NoSessionAroundExecuteCommand")


def test_the_policy_is_attached_to_exactly_the_roles_the_config_names(exec_stacks: dict[str, StackJson]) -> None:
    stack = exec_stacks["retail-dev"]
    attached = sorted(a.config["role"] for a in stack.resources("aws_iam_role_policy_attachment")
                      if "exec-operator" in a.path)
    assert attached == sorted(DEFAULT_EXEC_OPERATOR_ROLES)
    statement = next(s for s in json.loads(only(stack, "aws_kms_key").config["policy"])["Statement"]
                     if s["Sid"] == "EcsExecOperatorsOpenSessions")
    assert len(statement["Principal"]["AWS"]) == len(DEFAULT_EXEC_OPERATOR_ROLES)
