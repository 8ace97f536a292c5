"""Policy rule `alarms_watch_published_metrics`: every alarm and graph reads a metric someone publishes,
by the dimensions and values it is published with (policy/published_metrics.py, policy/metric_rules.py)."""
from __future__ import annotations

import copy
import io
import json
from collections.abc import Callable
from typing import Any

import pytest

from policy.metric_rules import alarms_watch_published_metrics
from policy.published_metrics import EMF_DIMENSION_SETS, PUBLISHED, SOURCES
from policy.stack_json import StackJson
from processor.metrics import Metrics


def mutated(stack: StackJson, mutate: Callable[[dict[str, Any]], None]) -> StackJson:
    document = copy.deepcopy(stack.document)
    mutate(document)
    return StackJson(stack.stack_id, document)


def alarm(document: dict[str, Any], purpose: str) -> dict[str, Any]:
    (found,) = [a for a in document["resource"]["aws_cloudwatch_metric_alarm"].values()
                if a["alarm_name"].endswith(f"-{purpose}-dev")]
    return found


def messages(stack: StackJson) -> list[str]:
    return [f.message for f in alarms_watch_published_metrics(stack)]


def test_every_alarm_and_graph_of_every_environment_reads_a_published_metric(
        dev_stacks: dict[str, StackJson], prod_stacks: dict[str, StackJson], exec_stacks: dict[str, StackJson]) -> None:
    for stack in [*dev_stacks.values(), *prod_stacks.values(), *exec_stacks.values()]:
        assert messages(stack) == [], stack.stack_id


def test_every_namespace_of_the_table_names_the_page_it_comes_from() -> None:
    assert set(PUBLISHED) == set(SOURCES)


def test_target_health_alarmed_by_the_load_balancer_alone_is_found(retail: StackJson) -> None:
    bad = mutated(retail, lambda d: alarm(d, "catalog-api-no-healthy-task")["dimensions"].pop("TargetGroup"))
    assert messages(bad) == ["AWS/ApplicationELB HealthyHostCount by ['LoadBalancer']: published only by "
                             "['LoadBalancer', 'TargetGroup'] or ['AvailabilityZone', 'LoadBalancer', 'TargetGroup']"]


def test_a_load_balancer_named_by_its_arn_rather_than_its_arn_suffix_is_found(retail: StackJson) -> None:
    def by_arn(document: dict[str, Any]) -> None:
        dims = alarm(document, "catalog-api-alb-5xx")["dimensions"]
        dims["LoadBalancer"] = dims["LoadBalancer"].replace(".arn_suffix}", ".arn}")
    assert messages(mutated(retail, by_arn)) == [
        "LoadBalancer reads aws_lb's arn; AWS publishes it under the arn_suffix"]


def test_a_redis_alarm_keyed_by_the_replication_group_rather_than_a_node_is_found(retail: StackJson) -> None:
    def by_group(document: dict[str, Any]) -> None:
        dims = alarm(document, "cache-1-cpu")["dimensions"]
        dims["CacheClusterId"] = dims["CacheClusterId"].removesuffix("-001")
    (message,) = messages(mutated(retail, by_group))
    assert message.startswith("CacheClusterId '${aws_elasticache_replication_group.") and message.endswith(
        "is no member of the replication group: ElastiCache publishes per node, as <group id>-001 to -001")


def test_a_redis_node_beyond_the_groups_members_is_found(retail: StackJson) -> None:
    def second(document: dict[str, Any]) -> None:
        dims = alarm(document, "cache-1-memory")["dimensions"]
        dims["CacheClusterId"] = dims["CacheClusterId"].replace("-001", "-002")  # dev has one node
    assert len(messages(mutated(retail, second))) == 1


def test_a_database_alarm_keyed_by_the_instance_resource_id_is_found(retail: StackJson) -> None:
    def by_id(document: dict[str, Any]) -> None:
        dims = alarm(document, "db-cpu")["dimensions"]
        dims["DBInstanceIdentifier"] = dims["DBInstanceIdentifier"].replace(".identifier}", ".id}")
    assert messages(mutated(retail, by_id)) == [
        "DBInstanceIdentifier reads aws_db_instance's id; AWS publishes it under the identifier"]


