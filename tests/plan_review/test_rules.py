"""Each plan-review rule on hand-built changes: seconds, no deployment. A new rule starts here,
with an example that raises it and one that must not; tests/plan_review/test_real_plans.py
then holds the rules to what terraform really plans."""
from __future__ import annotations

import json

import pytest

from tests.plan_review.changes import ACCOUNT, allow, change, document, plan
from tools.plan_review import rules
from tools.plan_review.model import Change

STREAM_ARN = f"arn:aws:kinesis:us-east-1:{ACCOUNT}:stream/retail-updates-dev"
TLS_ONLY = document({"Effect": "Deny", "Principal": "*", "Action": "s3:*", "Resource": "*",
                     "Condition": {"Bool": {"aws:SecureTransport": "false"}}})


def _task(env: dict[str, str]) -> dict:
    return {"container_definitions": json.dumps([{"environment": [{"name": k, "value": v} for k, v in env.items()]}])}


# (rule id, severity, the changes, the reason): each alone in its plan raises exactly that one risk.
RAISED: list[tuple[str, str, list[Change], str]] = [
    ("stateful-replace", rules.HIGH,
     [change("aws_db_instance", "replace", {"db_name": "catalog"}, {"db_name": "shop"}, forced_by=("db_name",))],
     "`db_name` forces replacement: destroys the database and its data (kept only in snapshots)"),
    ("stateful-delete", rules.HIGH, [change("aws_kinesis_stream", "delete", {"name": "retail-updates-dev"})],
     "deleted: loses the stream and every record it retains"),
    ("stateful-delete", rules.HIGH, [change("aws_api_gateway_api_key", "delete", {"name": "retail-supplier-acme-1-dev"})],
     "deleted: loses the key's value: the supplier holding it is refused (403) until handed another"),
    ("stateful-forget", rules.MEDIUM, [change("aws_cloudwatch_log_group", "forget", {"name": "/retail/dev/x"})],
     "forgotten (a `removed` block): Terraform stops managing it; log group and its log events stays in AWS, "
     "unprotected by this stack's checks and still billed, until someone deletes or imports it"),
    ("engine-major-upgrade", rules.HIGH,
     [change("aws_db_instance", "update", {"engine_version": "16.4"}, {"engine_version": "17.2"})],
     "engine major version 16.4 -> 17.2: in place, with downtime, and cannot be rolled back"),
    ("encryption", rules.HIGH,
     [change("aws_kinesis_stream", "update", {"encryption_type": "KMS"}, {"encryption_type": "NONE"})],
     "stream encryption is NONE: records at rest are not encrypted"),
    ("encryption", rules.HIGH, [change("aws_kms_key", "update", {"is_enabled": True}, {"is_enabled": False})],
     "the key is disabled: everything encrypted with it is unreadable and every write with it fails"),
    ("tls", rules.HIGH,
     [change("aws_elasticache_replication_group", "update", {"transit_encryption_mode": "required"},
             {"transit_encryption_mode": "preferred"})],
     "`transit_encryption_mode` is preferred: clients may connect without TLS"),
    ("tls", rules.HIGH, [change("aws_ecs_task_definition", "update", _task({"DB_SSLMODE": "verify-full"}),
                                _task({"DB_SSLMODE": "disable"}))],
     "the task sets DB_SSLMODE=disable: database connections may skip TLS"),
    ("tls", rules.HIGH, [change("aws_s3_bucket_policy", "update", {"policy": TLS_ONLY},
                                {"policy": document()})],
     "the bucket policy no longer denies requests without TLS (aws:SecureTransport)"),
    ("public-access", rules.HIGH,
     [change("aws_db_instance", "update", {"publicly_accessible": False}, {"publicly_accessible": True})],
     "`publicly_accessible` is on: the database gets a public endpoint"),
    ("open-security-group", rules.HIGH,
     [change("aws_vpc_security_group_ingress_rule", "create",
             after={"cidr_ipv4": "0.0.0.0/0", "ip_protocol": "tcp", "from_port": 5432, "to_port": 5432})],
     "ingress from 0.0.0.0/0 on tcp 5432"),
    ("open-security-group", rules.MEDIUM,
     [change("aws_vpc_security_group_egress_rule", "create", after={"cidr_ipv4": "0.0.0.0/0", "ip_protocol": "-1"})],
     "egress to 0.0.0.0/0 on all ports"),
    ("open-network-acl", rules.MEDIUM,
     [change("aws_network_acl_rule", "create", after={"egress": False, "rule_action": "allow", "protocol": "6",
                                                      "from_port": 22, "to_port": 22, "cidr_block": "0.0.0.0/0"})],
     "network ACL allows ingress from 0.0.0.0/0 on 6 22: only security groups stand in the way"),
    ("iam-wildcard", rules.HIGH,
     [change("aws_iam_role_policy", "update", {"policy": document(allow("kinesis:GetRecords", STREAM_ARN))},
             {"policy": document(allow("kinesis:GetRecords", STREAM_ARN), allow("s3:*"))})],
     "wildcard granted: `s3:*` on `*`"),
    ("iam-gain", rules.MEDIUM,
     [change("aws_iam_role_policy", "update", {"policy": document(allow("kinesis:GetRecords", STREAM_ARN))},
             {"policy": document(allow(["kinesis:GetRecords", "kinesis:PutRecord"], STREAM_ARN))})],
     f"gains `kinesis:PutRecord` on `{STREAM_ARN}`"),
    ("iam-wildcard", rules.HIGH,
     [change("aws_iam_role_policy_attachment", "create",
             after={"policy_arn": "arn:aws:iam::aws:policy/AmazonS3FullAccess"})],
     "attaches the managed policy `arn:aws:iam::aws:policy/AmazonS3FullAccess`: administrator or full-access scope"),
    ("protection", rules.HIGH,
     [change("aws_cloudwatch_log_group", "update", {"retention_in_days": 30}, {"retention_in_days": 7})],
     "log retention (days) shortened from 30 to 7"),
    ("protection", rules.HIGH,
     [change("aws_db_instance", "update", {"deletion_protection": True}, {"deletion_protection": False})],
     "deletion protection turned off"),
    ("rotation", rules.HIGH,
     [change("aws_secretsmanager_secret_rotation", "update", {"rotation_rules": [{"automatically_after_days": 30}]},
             {"rotation_rules": [{"automatically_after_days": 90}]})],
     "credentials rotate every 90 days (at most 30 allowed)"),
    ("tags-and-suffix", rules.MEDIUM,
     [change("aws_sqs_queue", "create", after={"name": "retail-dead-letters-dev", "tags_all": {"Owner": "x"}})],
     "new resource lacks tags: Project, Workload, Environment, CostCenter, ManagedBy, DataClassification"),
    ("tags-and-suffix", rules.MEDIUM,
     [change("aws_sns_topic", "create", after={"name": "untagged-alerts",
                                                "tags_all": dict(plan().default_tags)})],
     "name `untagged-alerts` does not carry the environment suffix `dev`"),
]


