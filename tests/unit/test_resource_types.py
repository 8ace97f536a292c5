"""The one table of what each resource type and AWS service needs (policy/resource_types.py)."""
from __future__ import annotations

from policy.resource_types import AWS_SERVICES, RESOURCE_TYPES, endpoint_action_prefix, key_references, via_services
from policy.stack_json import StackJson
from tools.cost.estimate import PRICERS


def test_every_type_the_stacks_make_has_a_row_or_a_price(dev_stacks: dict[str, StackJson],
                                                       prod_stacks: dict[str, StackJson],
                                                       exec_stacks: dict[str, StackJson]) -> None:
    made = {r.type for stacks in (dev_stacks, prod_stacks, exec_stacks) for s in stacks.values() for r in s.resources()}
    assert sorted(made - set(RESOURCE_TYPES) - set(PRICERS)) == []


def test_a_type_is_either_free_or_priced_never_both() -> None:
    assert sorted(t for t, row in RESOURCE_TYPES.items() if row.free and t in PRICERS) == []


def test_key_attributes_read_as_unencrypted_when_their_condition_does_not_hold() -> None:
    key = "${aws_kms_key.key.arn}"
    assert key_references("aws_kinesis_stream", {"encryption_type": "KMS", "kms_key_id": key}) == [key]
    assert key_references("aws_kinesis_stream", {"encryption_type": "NONE", "kms_key_id": key}) == [None]
    assert key_references("aws_elasticache_replication_group",
                          {"at_rest_encryption_enabled": "true", "kms_key_id": key}) == [key]
    assert key_references("aws_ecr_repository",
                          {"encryption_configuration": [{"encryption_type": "AES256", "kms_key": key}]}) == [None]
    assert key_references("aws_vpc", {}) is None  # nothing to encrypt


def test_each_interface_endpoint_names_the_service_behind_it() -> None:
    assert {e: endpoint_action_prefix(e) for s in AWS_SERVICES.values() for e in s.endpoints} == {
        "kinesis-streams": "kinesis", "secretsmanager": "secretsmanager", "sns": "sns", "ecr.api": "ecr",
        "ecr.dkr": "ecr", "logs": "logs", "kms": "kms", "ssmmessages": "ssmmessages"}


def test_the_key_is_used_through_the_services_that_hold_data_for_the_stack() -> None:
    assert via_services() == ("kinesis", "firehose", "rds", "elasticache", "secretsmanager", "s3", "sns", "ecr",
                              "backup")