def test_the_shard_level_iterator_age_named_on_the_stream_is_found(retail: StackJson) -> None:
    bad = mutated(retail, lambda d: alarm(d, "stream-iterator-age").update(metric_name="IteratorAgeMilliseconds"))
    assert messages(bad) == ["AWS/Kinesis IteratorAgeMilliseconds by ['StreamName']: published only by "
                             "['ShardId', 'StreamName']"]


def test_a_per_shard_alarm_needs_the_streams_shard_level_metrics(retail: StackJson) -> None:
    def per_shard(document: dict[str, Any]) -> None:
        alarm(document, "stream-write-throttled")["dimensions"]["ShardId"] = "shardId-000000000000"
    assert messages(mutated(retail, per_shard)) == [
        "AWS/Kinesis WriteProvisionedThroughputExceeded by ['ShardId', 'StreamName'] exists only with the "
        "stream's shard-level metrics (shard_level_metrics), which is off"]

    def enabled(document: dict[str, Any]) -> None:
        per_shard(document)
        next(iter(document["resource"]["aws_kinesis_stream"].values()))["shard_level_metrics"] = [
            "WriteProvisionedThroughputExceeded"]
    assert messages(mutated(retail, enabled)) == []


def test_container_insights_metrics_on_a_cluster_without_it_are_found_in_alarms_and_graphs(retail: StackJson) -> None:
    bad = mutated(retail, lambda d: next(iter(d["resource"]["aws_ecs_cluster"].values())).update(setting=[]))
    found = list(alarms_watch_published_metrics(bad))
    assert {f.message.split(" by ")[0] for f in found} == {"ECS/ContainerInsights DesiredTaskCount",
                                                           "ECS/ContainerInsights RunningTaskCount"}
    assert sorted({f.resource.split(" ")[0] for f in found}) == [
        "retail-dev/monitoring/dashboard", "retail-dev/monitoring/processor-tasks-below-desired"]
    assert all(f.message.endswith("exists only with the cluster's Container Insights (containerInsights), "
                                  "which is off") for f in found)


def test_per_method_api_metrics_need_the_stages_detailed_metrics(retail: StackJson) -> None:
    def per_method(document: dict[str, Any], detailed: bool) -> None:
        alarm(document, "supplier-api-5xx")["dimensions"].update(Method="POST", Resource="/v1/updates")
        next(iter(document["resource"]["aws_api_gateway_method_settings"].values()))["settings"][
            "metrics_enabled"] = detailed
    assert messages(mutated(retail, lambda d: per_method(d, False))) == [
        "AWS/ApiGateway 5XXError by ['ApiName', 'Method', 'Resource', 'Stage'] exists only with the stage's "
        "detailed CloudWatch metrics (method settings metrics_enabled), which is off"]
    assert messages(mutated(retail, lambda d: per_method(d, True))) == []


def test_a_rest_api_alarm_keyed_by_api_id_is_found(retail: StackJson) -> None:
    def by_id(document: dict[str, Any]) -> None:
        dims = alarm(document, "supplier-api-latency")["dimensions"]
        dims["ApiId"] = dims.pop("ApiName").replace(".name}", ".id}")
    assert messages(mutated(retail, by_id)) == [
        "AWS/ApiGateway Latency by ['ApiId', 'Stage']: published only by ['ApiName'] or ['ApiName', 'Stage'] or "
        "['ApiName', 'Method', 'Resource', 'Stage']"]


