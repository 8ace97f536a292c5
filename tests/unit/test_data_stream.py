from __future__ import annotations

from pathlib import Path

from cdktf import App

from policy.stack_json import StackJson, load_app
from stacks.config import build_config
from stacks.workload_stack import WorkloadStack
from tests.helpers import by_path, only, paging_alarm_purposes, ref


def test_kinesis_stream_is_encrypted_with_the_workload_key(stack: StackJson) -> None:
    stream = only(stack, "aws_kinesis_stream").config
    assert stream["encryption_type"] == "KMS"
    assert stream["kms_key_id"] == ref(only(stack, "aws_kms_key"), "arn")


def test_stream_keeps_records_at_least_a_week(stack: StackJson) -> None:
    assert only(stack, "aws_kinesis_stream").config["retention_period"] >= 168


def test_production_shards_come_from_the_configured_peak(prod_stacks: dict[str, StackJson]) -> None:
    for stack in prod_stacks.values():
        stream = only(stack, "aws_kinesis_stream").config
        assert stream["stream_mode_details"]["stream_mode"] == "PROVISIONED"
        assert stream["shard_count"] == build_config(stack.workload, "prod", "email:a@example.com",
                                                     "email:b@example.com").stream.shard_count >= 2


def test_a_dev_stream_is_on_demand_billed_per_stream_hour_not_per_shard(stack: StackJson) -> None:
    stream = only(stack, "aws_kinesis_stream").config
    assert stream["stream_mode_details"] == {"stream_mode": "ON_DEMAND"} and "shard_count" not in stream
    assert stream["retention_period"] == 168  # the week of replay stays


def test_destroy_deletes_registered_consumers(stack: StackJson) -> None:
    assert only(stack, "aws_kinesis_stream").config["enforce_consumer_deletion"] is True


def test_stream_name_carries_workload_and_suffix(stack: StackJson) -> None:
    assert only(stack, "aws_kinesis_stream").config["name"] == f"{stack.workload}-updates-dev"



def test_an_on_demand_stream_has_no_shard_count_and_caps_tasks_at_the_shards_it_will_have(tmp_path: Path) -> None:
    config = build_config("retail", "qa")
    assert config.stream.stream_mode == "ON_DEMAND"  # every destroyable environment
    app = App(outdir=str(tmp_path))
    WorkloadStack(app, config)
    app.synth()
    (stack,) = load_app(tmp_path)
    stream = only(stack, "aws_kinesis_stream").config
    assert stream["stream_mode_details"] == {"stream_mode": "ON_DEMAND"} and "shard_count" not in stream
    # On demand starts at four shards: more tasks than that would hold nothing.
    assert config.stream.shard_count == 2 and config.max_tasks == 4 and config.service.desired_count == 2
    assert by_path(stack, "aws_appautoscaling_target", "processor/scaling-target").config["max_capacity"] == 4


def test_no_stream_pays_for_shard_level_metrics_nothing_reads(
        dev_stacks: dict[str, StackJson], prod_stacks: dict[str, StackJson]) -> None:
    for stack in [*dev_stacks.values(), *prod_stacks.values()]:
        assert not only(stack, "aws_kinesis_stream").config.get("shard_level_metrics"), stack.stack_id


def test_the_stream_pages_on_lag_and_on_throttling_either_side(stack: StackJson) -> None:
    assert paging_alarm_purposes(stack, "stream-") == {"stream-iterator-age", "stream-write-throttled", "stream-read-throttled"}
