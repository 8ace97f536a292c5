from __future__ import annotations

import json

from policy.stack_json import StackJson
from tests.helpers import only, ref


def test_every_stream_record_is_delivered_to_the_archive_bucket(stack: StackJson) -> None:
    firehose = only(stack, "aws_kinesis_firehose_delivery_stream").config
    assert firehose["kinesis_source_configuration"]["kinesis_stream_arn"] == ref(only(stack, "aws_kinesis_stream"), "arn")
    assert firehose["extended_s3_configuration"]["bucket_arn"] == ref(only(stack, "aws_s3_bucket"), "arn")
    assert "aws_kms_key" in firehose["extended_s3_configuration"]["kms_key_arn"]


def test_bucket_is_sse_kms_with_the_cmk_and_versioned(stack: StackJson) -> None:
    sse = only(stack, "aws_s3_bucket_server_side_encryption_configuration").config["rule"][0]
    assert sse["apply_server_side_encryption_by_default"]["sse_algorithm"] == "aws:kms"
    assert sse["apply_server_side_encryption_by_default"]["kms_master_key_id"] == ref(only(stack, "aws_kms_key"), "arn")
    assert only(stack, "aws_s3_bucket_versioning").config["versioning_configuration"] == {"status": "Enabled"}


def test_bucket_blocks_public_access(stack: StackJson) -> None:
    block = only(stack, "aws_s3_bucket_public_access_block").config
    assert all(block[k] is True for k in ("block_public_acls", "block_public_policy", "ignore_public_acls",
                                          "restrict_public_buckets"))


def test_bucket_policy_denies_plain_http_and_old_tls(stack: StackJson) -> None:
    statements = json.loads(only(stack, "aws_s3_bucket_policy").config["policy"])["Statement"]
    assert {s["Sid"] for s in statements if s["Effect"] == "Deny"} == {"DenyInsecureTransport", "DenyOutdatedTls"}


def test_retail_archive_tiers_down_and_expires_no_earlier_than_three_years(retail: StackJson) -> None:
    rule = only(retail, "aws_s3_bucket_lifecycle_configuration").config["rule"][0]
    assert [t["storage_class"] for t in rule["transition"]] == ["STANDARD_IA", "GLACIER"]
    assert rule["expiration"][0]["days"] >= 1_096


def test_factory_archive_keeps_its_compliance_period(factory: StackJson) -> None:
    rule = only(factory, "aws_s3_bucket_lifecycle_configuration").config["rule"][0]
    assert rule["expiration"][0]["days"] == 2_557


def test_database_backups_are_kept_as_long_as_the_archive(stack: StackJson) -> None:
    plan = only(stack, "aws_backup_plan").config["rule"][0]
    expiry = only(stack, "aws_s3_bucket_lifecycle_configuration").config["rule"][0]["expiration"][0]["days"]
    assert plan["lifecycle"]["delete_after"] == expiry
    selection = only(stack, "aws_backup_selection").config
    assert selection["resources"] == [ref(only(stack, "aws_db_instance"), "arn")]
    assert "aws_kms_key" in only(stack, "aws_backup_vault").config["kms_key_arn"]


def test_firehose_role_reads_only_its_stream_and_writes_only_its_bucket(stack: StackJson) -> None:
    policy = [r for r in stack.resources("aws_iam_role_policy") if r.path.endswith("archive/firehose-policy")][0]
    statements = {s["Sid"]: s for s in json.loads(policy.config["policy"])["Statement"]}
    assert statements["ReadTheStream"]["Resource"] == [ref(only(stack, "aws_kinesis_stream"), "arn")]
    bucket = ref(only(stack, "aws_s3_bucket"), "arn")
    assert statements["WriteTheArchive"]["Resource"] == [bucket, f"{bucket}/*"]


def trust(resource) -> dict:  # noqa: ANN001
    (statement,) = json.loads(resource.config["assume_role_policy"])["Statement"]
    return statement


def test_firehose_trusts_its_role_with_the_external_id_it_documents(stack: StackJson) -> None:
    role = next(r for r in stack.resources("aws_iam_role") if "firehose" in r.config["name"])
    assert trust(role)["Principal"] == {"Service": "firehose.amazonaws.com"}
    assert trust(role)["Condition"] == {"StringEquals": {"sts:ExternalId": "${data.aws_caller_identity."
                                                         + only_caller(stack) + ".account_id}"}}


def test_backup_trusts_its_role_without_a_condition_backup_does_not_send(stack: StackJson) -> None:
    role = next(r for r in stack.resources("aws_iam_role") if r.config["name"].startswith(f"{stack.workload}-backup-"))
    assert trust(role) == {"Sid": "AssumedByService", "Effect": "Allow",
                           "Principal": {"Service": "backup.amazonaws.com"}, "Action": "sts:AssumeRole"}


def only_caller(stack: StackJson) -> str:
    (caller,) = stack.data_sources("aws_caller_identity")
    return caller.name