def test_a_dashboard_graph_by_dimensions_aws_does_not_publish_is_found(retail: StackJson) -> None:
    def by_group(document: dict[str, Any]) -> None:
        dashboard = next(iter(document["resource"]["aws_cloudwatch_dashboard"].values()))
        body = json.loads(dashboard["dashboard_body"])
        (redis,) = [w for w in body["widgets"] if w["properties"]["title"] == "Redis"]
        redis["properties"]["metrics"][1][2] = "ReplicationGroupId"
        dashboard["dashboard_body"] = json.dumps(body)
    (found,) = alarms_watch_published_metrics(mutated(retail, by_group))
    assert found.resource == "retail-dev/monitoring/dashboard ('Redis')"
    assert found.message == ("AWS/ElastiCache CacheHitRate by ['ReplicationGroupId']: published only by "
                             "['CacheClusterId'] or ['CacheClusterId', 'CacheNodeId']")


def test_an_alarm_naming_a_unit_is_found(retail: StackJson) -> None:
    bad = mutated(retail, lambda d: alarm(d, "archive-freshness").update(unit="Milliseconds"))  # published in Seconds
    assert messages(bad) == ["names the unit 'Milliseconds': one the metric is not published with matches no data; "
                             "leave it out"]


def test_dashboard_rows_written_in_cloudwatchs_shorthand_are_read_as_cloudwatch_reads_them(retail: StackJson) -> None:
    def shorthand(document: dict[str, Any], last: list[Any]) -> None:
        dashboard = next(iter(document["resource"]["aws_cloudwatch_dashboard"].values()))
        body = json.loads(dashboard["dashboard_body"])
        (redis,) = [w for w in body["widgets"] if w["properties"]["title"] == "Redis"]
        redis["properties"]["metrics"][1:] = [last, [{"expression": "m1 * 2", "id": "e1"}]]
        dashboard["dashboard_body"] = json.dumps(body)
    assert messages(mutated(retail, lambda d: shorthand(d, [".", "Evictions", ".", "."]))) == []
    assert messages(mutated(retail, lambda d: shorthand(d, ["...", {"stat": "Maximum"}]))) == []
    assert messages(mutated(retail, lambda d: shorthand(d, [".", "Evictions", "ReplicationGroupId", "."]))) == [
        "AWS/ElastiCache Evictions by ['ReplicationGroupId']: published only by ['CacheClusterId'] or "
        "['CacheClusterId', 'CacheNodeId']"]


def test_a_metric_of_a_namespace_nobody_publishes_into_is_found(retail: StackJson) -> None:
    bad = mutated(retail, lambda d: alarm(d, "db-cpu").update(namespace="AWS/Backup"))
    assert messages(bad) == ["AWS/Backup CPUUtilization: nothing publishes into AWS/Backup (no AWS namespace of "
                             "policy/published_metrics.py, no log metric filter, not the processor's)"]


def test_a_processor_alarm_by_a_dimension_its_lines_do_not_declare_is_found(retail: StackJson) -> None:
    bad = mutated(retail, lambda d: alarm(d, "processor-lag").update(dimensions={"shard": "shardId-000000000000"}))
    assert messages(bad) == ["Pipeline/retail-dev MillisBehindLatest by ['shard']: published only by []"]


def test_a_log_metric_filter_metric_is_read_by_the_filters_own_dimensions(retail: StackJson) -> None:
    bad = mutated(retail, lambda d: alarm(d, "supplier-api-throttled").update(dimensions={"ApiKey": "k"}))
    assert messages(bad) == ["Pipeline/retail-dev SupplierRequestsThrottled by ['ApiKey']: published only by []"]


@pytest.mark.parametrize("dimensions", [{}, {"shard": "shardId-000000000000"}])
def test_the_processors_lines_declare_exactly_the_dimension_sets_the_policy_expects(dimensions: dict[str, str]) -> None:
    # what CloudWatch Logs makes metrics of: the line's declared dimension sets, whatever else the line carries
    out = io.StringIO()
    Metrics("Pipeline/retail-dev", "retail", out).emit({"MillisBehindLatest": 12.0}, **dimensions)
    (directive,) = json.loads(out.getvalue())["_aws"]["CloudWatchMetrics"]
    assert [frozenset(s) for s in directive["Dimensions"]] == list(EMF_DIMENSION_SETS)
