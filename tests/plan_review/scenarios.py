"""The changes the real-plan tests make to the retail stack: config changes and code changes."""
from __future__ import annotations

import json
from dataclasses import replace

from tests.plan_review.conftest import Scenario

SECRET = "an-auth-token-nobody-may-read-0123456789"


def _only(stack: object, type_name: str) -> object:
    from constructs import Construct

    assert isinstance(stack, Construct)
    found = [c for c in stack.node.find_all() if type(c).__name__ == type_name]
    assert len(found) == 1, f"{len(found)} {type_name}"
    return found[0]


def _widen_task_policy(stack: object) -> None:
    policy = stack.node.find_child("processor").node.find_child("task-policy")  # type: ignore[attr-defined]
    document = json.loads(policy.policy_input)
    document["Statement"].append({"Sid": "Everything", "Effect": "Allow", "Action": "s3:*", "Resource": "*"})
    document["Statement"].append({"Sid": "MoreKinesis", "Effect": "Allow", "Action": "kinesis:DeleteStream",
                                  "Resource": document["Statement"][0]["Resource"]})
    policy.policy = json.dumps(document)


def _open_database_port(stack: object) -> None:
    from cdktf_cdktf_provider_aws.vpc_security_group_ingress_rule import VpcSecurityGroupIngressRule

    database = stack.node.find_child("database")  # type: ignore[attr-defined]
    VpcSecurityGroupIngressRule(stack, "debug-access", security_group_id=database.security_group.id,  # type: ignore[arg-type]
                                cidr_ipv4="0.0.0.0/0", from_port=5432, to_port=5432, ip_protocol="tcp",
                                description="temporary debug access")


def _untagged_topic(stack: object) -> None:
    from cdktf_cdktf_provider_aws.provider import AwsProvider
    from cdktf_cdktf_provider_aws.sns_topic import SnsTopic

    bare = AwsProvider(stack, "aws-bare", alias="bare", region="us-east-1")  # type: ignore[arg-type]
    SnsTopic(stack, "audit", name="audit-events", provider=bare)  # type: ignore[arg-type]


def _rotate_every_90_days(stack: object) -> None:
    _only(stack, "SecretsmanagerSecretRotation").add_override("rotation_rules.automatically_after_days", 90)


def _stream_unencrypted_and_new_token(stack: object) -> None:
    stream = _only(stack, "KinesisStream")
    stream.add_override("encryption_type", "NONE")
    stream.add_override("kms_key_id", None)
    _only(stack, "ElasticacheReplicationGroup").add_override("auth_token", SECRET)


SCENARIOS = {
    "harmless": Scenario(change_config=lambda c: replace(c, owner="data-platform-team",
                                                         alarms=replace(c.alarms, db_cpu_percent=85))),
    "db-renamed": Scenario(change_config=lambda c: replace(c, database=replace(c.database, db_name="catalog_v2"))),
    "engine-17": Scenario(change_config=lambda c: replace(c, database=replace(
        c.database, engine_version="17", parameter_group_family="postgres17"))),
    "retention": Scenario(change_config=lambda c: replace(
        c, log_retention_days=7, database=replace(c.database, backup_retention_days=1),
        archive=replace(c.archive, expiration_days=365))),
    "policy-widened": Scenario(change_stack=_widen_task_policy),
    "port-opened": Scenario(change_stack=_open_database_port),
    "untagged": Scenario(change_stack=_untagged_topic),
    "rotation-90": Scenario(change_stack=_rotate_every_90_days),
    "unencrypted": Scenario(change_stack=_stream_unencrypted_and_new_token),
}
