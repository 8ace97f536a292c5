from __future__ import annotations

from pathlib import Path

from main import build_app
from policy.stack_json import Resource, StackJson, load_app
from stacks.config import build_config
from tests.helpers import only, ref

# The scaling policies' own alarms: they act on the service, they page nobody.
SCALING_ALARMS = {"processor-lag-scale-out", "processor-lag-scale-in"}


def paging_alarms(stack: StackJson) -> list[Resource]:
    return [a for a in stack.resources("aws_cloudwatch_metric_alarm")
            if not any("aws_appautoscaling_policy" in action for action in a.config["alarm_actions"])]


def alerts_topic(stack: StackJson) -> Resource:
    (topic,) = [t for t in stack.resources("aws_sns_topic") if t.config["name"] == f"{stack.workload}-alerts-dev"]
    return topic


def test_every_topic_is_encrypted_with_the_cmk(stack: StackJson) -> None:
    topics = list(stack.resources("aws_sns_topic"))
    assert len(topics) == (2 if stack.workload == "factory" else 1)  # alerts; incidents in the factory
    assert all(t.config["kms_master_key_id"] == ref(only(stack, "aws_kms_key"), "arn") for t in topics)


def test_every_spec_a_watched_construct_gives_is_one_paging_alarm_and_nothing_else_pages(tmp_path: Path) -> None:
    # Each construct's own tests say which alarms it gives (test_data_stream.py, test_cache.py, ...).
    app = build_app(outdir=str(tmp_path), suffix="dev", alert_subscriptions="", incident_subscriptions="",
                    state_bucket="")
    app.synth()
    stacks = {s.stack_id: s for s in load_app(tmp_path)}
    for workload_stack in app.node.children:
        monitoring = workload_stack.node.find_child("monitoring")
        config = build_config(workload_stack.node.id.split("-")[0], "dev", "", "")
        specs = [spec.purpose for part in monitoring.watched for spec in part.alarms(config.alarms)]
        stack = stacks[workload_stack.node.id]
        assert sorted(specs) == sorted(set(specs)) == sorted(monitoring_alarm_purposes(stack))
        scaling = {r.config["alarm_name"] for r in stack.resources("aws_cloudwatch_metric_alarm")} - {
            r.config["alarm_name"] for r in paging_alarms(stack)}
        assert scaling == {f"{stack.workload}-{purpose}-dev" for purpose in SCALING_ALARMS}


def monitoring_alarm_purposes(stack: StackJson) -> list[str]:
    return [r.config["alarm_name"].removeprefix(f"{stack.workload}-").removesuffix("-dev") for r in paging_alarms(stack)]


def test_every_alarm_but_the_scaling_policies_own_notifies_the_alerts_topic(stack: StackJson) -> None:
    topic = ref(alerts_topic(stack), "arn")
    for alarm in paging_alarms(stack):
        assert alarm.config["alarm_actions"] == [topic] and alarm.config["ok_actions"] == [topic], alarm.path


def test_running_tasks_below_desired_is_computed_from_container_insights(stack: StackJson) -> None:
    alarm = next(r.config for r in stack.resources("aws_cloudwatch_metric_alarm")
                 if r.config["alarm_name"].endswith("tasks-below-desired-dev"))
    expression = [q for q in alarm["metric_query"] if "expression" in q]
    assert expression[0]["expression"] == "desired - running"
    assert alarm["treat_missing_data"] == "breaching"


def test_processor_alarms_watch_the_stacks_custom_namespace(stack: StackJson) -> None:
    alarms = [r.config for r in paging_alarms(stack)
              if r.config["alarm_name"].startswith(f"{stack.workload}-processor-") and "namespace" in r.config]
    assert {a["metric_name"] for a in alarms} == {"ProcessingErrors", "DeadLetters", "MillisBehindLatest"}
    outbox = [r.config for r in stack.resources("aws_cloudwatch_metric_alarm")
              if r.config["alarm_name"].startswith(f"{stack.workload}-incident-outbox")]
    assert [(a["namespace"], a["metric_name"], a["statistic"]) for a in outbox] == (
        [("Pipeline/factory-dev", "IncidentOutboxOldestAgeS", "Maximum")] if stack.workload == "factory" else [])
    assert {a["namespace"] for a in alarms} == {f"Pipeline/{stack.workload}-dev"}


