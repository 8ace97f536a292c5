from __future__ import annotations

import json

from policy.stack_json import Resource, StackJson
from tests.helpers import by_path, only, paging_alarm_purposes, ref


def test_every_stream_record_is_delivered_to_the_archive_bucket(stack: StackJson) -> None:
    firehose = only(stack, "aws_kinesis_firehose_delivery_stream").config
    assert firehose["kinesis_source_configuration"]["kinesis_stream_arn"] == ref(only(stack, "aws_kinesis_stream"), "arn")
    archive = by_path(stack, "aws_s3_bucket", "archive/bucket")
    assert firehose["extended_s3_configuration"]["bucket_arn"] == ref(archive, "arn")
    assert "aws_kms_key" in firehose["extended_s3_configuration"]["kms_key_arn"]


def test_bucket_is_sse_kms_with_the_cmk_and_versioned(stack: StackJson) -> None:
    sse = by_path(stack, "aws_s3_bucket_server_side_encryption_configuration", "archive/encryption").config["rule"][0]
    assert sse["apply_server_side_encryption_by_default"]["sse_algorithm"] == "aws:kms"
    assert sse["apply_server_side_encryption_by_default"]["kms_master_key_id"] == ref(only(stack, "aws_kms_key"), "arn")
    versioning = by_path(stack, "aws_s3_bucket_versioning", "archive/versioning").config
    assert versioning["versioning_configuration"] == {"status": "Enabled"}


def test_bucket_blocks_public_access(stack: StackJson) -> None:
    block = by_path(stack, "aws_s3_bucket_public_access_block", "archive/public-access").config
    assert all(block[k] is True for k in ("block_public_acls", "block_public_policy", "ignore_public_acls",
                                          "restrict_public_buckets"))


def test_bucket_policy_denies_plain_http_and_old_tls(stack: StackJson) -> None:
    statements = json.loads(by_path(stack, "aws_s3_bucket_policy", "archive/tls-only").config["policy"])["Statement"]
    assert {s["Sid"] for s in statements if s["Effect"] == "Deny"} == {"DenyInsecureTransport", "DenyOutdatedTls"}


def test_retail_archive_tiers_down_and_expires_no_earlier_than_three_years(retail: StackJson) -> None:
    rule = by_path(retail, "aws_s3_bucket_lifecycle_configuration", "archive/lifecycle").config["rule"][0]
    assert [t["storage_class"] for t in rule["transition"]] == ["STANDARD_IA", "GLACIER"]
    assert rule["expiration"][0]["days"] >= 1_096


def test_factory_archive_keeps_its_compliance_period(factory: StackJson) -> None:
    rule = by_path(factory, "aws_s3_bucket_lifecycle_configuration", "archive/lifecycle").config["rule"][0]
    assert rule["expiration"][0]["days"] == 2_557


def archive_expiry(stack: StackJson) -> int:
    return by_path(stack, "aws_s3_bucket_lifecycle_configuration", "archive/lifecycle").config["rule"][0][
        "expiration"][0]["days"]


def test_production_keeps_database_backups_as_long_as_the_archive_a_dev_a_week(stack: StackJson,
                                                                               prod_stacks: dict[str, StackJson]) -> None:
    prod = prod_stacks[f"{stack.workload}-prod"]
    assert only(prod, "aws_backup_plan").config["rule"][0]["lifecycle"]["delete_after"] == archive_expiry(prod)
    assert only(stack, "aws_backup_plan").config["rule"][0]["lifecycle"]["delete_after"] == 7
    selection = only(stack, "aws_backup_selection").config
    assert selection["resources"] == [ref(only(stack, "aws_db_instance"), "arn")]
    assert "aws_kms_key" in only(stack, "aws_backup_vault").config["kms_key_arn"]


