"""What AWS publishes to CloudWatch for the services the stacks watch, from each service's own
metrics page (SOURCES): each metric, the sets of dimensions it is published with, and what each
dimension's value is.

CloudWatch finds a metric by namespace, name and the exact set of its dimensions. An alarm that
names one dimension more or fewer than AWS publishes, a metric under another name, or a dimension
valued with the wrong attribute (an ARN where AWS puts a name) reads no data at all: the alarm sits
in INSUFFICIENT_DATA, or, with treat_missing_data=notBreaching, reads OK for ever. Nothing local
shows it: the emulator stores any alarm. Some dimension sets exist only once a feature is on
(FEATURE_GATED). The policy rule `alarms_watch_published_metrics` (policy/metric_rules.py) holds
every alarm and dashboard graph to this table; a metric not in it is a finding until it is added
here with its dimension sets and its page.

Only the metrics the stacks watch (or nearly do) are listed, each with the dimension sets its page
documents for it; a set nobody here would use may be left out, never one the page does not give.
"""
from __future__ import annotations

from collections.abc import Mapping

Dims = frozenset[str]


def _sets(*sets: tuple[str, ...]) -> tuple[Dims, ...]:
    return tuple(frozenset(s) for s in sets)


def _each(metrics: str, sets: tuple[Dims, ...]) -> dict[str, tuple[Dims, ...]]:
    return dict.fromkeys(metrics.split(), sets)


SOURCES: Mapping[str, str] = {
    "AWS/ApiGateway": "API Gateway developer guide, 'Amazon API Gateway dimensions and metrics' (REST APIs)",
    "AWS/ApplicationELB": "ELB user guide, 'CloudWatch metrics for your Application Load Balancer'",
    "AWS/ElastiCache": "ElastiCache user guide, 'Host-Level Metrics' and 'Metrics for Valkey and Redis OSS'",
    "AWS/Firehose": "Firehose developer guide, 'Monitor Amazon Data Firehose with CloudWatch metrics'",
    "AWS/IoT": "AWS IoT developer guide, 'AWS IoT metrics and dimensions'",
    "AWS/Kinesis": "Kinesis Data Streams developer guide, 'Monitor the Amazon Kinesis Data Streams service "
                   "with Amazon CloudWatch' (stream-level and shard-level metrics)",
    "AWS/Logs": "CloudWatch Logs user guide, 'Monitoring with CloudWatch metrics'",
    "AWS/RDS": "RDS user guide, 'Amazon CloudWatch metrics for Amazon RDS' and 'Amazon CloudWatch dimensions "
               "for Amazon RDS'",
    "ECS/ContainerInsights": "CloudWatch user guide, 'Amazon ECS Container Insights metrics'",
}

_KINESIS_STREAM, _KINESIS_SHARD = _sets(("StreamName",)), _sets(("StreamName", "ShardId"))
_ALB_ANY = _sets(("LoadBalancer",), ("LoadBalancer", "AvailabilityZone"), ("LoadBalancer", "TargetGroup"),
                 ("LoadBalancer", "TargetGroup", "AvailabilityZone"))
_ALB_TARGETS = _sets(("LoadBalancer", "TargetGroup"), ("LoadBalancer", "TargetGroup", "AvailabilityZone"))
_ALB_BALANCER = _sets(("LoadBalancer",), ("LoadBalancer", "AvailabilityZone"))
_REST_API = _sets(("ApiName",), ("ApiName", "Stage"), ("ApiName", "Method", "Resource", "Stage"))