def test_one_dashboard_per_stack(stack: StackJson) -> None:
    assert only(stack, "aws_cloudwatch_dashboard").config["dashboard_name"] == f"{stack.workload}-pipeline-dev"


def test_production_alarms_reach_the_configured_subscribers(prod_stacks: dict[str, StackJson]) -> None:
    stack = prod_stacks["retail-prod"]
    topic = ref(only(stack, "aws_sns_topic"), "arn")
    subscriptions = sorted((s.config["protocol"], s.config["endpoint"]) for s in stack.resources("aws_sns_topic_subscription"))
    (caller,) = stack.data_sources("aws_caller_identity")
    (partition,) = stack.data_sources("aws_partition")
    assert subscriptions == [
        ("email", "platform-oncall@example.com"),
        ("sqs", f"arn:${{data.aws_partition.{partition.name}.partition}}:sqs:us-east-1:"
                f"${{data.aws_caller_identity.{caller.name}.account_id}}:ops-alerts-prod"),
    ]
    assert all(s.config["topic_arn"] == topic for s in stack.resources("aws_sns_topic_subscription"))


def test_a_dev_stack_without_subscribers_synthesizes_with_none(stack: StackJson) -> None:
    assert list(stack.resources("aws_sns_topic_subscription")) == []


def test_every_redis_node_has_its_own_alarms_named_by_the_cache(stack: StackJson, prod_stacks: dict[str, StackJson]) -> None:
    for each, nodes in ((stack, 1), (prod_stacks[f"{stack.workload}-prod"], 2)):
        group = ref(only(each, "aws_elasticache_replication_group"), "replication_group_id")
        dims = sorted(r.config["dimensions"]["CacheClusterId"] for r in each.resources("aws_cloudwatch_metric_alarm")
                      if r.config.get("namespace") == "AWS/ElastiCache")
        assert dims == sorted(f"{group}-{node:03d}" for node in range(1, nodes + 1) for _ in range(3))


def _watched(stack: StackJson) -> list[tuple[str, str]]:
    found = []
    for alarm in stack.resources("aws_cloudwatch_metric_alarm"):
        if "metric_name" in alarm.config:
            found.append((alarm.config["namespace"], alarm.config["metric_name"]))
        for query in alarm.config.get("metric_query") or []:
            metric = query.get("metric")
            if metric:
                found.append((metric["namespace"], metric["metric_name"]))
    return found


def _not_emitted(stack: StackJson) -> list[str]:
    """What an alarm or a graph reads in the processor's namespace that neither the processor emits
    (processor.metrics.EMITTED) nor a log metric filter of the stack publishes. The dimensions, and every
    metric of AWS's namespaces, are the policy rule alarms_watch_published_metrics's (test_published_metrics.py)."""
    import json

    from processor.metrics import EMITTED, namespace_for

    own = namespace_for(stack.workload, stack.suffix)
    filtered = {f.config["metric_transformation"]["name"] for f in stack.resources("aws_cloudwatch_log_metric_filter")
                if f.config["metric_transformation"]["namespace"] == own}
    body = json.loads(only(stack, "aws_cloudwatch_dashboard").config["dashboard_body"])
    graphed = [(m[0], m[1]) for w in body["widgets"] for m in w["properties"]["metrics"]]
    return [metric for namespace, metric in [*_watched(stack), *graphed]
            if namespace == own and metric not in EMITTED and metric not in filtered]


def test_every_alarm_and_graph_on_the_processors_namespace_reads_a_metric_it_emits(
        dev_stacks: dict[str, StackJson], prod_stacks: dict[str, StackJson]) -> None:
    from processor.metrics import namespace_for

    for stack in [*dev_stacks.values(), *prod_stacks.values()]:
        assert _not_emitted(stack) == [], stack.stack_id
        own = [metric for namespace, metric in _watched(stack) if namespace == namespace_for(stack.workload, stack.suffix)]
        assert {"ProcessingErrors", "DeadLetters", "MillisBehindLatest"} <= set(own), stack.stack_id


