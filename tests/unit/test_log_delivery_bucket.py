"""Buckets an AWS log delivery writes into (pipeline_lib/log_delivery_bucket.py): the catalog ALB's access logs
and the production archive's S3 server access logs, over the synthesized JSON."""
from __future__ import annotations

from dataclasses import replace
from typing import Any

import pytest

from pipeline_lib.log_delivery_bucket import UnknownElbRegionError, elb_access_logging
from pipeline_lib.settings import CatalogReadApiConfig
from policy import rules
from policy.stack_json import Resource, StackJson
from stacks.config import build_config
from tests.helpers import by_path, policy_statements, ref


def account_id(stack: StackJson) -> str:
    (caller,) = stack.data_sources("aws_caller_identity")
    return f"${{data.aws_caller_identity.{caller.name}.account_id}}"


def alb_log_bucket(stack: StackJson) -> Resource:
    return by_path(stack, "aws_s3_bucket", "catalog-api/access-log-bucket")


PARTS = {"aws_s3_bucket_server_side_encryption_configuration": "encryption", "aws_s3_bucket_versioning": "versioning",
         "aws_s3_bucket_public_access_block": "public-access", "aws_s3_bucket_ownership_controls": "ownership",
         "aws_s3_bucket_lifecycle_configuration": "lifecycle"}


def part(stack: StackJson, type_: str, owner: str, bucket: Resource) -> dict[str, Any]:
    """The one `type_` of the log bucket built by `owner` (its construct), checked to point at that bucket."""
    found = by_path(stack, type_, f"{owner}/access-log-{PARTS[type_]}")
    assert found.config["bucket"] == ref(bucket, "id")
    return found.config


@pytest.fixture(params=["dev", "prod"])
def retail_stack(request: pytest.FixtureRequest, dev_stacks: dict[str, StackJson],
                 prod_stacks: dict[str, StackJson]) -> StackJson:
    return {"dev": dev_stacks, "prod": prod_stacks}[request.param][f"retail-{request.param}"]


def test_the_alb_writes_its_access_logs_to_a_bucket_of_its_own_under_its_prefix(retail_stack: StackJson) -> None:
    alb = by_path(retail_stack, "aws_lb", "catalog-api/alb").config
    bucket = alb_log_bucket(retail_stack)
    assert alb["access_logs"] == {"bucket": ref(bucket, "id"), "prefix": "catalog-api", "enabled": True}
    suffix = retail_stack.stack_id.removeprefix("retail-")
    assert bucket.config["bucket"] == f"retail-catalog-alb-logs-{suffix}-{account_id(retail_stack)}"
    # ELB writes a test object when logging is turned on: the bucket policy must exist by then.
    policy = by_path(retail_stack, "aws_s3_bucket_policy", "catalog-api/access-log-policy")
    assert f"{policy.type}.{policy.name}" in alb["depends_on"]


def test_only_the_regions_elb_log_delivery_may_put_objects_and_only_under_the_albs_prefix(
        retail_stack: StackJson) -> None:
    bucket = alb_log_bucket(retail_stack)
    policy = by_path(retail_stack, "aws_s3_bucket_policy", "catalog-api/access-log-policy")
    assert policy.config["bucket"] == ref(bucket, "id")
    allows = [s for s in policy_statements(policy) if s["Effect"] == "Allow"]
    # us-east-1, retail's region: ELB's log delivery account for that region, PutObject, that prefix, nothing else.
    assert allows == [{"Sid": "ElbDeliversTheLoadBalancersAccessLogs", "Effect": "Allow",
                       "Principal": {"AWS": "arn:aws:iam::127311923021:root"}, "Action": "s3:PutObject",
                       "Resource": f"{ref(bucket, 'arn')}/catalog-api/AWSLogs/{account_id(retail_stack)}/*"}]
    denies = [s for s in policy_statements(policy) if s["Effect"] != "Allow"]
    assert denies == [{"Sid": "DenyInsecureTransport", "Effect": "Deny", "Principal": "*", "Action": "s3:*",
                       "Resource": [ref(bucket, "arn"), f"{ref(bucket, 'arn')}/*"],
                       "Condition": {"Bool": {"aws:SecureTransport": "false"}}}]