PUBLISHED: Mapping[str, Mapping[str, tuple[Dims, ...]]] = {
    "AWS/Kinesis": {
        # Stream-level metrics, always published. The shard-level (enhanced) ones have other names
        # for the same facts (IteratorAgeMilliseconds, not GetRecords.IteratorAgeMilliseconds).
        **_each("GetRecords.IteratorAgeMilliseconds", _KINESIS_STREAM),
        **_each("IncomingBytes IncomingRecords ReadProvisionedThroughputExceeded WriteProvisionedThroughputExceeded",
                _KINESIS_STREAM + _KINESIS_SHARD),
        **_each("IteratorAgeMilliseconds OutgoingBytes OutgoingRecords", _KINESIS_SHARD),
    },
    "AWS/Firehose": _each("DeliveryToS3.Success DeliveryToS3.DataFreshness DeliveryToS3.Records "
                          "DataReadFromKinesisStream.Records KinesisMillisBehindLatest", _sets(("DeliveryStreamName",))),
    "AWS/RDS": _each("CPUUtilization FreeStorageSpace DatabaseConnections",
                     _sets(("DBInstanceIdentifier",), ("DatabaseClass",), ("EngineName",))),
    # Per node: a node of a replication group is a cache cluster of its own (`<group>-001`, ...).
    "AWS/ElastiCache": _each("EngineCPUUtilization DatabaseMemoryUsagePercentage Evictions CacheHitRate "
                             "CurrConnections", _sets(("CacheClusterId",), ("CacheClusterId", "CacheNodeId"))),
    "ECS/ContainerInsights": _each("DesiredTaskCount RunningTaskCount PendingTaskCount",
                                   _sets(("ClusterName", "ServiceName"))),
    # REST APIs are named (ApiName); ApiId is the dimension of HTTP and WebSocket APIs, not these.
    "AWS/ApiGateway": _each("4XXError 5XXError Count Latency IntegrationLatency", _REST_API),
    "AWS/ApplicationELB": {
        **_each("RequestCount TargetResponseTime HTTPCode_Target_4XX_Count HTTPCode_Target_5XX_Count", _ALB_ANY),
        **_each("HTTPCode_ELB_4XX_Count HTTPCode_ELB_5XX_Count", _ALB_BALANCER),
        # Target health exists per target group only: never by LoadBalancer alone.
        **_each("HealthyHostCount UnHealthyHostCount", _ALB_TARGETS),
    },
    "AWS/IoT": {
        **_each("TopicMatch ParseError RuleMessageThrottled RuleNotFound", _sets(("RuleName",))),
        # The ActionType values are not listed on the page (it links the rule actions page, whose API
        # names are lower case: `kinesis`); the stacks use `Kinesis`, unsettled (docs/iot.md, "What the alarms watch").
        **_each("Success Failure", _sets(("RuleName", "ActionType"))),
        # Refused at authentication (the certificate), then at authorization (the policy): two metrics.
        **_each("Connection.AuthNError Connect.AuthError PublishIn.AuthError Connect.Success PublishIn.Success",
                _sets(("Protocol",))),
    },
    "AWS/Logs": _each("IncomingLogEvents IncomingBytes", _sets(("LogGroupName",))),
}

# Dimension sets that exist only once a feature is on, and that feature's name (policy/metric_rules.py
# checks each one on the resource the alarm's dimensions name). None: every set of the namespace.
SHARD_LEVEL_METRICS, CONTAINER_INSIGHTS, DETAILED_API_METRICS = (
    "the stream's shard-level metrics (shard_level_metrics)", "the cluster's Container Insights (containerInsights)",
    "the stage's detailed CloudWatch metrics (method settings metrics_enabled)")
FEATURE_GATED: Mapping[tuple[str, Dims | None], str] = {
    ("AWS/Kinesis", _KINESIS_SHARD[0]): SHARD_LEVEL_METRICS,
    ("ECS/ContainerInsights", None): CONTAINER_INSIGHTS,
    ("AWS/ApiGateway", _REST_API[2]): DETAILED_API_METRICS,
}

# What each dimension's value is, for the resource types that carry it: the attribute a reference
# must read (an ECS service's `id` is its ARN, a DB instance's `id` its resource id, an ALB's `arn`
# not its ARN suffix). A replication group is named by its member clusters: `<group id>-NNN`.
DIMENSION_VALUES: Mapping[str, Mapping[str, str]] = {
    "StreamName": {"aws_kinesis_stream": "name"},
    "DeliveryStreamName": {"aws_kinesis_firehose_delivery_stream": "name"},
    "DBInstanceIdentifier": {"aws_db_instance": "identifier"},
    "CacheClusterId": {"aws_elasticache_cluster": "cluster_id", "aws_elasticache_replication_group": "replication_group_id"},
    "ClusterName": {"aws_ecs_cluster": "name"},
    "ServiceName": {"aws_ecs_service": "name"},
    "ApiName": {"aws_api_gateway_rest_api": "name"},
    "Stage": {"aws_api_gateway_stage": "stage_name"},
    "LoadBalancer": {"aws_lb": "arn_suffix"},
    "TargetGroup": {"aws_lb_target_group": "arn_suffix"},
    "LogGroupName": {"aws_cloudwatch_log_group": "name"},
    "RuleName": {"aws_iot_topic_rule": "name"},
}
MEMBER_CLUSTER_DIGITS = 3  # `<replication group id>-001`: a cluster-mode-disabled group's members

# The processor's embedded-metric-format lines declare one empty dimension set ("Dimensions": [[]],
# processor/metrics.py): its metrics exist without dimensions only.
EMF_DIMENSION_SETS: tuple[Dims, ...] = _sets(())