def test_an_alarm_on_a_metric_the_processor_does_not_emit_is_found(retail: StackJson) -> None:
    import copy

    document = copy.deepcopy(retail.document)
    (errors,) = [a for a in document["resource"]["aws_cloudwatch_metric_alarm"].values()
                 if a["alarm_name"] == "retail-processor-errors-dev"]
    errors["metric_name"] = "Errors"
    assert _not_emitted(StackJson(retail.stack_id, document)) == ["Errors"]


def test_the_task_emits_into_the_namespace_its_alarms_watch(stack: StackJson) -> None:
    from processor.metrics import namespace_for
    from tests.helpers import by_path

    task = by_path(stack, "aws_ecs_task_definition", "processor/task")
    (container,) = __import__("json").loads(task.config["container_definitions"])
    env = {e["name"]: e["value"] for e in container["environment"]}
    assert env["METRICS_NAMESPACE"] == namespace_for(stack.workload, "dev")


def test_a_metric_outside_the_registry_is_refused_at_emit() -> None:
    import io

    import pytest

    from processor.metrics import Metrics

    out = io.StringIO()
    Metrics("Pipeline/retail-dev", "retail", out).emit({"DeadLetters": 1})
    assert '"DeadLetters": 1' in out.getvalue()
    with pytest.raises(ValueError, match=r"\['DeadLeters'\] are not in processor.metrics.EMITTED"):
        Metrics("Pipeline/retail-dev", "retail", out).emit({"DeadLeters": 1})


def _alarm(stack: StackJson, purpose: str) -> dict:
    (alarm,) = [r.config for r in stack.resources("aws_cloudwatch_metric_alarm")
                if r.config["alarm_name"] == f"{stack.workload}-{purpose}-dev"]
    return alarm


def test_records_arriving_on_the_stream_while_firehose_reads_none_raise_an_alarm(stack: StackJson) -> None:
    alarm = _alarm(stack, "archive-not-reading")
    metrics = {q["id"]: q["metric"] for q in alarm["metric_query"] if "metric" in q}
    (expression,) = [q for q in alarm["metric_query"] if "expression" in q]
    stream = ref(only(stack, "aws_kinesis_stream"), "name")
    firehose = ref(only(stack, "aws_kinesis_firehose_delivery_stream"), "name")
    assert (metrics["incoming"]["namespace"], metrics["incoming"]["metric_name"], metrics["incoming"]["dimensions"],
            metrics["incoming"]["stat"]) == ("AWS/Kinesis", "IncomingRecords", {"StreamName": stream}, "Sum")
    assert (metrics["read"]["namespace"], metrics["read"]["metric_name"], metrics["read"]["dimensions"]) == (
        "AWS/Firehose", "DataReadFromKinesisStream.Records", {"DeliveryStreamName": firehose})
    # a Firehose that reads nothing publishes nothing: the missing reads count as none
    assert expression["expression"] == "IF(incoming > 0 AND FILL(read, 0) == 0, 1, 0)"
    assert alarm["comparison_operator"] == "GreaterThanOrEqualToThreshold" and alarm["threshold"] == 1


def test_the_archive_is_watched_for_read_lag_and_data_freshness(stack: StackJson) -> None:
    lag, freshness = _alarm(stack, "archive-read-lag"), _alarm(stack, "archive-freshness")
    assert (lag["metric_name"], lag["statistic"]) == ("KinesisMillisBehindLatest", "Maximum")
    assert (freshness["metric_name"], freshness["statistic"]) == ("DeliveryToS3.DataFreshness", "Maximum")
    buffering = only(stack, "aws_kinesis_firehose_delivery_stream").config["extended_s3_configuration"]["buffering_interval"]
    assert freshness["threshold"] > buffering  # a record waiting for its buffer to fill is not late


def test_the_dashboard_lays_each_watched_constructs_graphs_out_two_a_row_in_order(stack: StackJson) -> None:
    import json

    body = json.loads(only(stack, "aws_cloudwatch_dashboard").config["dashboard_body"])
    places = [(w["x"], w["y"], w["width"], w["height"]) for w in body["widgets"]]
    assert places == [(i % 2 * 12, i // 2 * 6, 12, 6) for i in range(len(places))]
    titles = [w["properties"]["title"] for w in body["widgets"]]
    assert titles[0].startswith("Stream") and len(set(titles)) == len(titles)  # the stack's order, stream first
    assert {w["properties"]["region"] for w in body["widgets"]} == {stack.provider["region"]}