@pytest.mark.parametrize(("rule", "severity", "changes", "reason"), RAISED,
                         ids=[f"{r[0]}: {r[3][:50]}" for r in RAISED])
def test_a_risky_change_raises_its_rule_and_nothing_else(rule: str, severity: str, changes: list[Change],
                                                         reason: str) -> None:
    found = rules.assess(plan(*changes))
    assert [(r.rule, r.severity, r.reason) for r in found] == [(rule, severity, reason)]
    assert found[0].address == changes[0].address and found[0].stack == "retail-dev"


def test_every_rule_id_has_a_hand_built_example() -> None:
    assert {rule for rule, *_ in RAISED} == set(rules.RISK_RULES)


# Changes that look alike and must raise nothing: each alone in its plan.
QUIET: list[tuple[str, list[Change]]] = [
    ("a minor engine upgrade", [change("aws_db_instance", "update", {"engine_version": "16.3"},
                                       {"engine_version": "16.4"})]),
    ("a longer log retention", [change("aws_cloudwatch_log_group", "update", {"retention_in_days": 7},
                                       {"retention_in_days": 30})]),
    ("a stateless resource replaced", [change("aws_iam_role_policy", "replace", {"name": "retail-run-dev"},
                                              {"name": "retail-processor-run-dev"}, forced_by=("name",))]),
    ("a policy narrowed", [change("aws_iam_role_policy", "update",
                                  {"policy": document(allow(["kinesis:GetRecords", "kinesis:PutRecord"], STREAM_ARN))},
                                  {"policy": document(allow("kinesis:GetRecords", STREAM_ARN))})]),
    ("a bucket's companions deleted with it", [
        change("aws_s3_bucket", "delete", {"bucket": "b", "policy": TLS_ONLY}, name="archive"),
        change("aws_s3_bucket_policy", "delete", {"bucket": "b", "policy": TLS_ONLY}),
        change("aws_s3_bucket_public_access_block", "delete", {"bucket": "b", "block_public_acls": True}),
    ]),
]


@pytest.mark.parametrize(("what", "changes"), QUIET, ids=[q[0] for q in QUIET])
def test_a_change_that_only_looks_risky_raises_nothing_of_its_own(what: str, changes: list[Change]) -> None:
    found = rules.assess(plan(*changes))
    assert [(r.rule, r.address) for r in found if r.address != "aws_s3_bucket.archive"] == []


def test_kms_star_is_a_wildcard_for_another_accounts_root_and_a_gain_for_the_keys_own() -> None:
    def kms_star_for(account: str) -> Change:
        return change("aws_kms_key", "update", {"policy": document()},
                      {"policy": document(allow("kms:*", principal={"AWS": f"arn:aws:iam::{account}:root"}))})

    assert [(r.rule, r.severity) for r in rules.assess(plan(kms_star_for("999999999999")))] == [
        ("iam-wildcard", rules.HIGH)]
    assert [(r.rule, r.severity) for r in rules.assess(plan(kms_star_for(ACCOUNT)))] == [("iam-gain", rules.MEDIUM)]


def test_a_production_bucket_created_with_force_destroy_is_high_where_a_dev_one_is_not() -> None:
    bucket = change("aws_s3_bucket", "create", after={"bucket": "retail-archive-prod-1", "force_destroy": True,
                                                     "tags_all": dict(plan(stack="retail-prod").default_tags)})
    assert [r.reason for r in rules.assess(plan(bucket, stack="retail-prod"))] == [
        "`force_destroy` on: deleting the bucket deletes every object (and version) in it"]
    dev = change("aws_s3_bucket", "create", after={"bucket": "retail-archive-dev-1", "force_destroy": True,
                                                  "tags_all": dict(plan().default_tags)})
    assert rules.assess(plan(dev)) == []
