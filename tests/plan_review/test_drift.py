"""Risks changed outside Terraform: the drift (`resource_drift`) run through the rules, in its own section
of the report, failing the review only when the plan keeps a high one."""
from __future__ import annotations

from pathlib import Path
from typing import Any

from tests.plan_review.changes import plan_document, resource_change
from tests.plan_review.test_plan_documents import review, risk_rows

PORT = {"protocol": "tcp", "from_port": 22, "to_port": 22, "ipv6_cidr_blocks": [], "prefix_list_ids": [],
        "security_groups": [], "self": False, "description": ""}
PRIVATE = {"ingress": [{**PORT, "cidr_blocks": ["10.0.0.0/16"]}], "name": "retail-bastion-dev"}
OPENED = {"ingress": [{**PORT, "cidr_blocks": ["10.0.0.0/16"]}, {**PORT, "cidr_blocks": ["0.0.0.0/0"]}],
          "name": "retail-bastion-dev"}
GROUP = "aws_security_group.bastion"


def _drifted_open(planned_actions: list[str], planned_after: dict[str, Any]) -> dict[str, Any]:
    """A group someone opened to the world in the console; the plan does `planned_actions` to it."""
    return plan_document(
        resource_change(GROUP, "aws_security_group", planned_actions, OPENED, planned_after),
        resource_drift=[resource_change(GROUP, "aws_security_group", ["update"], PRIVATE, OPENED)])


def test_a_group_opened_outside_terraform_and_kept_by_the_plan_fails_the_review(tmp_path: Path) -> None:
    status, report = review(tmp_path, _drifted_open(["no-op"], OPENED))  # e.g. `ignore_changes = [ingress]`
    assert status == 1
    assert "### Risks changed outside Terraform (drift)" in report and "### Risks\n" not in report
    assert risk_rows(report) == [f"| HIGH | `open-security-group` | retail-dev | `{GROUP}` | ingress from 0.0.0.0/0 "
                                 "on tcp 22 — this plan keeps it |"]
    assert "**1 high risk not acknowledged**" in report


def test_a_group_opened_outside_terraform_and_closed_by_the_plan_is_listed_without_failing(tmp_path: Path) -> None:
    status, report = review(tmp_path, _drifted_open(["update"], PRIVATE))
    assert status == 0
    assert risk_rows(report) == [f"| HIGH | `open-security-group` | retail-dev | `{GROUP}` | ingress from 0.0.0.0/0 "
                                 "on tcp 22 — this plan undoes it |"]
    assert "No high risk. 1 high risk changed outside Terraform, undone by this plan: applying it closes them." in report


def test_a_drift_that_carries_no_risk_adds_no_row(tmp_path: Path) -> None:
    renamed = {**PRIVATE, "description": "edited in the console"}
    plan = plan_document(resource_change(GROUP, "aws_security_group", ["update"], renamed, PRIVATE),
                         resource_drift=[resource_change(GROUP, "aws_security_group", ["update"], PRIVATE, renamed)])
    status, report = review(tmp_path, plan)
    assert status == 0 and risk_rows(report) == [] and "(drift)" not in report
    assert "changed outside Terraform" in report  # the drift table itself still shows it


def test_a_drifted_high_risk_is_acknowledged_like_any_other(tmp_path: Path) -> None:
    status, report = review(tmp_path, _drifted_open(["no-op"], OPENED), "--acknowledged-by", "label by @lead")
    assert status == 0
    assert risk_rows(report) == [f"| HIGH (acknowledged) | `open-security-group` | retail-dev | `{GROUP}` | ingress "
                                 "from 0.0.0.0/0 on tcp 22 — this plan keeps it — acknowledged: label by @lead |"]


def test_a_world_rule_the_stack_manages_as_its_own_resource_is_not_drift_of_its_group(tmp_path: Path) -> None:
    # the group's computed `ingress` lists the separate rule after the apply that created it
    group_id = "sg-0123456789abcdef0"
    public = {"cidr_ipv4": "0.0.0.0/0", "ip_protocol": "tcp", "from_port": 443, "to_port": 443,
              "security_group_id": group_id}
    recorded = {"id": group_id, "name": "retail-alb-dev", "ingress": []}
    now = {**recorded, "ingress": [{**PORT, "from_port": 443, "to_port": 443, "cidr_blocks": ["0.0.0.0/0"]}]}
    plan = plan_document(
        resource_change("aws_security_group.alb", "aws_security_group", ["no-op"], now, now),
        resource_change("aws_vpc_security_group_ingress_rule.https", "aws_vpc_security_group_ingress_rule", ["no-op"],
                        public, public),
        resource_drift=[resource_change("aws_security_group.alb", "aws_security_group", ["update"], recorded, now)])
    status, report = review(tmp_path, plan)
    assert status == 0 and risk_rows(report) == []
    other_group = {**now, "id": "sg-0fedcba9876543210"}  # the same rule on another group is drift all the same
    plan["resource_drift"] = [resource_change("aws_security_group.alb", "aws_security_group", ["update"],
                                              {**recorded, "id": other_group["id"]}, other_group)]
    plan["resource_changes"][0]["change"].update(before=other_group, after=other_group)
    status, report = review(tmp_path, plan)
    assert status == 1 and len(risk_rows(report)) == 1


def test_a_role_policy_the_stack_manages_is_not_drift_of_its_role_but_one_added_by_hand_is(tmp_path: Path) -> None:
    wide = '{"Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Action": "s3:*", "Resource": "*"}]}'
    trust = '{"Version": "2012-10-17", "Statement": []}'
    recorded = {"name": "retail-task-dev", "id": "retail-task-dev", "assume_role_policy": trust, "inline_policy": []}

    def role_now(*names: str) -> dict[str, Any]:
        return {**recorded, "inline_policy": [{"name": n, "policy": wide} for n in names]}

    managed = {"role": "retail-task-dev", "name": "task", "policy": wide}
    plan = plan_document(
        resource_change("aws_iam_role.task", "aws_iam_role", ["no-op"], role_now("task"), role_now("task")),
        resource_change("aws_iam_role_policy.task", "aws_iam_role_policy", ["no-op"], managed, managed),
        resource_drift=[resource_change("aws_iam_role.task", "aws_iam_role", ["update"], recorded, role_now("task"))])
    status, report = review(tmp_path, plan)
    assert status == 0 and risk_rows(report) == []
    plan["resource_drift"][0]["change"]["after"] = role_now("task", "console-debug")
    plan["resource_changes"][0]["change"].update(before=role_now("task", "console-debug"),
                                                 after=role_now("task", "console-debug"))
    status, report = review(tmp_path, plan)
    assert status == 1 and risk_rows(report) == [
        "| HIGH | `iam-wildcard` | retail-dev | `aws_iam_role.task` | wildcard granted: `s3:*` on `*` — this plan "
        "keeps it |"]
