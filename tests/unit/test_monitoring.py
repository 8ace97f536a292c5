from __future__ import annotations

from policy.stack_json import StackJson
from tests.helpers import only, ref

EXPECTED_ALARMS = {
    "stream-iterator-age", "stream-write-throttled", "stream-read-throttled", "processor-errors",
    "processor-dead-letters", "processor-tasks-below-desired", "db-cpu", "db-free-storage", "db-connections",
    "cache-1-cpu", "cache-1-memory", "cache-1-evictions", "cache-2-cpu", "cache-2-memory", "cache-2-evictions",
    "archive-delivery",
}


def test_alerts_topic_is_encrypted_with_the_cmk(stack: StackJson) -> None:
    assert only(stack, "aws_sns_topic").config["kms_master_key_id"] == ref(only(stack, "aws_kms_key"), "arn")


def test_every_tier_has_its_alarms(stack: StackJson) -> None:
    names = {r.config["alarm_name"] for r in stack.resources("aws_cloudwatch_metric_alarm")}
    assert names == {f"{stack.workload}-{purpose}-dev" for purpose in EXPECTED_ALARMS}


def test_every_alarm_notifies_the_topic(stack: StackJson) -> None:
    topic = ref(only(stack, "aws_sns_topic"), "arn")
    for alarm in stack.resources("aws_cloudwatch_metric_alarm"):
        assert alarm.config["alarm_actions"] == [topic] and alarm.config["ok_actions"] == [topic], alarm.path


def test_running_tasks_below_desired_is_computed_from_container_insights(stack: StackJson) -> None:
    alarm = next(r.config for r in stack.resources("aws_cloudwatch_metric_alarm")
                 if r.config["alarm_name"].endswith("tasks-below-desired-dev"))
    expression = [q for q in alarm["metric_query"] if "expression" in q]
    assert expression[0]["expression"] == "desired - running"
    assert alarm["treat_missing_data"] == "breaching"


def test_processor_alarms_watch_the_stacks_custom_namespace(stack: StackJson) -> None:
    alarms = [r.config for r in stack.resources("aws_cloudwatch_metric_alarm")
              if r.config["alarm_name"].startswith(f"{stack.workload}-processor-") and "namespace" in r.config]
    assert {a["metric_name"] for a in alarms} == {"ProcessingErrors", "DeadLetters"}
    assert {a["namespace"] for a in alarms} == {f"Pipeline/{stack.workload}-dev"}


def test_one_dashboard_per_stack(stack: StackJson) -> None:
    assert only(stack, "aws_cloudwatch_dashboard").config["dashboard_name"] == f"{stack.workload}-pipeline-dev"