def test_firehose_role_reads_only_its_stream_and_writes_only_its_bucket(stack: StackJson) -> None:
    policy = [r for r in stack.resources("aws_iam_role_policy") if r.path.endswith("archive/firehose-policy")][0]
    statements = {s["Sid"]: s for s in json.loads(policy.config["policy"])["Statement"]}
    assert statements["ReadTheStream"]["Resource"] == [ref(only(stack, "aws_kinesis_stream"), "arn")]
    bucket = ref(by_path(stack, "aws_s3_bucket", "archive/bucket"), "arn")
    assert statements["FindTheArchiveBucket"]["Action"] == [
        "s3:GetBucketLocation", "s3:ListBucket", "s3:ListBucketMultipartUploads"]
    assert statements["FindTheArchiveBucket"]["Resource"] == [bucket]
    assert statements["WriteTheArchive"]["Action"] == ["s3:AbortMultipartUpload", "s3:GetObject", "s3:PutObject"]
    assert statements["WriteTheArchive"]["Resource"] == [f"{bucket}/*"]


def trust(resource: Resource) -> dict:
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



def test_the_production_archive_is_write_once_for_its_compliance_period(prod_stacks: dict[str, StackJson]) -> None:
    for stack in prod_stacks.values():
        bucket = by_path(stack, "aws_s3_bucket", "archive/bucket").config
        assert bucket["object_lock_enabled"] is True and bucket["force_destroy"] is False
        lock = only(stack, "aws_s3_bucket_object_lock_configuration").config
        assert lock["rule"]["default_retention"] == {"mode": "COMPLIANCE", "days": archive_expiry(stack)}
        assert archive_expiry(stack) == {"retail": 1_096, "factory": 2_557}[stack.workload]


def test_production_archive_access_is_logged_to_a_bucket_of_its_own(prod_stacks: dict[str, StackJson]) -> None:
    for stack in prod_stacks.values():
        logging = only(stack, "aws_s3_bucket_logging").config
        archive, logs = by_path(stack, "aws_s3_bucket", "archive/bucket"), by_path(
            stack, "aws_s3_bucket", "archive/access-log-bucket")
        assert (logging["bucket"], logging["target_bucket"]) == (ref(archive, "id"), ref(logs, "id"))
        policy = json.loads(by_path(stack, "aws_s3_bucket_policy", "archive/access-log-policy").config["policy"])
        delivery = next(s for s in policy["Statement"] if s["Sid"] == "S3DeliversTheArchivesAccessLogs")
        assert delivery["Principal"] == {"Service": "logging.s3.amazonaws.com"}
        assert delivery["Condition"]["ArnLike"] == {"aws:SourceArn": ref(archive, "arn")}
        # S3 log delivery cannot write to an SSE-KMS bucket: SSE-S3, the one exception to the CMK.
        sse = by_path(stack, "aws_s3_bucket_server_side_encryption_configuration", "archive/access-log-encryption")
        assert sse.config["rule"][0]["apply_server_side_encryption_by_default"] == {"sse_algorithm": "AES256"}


def test_production_backups_sit_in_a_vault_locked_for_their_retention(prod_stacks: dict[str, StackJson]) -> None:
    for stack in prod_stacks.values():
        lock = only(stack, "aws_backup_vault_lock_configuration").config
        keep = archive_expiry(stack)
        assert (lock["min_retention_days"], lock["max_retention_days"], lock["changeable_for_days"]) == (keep, keep, 3)
        assert lock["backup_vault_name"] == ref(only(stack, "aws_backup_vault"), "name")


def test_a_destroyable_environment_has_no_lock_that_would_outlive_a_destroy(dev_stacks: dict[str, StackJson]) -> None:
    for stack in dev_stacks.values():
        types = {r.type for r in stack.resources()}
        assert not types & {"aws_s3_bucket_object_lock_configuration", "aws_backup_vault_lock_configuration",
                            "aws_s3_bucket_logging"}
        archive = by_path(stack, "aws_s3_bucket", "archive/bucket").config
        assert "object_lock_enabled" not in archive and archive["force_destroy"] is True
        assert only(stack, "aws_backup_vault").config["force_destroy"] is True


def test_the_archive_pages_on_delivery_reading_read_lag_and_freshness(stack: StackJson) -> None:
    assert paging_alarm_purposes(stack, "archive-") == {"archive-delivery", "archive-not-reading", "archive-read-lag",
                                                "archive-freshness"}