def test_log_buckets_are_sse_s3_with_the_reason_in_their_tags_and_nothing_else_may_be(
        prod_stacks: dict[str, StackJson]) -> None:
    stack = prod_stacks["retail-prod"]
    for owner, delivery in (("catalog-api", "ALB access logging"), ("archive", "S3 server access logging")):
        bucket = by_path(stack, "aws_s3_bucket", f"{owner}/access-log-bucket")
        sse = part(stack, "aws_s3_bucket_server_side_encryption_configuration", owner, bucket)
        assert sse["rule"][0]["apply_server_side_encryption_by_default"] == {"sse_algorithm": "AES256"}
        assert bucket.config["tags"] == {
            "LogDelivery": delivery,
            "EncryptionException": f"SSE-S3 not the stack KMS key: {delivery} delivers only to SSE-S3 buckets"}
    # Every other bucket keeps the stack's key, and the policy rule accepts exactly these two exceptions.
    sse_s3 = {r.config["bucket"] for r in stack.resources("aws_s3_bucket_server_side_encryption_configuration")
              if r.config["rule"][0]["apply_server_side_encryption_by_default"]["sse_algorithm"] == "AES256"}
    assert sse_s3 == {ref(by_path(stack, "aws_s3_bucket", f"{owner}/access-log-bucket"), "id")
                      for owner in ("catalog-api", "archive")}
    assert list(rules.data_at_rest_uses_the_cmk(stack)) == []


def test_a_log_bucket_is_private_owner_enforced_versioned_and_expires_its_logs(retail_stack: StackJson) -> None:
    bucket = alb_log_bucket(retail_stack)
    block = part(retail_stack, "aws_s3_bucket_public_access_block", "catalog-api", bucket)
    assert all(block[k] is True for k in ("block_public_acls", "block_public_policy", "ignore_public_acls",
                                          "restrict_public_buckets"))
    ownership = part(retail_stack, "aws_s3_bucket_ownership_controls", "catalog-api", bucket)
    assert ownership["rule"] == {"object_ownership": "BucketOwnerEnforced"}
    versioning = part(retail_stack, "aws_s3_bucket_versioning", "catalog-api", bucket)
    assert versioning["versioning_configuration"] == {"status": "Enabled"}
    (rule,) = part(retail_stack, "aws_s3_bucket_lifecycle_configuration", "catalog-api", bucket)["rule"]
    config = build_config("retail", retail_stack.stack_id.removeprefix("retail-"), "email:a@example.com").catalog_api
    assert config is not None
    assert rule["expiration"] == [{"days": config.access_log_retention_days}]
    assert config.access_log_retention_days == (365 if retail_stack.stack_id.endswith("prod") else 30)


def test_a_destroyable_environment_destroys_the_alb_log_bucket_with_its_logs_and_production_keeps_it(
        dev_stacks: dict[str, StackJson], prod_stacks: dict[str, StackJson]) -> None:
    assert alb_log_bucket(dev_stacks["retail-dev"]).config["force_destroy"] is True
    assert alb_log_bucket(prod_stacks["retail-prod"]).config["force_destroy"] is False
    assert list(rules.destroyable_outside_production(dev_stacks["retail-dev"])) == []
    assert list(rules.production_is_protected(prod_stacks["retail-prod"])) == []


def test_a_region_without_a_recorded_elb_account_is_refused_by_name() -> None:
    with pytest.raises(UnknownElbRegionError, match="'ap-south-2'.*logdelivery.elasticloadbalancing"):
        elb_access_logging("ap-south-2", "123456789012", "catalog-api")
    assert elb_access_logging("eu-west-1", "123456789012", "x").principal == {
        "AWS": "arn:aws:iam::156460612806:root"}


@pytest.mark.parametrize("prefix", ["", "/catalog", "catalog/", "AWSLogs"])
def test_an_alb_log_prefix_elb_would_mangle_is_refused(prefix: str) -> None:
    with pytest.raises(ValueError, match="no leading or trailing slash"):
        elb_access_logging("us-east-1", "123456789012", prefix)


def test_alb_access_logs_are_kept_at_least_a_day() -> None:
    config = CatalogReadApiConfig(certificate_domain="catalog.example.internal")
    with pytest.raises(ValueError, match="access_log_retention_days"):
        replace(config, access_log_retention_days=0)
