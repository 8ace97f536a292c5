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


FOREIGN_ACCOUNT = "999999999999"


def _address(element: object) -> str:
    return f"{element.terraform_resource_type}.{element.friendly_unique_id}"  # type: ignore[attr-defined]


def _forget_the_flow_logs(stack: object) -> None:
    """`removed` blocks (destroy = false) for the VPC flow logs: their log group, role, policy and the
    flow log itself."""
    from cdktf import TerraformResource

    network = _only(stack, "FlowLog").node.scope
    parts = [network.node.find_child(id_) for id_ in ("flow-log", "flow-logs", "flow-logs-role", "flow-logs-policy")]
    forgotten = [e for part in parts for e in part.node.find_all() if isinstance(e, TerraformResource)]
    stack.add_override("removed", [{"from": _address(e), "lifecycle": {"destroy": False}}  # type: ignore[attr-defined]
                                   for e in forgotten])
    for part in parts:
        part.node.scope.node.try_remove_child(part.node.id)


def _hand_the_key_to_another_account(stack: object) -> None:
    key = _only(stack, "KmsKey")
    document = json.loads(key.policy_input)  # type: ignore[attr-defined]
    document["Statement"].append({"Sid": "PartnerAdministers", "Effect": "Allow",
                                  "Principal": {"AWS": f"arn:aws:iam::{FOREIGN_ACCOUNT}:root"},
                                  "Action": "kms:*", "Resource": "*"})
    key.policy = json.dumps(document)  # type: ignore[attr-defined]


def _disable_the_key(stack: object) -> None:
    _only(stack, "KmsKey").add_override("is_enabled", False)


def _attach_s3_full_access(stack: object) -> None:
    from cdktf_cdktf_provider_aws.iam_role_policy_attachment import IamRolePolicyAttachment

    service = stack.node.find_child("processor")  # type: ignore[attr-defined]
    IamRolePolicyAttachment(stack, "s3-everything", role=service.task_role.name,  # type: ignore[arg-type]
                            policy_arn="arn:aws:iam::aws:policy/AmazonS3FullAccess")


def _weaken_the_archive(stack: object) -> None:
    """Versioning suspended, and the bucket's default key swapped for the AWS-managed one."""
    archive = stack.node.find_child("archive")  # type: ignore[attr-defined]
    archive.node.find_child("versioning").add_override("versioning_configuration.status", "Suspended")
    archive.node.find_child("encryption").add_override(
        "rule.0.apply_server_side_encryption_by_default.kms_master_key_id", "alias/aws/s3")


def _archive_was_not_force_destroyable(state: dict) -> None:
    """The deployed archive bucket as production has it (force_destroy off), so the plan turns it on."""
    for resource in state["resources"]:
        if resource["type"] == "aws_s3_bucket" and "archive" in resource["name"] and "log" not in resource["name"]:
            for instance in resource["instances"]:
                instance["attributes"]["force_destroy"] = False


def _drop_the_backups(stack: object) -> None:
    stack.node.try_remove_child("backup")  # type: ignore[attr-defined]


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
    "forget": Scenario(change_stack=_forget_the_flow_logs),
    "foreign-key-admin": Scenario(change_stack=_hand_the_key_to_another_account),
    "key-disabled": Scenario(change_stack=_disable_the_key),
    "s3-full-access": Scenario(change_stack=_attach_s3_full_access),
    "archive-weakened": Scenario(change_stack=_weaken_the_archive, change_state=_archive_was_not_force_destroyable),
    "backups-dropped": Scenario(change_stack=_drop_the_backups),
    "destroy": Scenario(destroy=True),
    "resized": Scenario(change_config=lambda c: replace(
        c, database=replace(c.database, instance_class="db.t4g.small"), cache=replace(c.cache, node_type="cache.t4g.small"))),
}
