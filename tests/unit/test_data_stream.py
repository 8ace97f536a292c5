from __future__ import annotations

from policy.stack_json import StackJson
from stacks.config import build_config
from tests.helpers import only, ref


def test_kinesis_stream_is_encrypted_with_the_workload_key(stack: StackJson) -> None:
    stream = only(stack, "aws_kinesis_stream").config
    assert stream["encryption_type"] == "KMS"
    assert stream["kms_key_id"] == ref(only(stack, "aws_kms_key"), "arn")


def test_stream_keeps_records_at_least_a_week(stack: StackJson) -> None:
    assert only(stack, "aws_kinesis_stream").config["retention_period"] >= 168


def test_shard_count_comes_from_the_configured_peak(stack: StackJson) -> None:
    stream = only(stack, "aws_kinesis_stream").config
    assert stream["stream_mode_details"]["stream_mode"] == "PROVISIONED"
    assert stream["shard_count"] == build_config(stack.workload, "dev").stream.shard_count >= 2


def test_destroy_deletes_registered_consumers(stack: StackJson) -> None:
    assert only(stack, "aws_kinesis_stream").config["enforce_consumer_deletion"] is True


def test_stream_name_carries_workload_and_suffix(stack: StackJson) -> None:
    assert only(stack, "aws_kinesis_stream").config["name"] == f"{stack.workload}-updates-dev"
