"""Alarms on every tier, an encrypted topic they notify, and one dashboard per stack."""
from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

from cdktf_cdktf_provider_aws.cloudwatch_dashboard import CloudwatchDashboard
from cdktf_cdktf_provider_aws.cloudwatch_metric_alarm import (
    CloudwatchMetricAlarm,
    CloudwatchMetricAlarmMetricQuery,
    CloudwatchMetricAlarmMetricQueryMetric,
)
from cdktf_cdktf_provider_aws.sns_topic import SnsTopic
from constructs import Construct

from pipeline_lib.archive import Archive
from pipeline_lib.cache import Cache
from pipeline_lib.data_stream import DataStream
from pipeline_lib.database import Database
from pipeline_lib.encryption_key import EncryptionKey
from pipeline_lib.naming import Naming
from pipeline_lib.processor_service import ProcessorService
from pipeline_lib.settings import AlarmConfig

FIVE_MINUTES = 300


@dataclass(frozen=True)
class MetricAlarmSpec:
    """One alarm on one metric; the construct fills in the topic and the name."""

    purpose: str
    description: str
    namespace: str
    metric_name: str
    dimensions: dict[str, str]
    statistic: str
    comparison: str
    threshold: float
    evaluation_periods: int = 3
    treat_missing_data: str = "missing"


class Monitoring(Construct):
    def __init__(
        self,
        scope: Construct,
        id_: str,
        *,
        naming: Naming,
        region: str,
        key: EncryptionKey,
        stream: DataStream,
        service: ProcessorService,
        database: Database,
        cache: Cache,
        archive: Archive,
        thresholds: AlarmConfig,
        cache_node_count: int,
    ) -> None:
        super().__init__(scope, id_)
        self._naming = naming
        self.topic = SnsTopic(self, "alerts", name=naming.name("alerts"), kms_master_key_id=key.arn)
        db_id = {"DBInstanceIdentifier": database.instance.identifier}
        stream_dims = {"StreamName": stream.name}
        processor = service.metric_namespace
        specs = [
            MetricAlarmSpec("stream-iterator-age", "Records wait too long in the stream: the processor lags",
                            "AWS/Kinesis", "GetRecords.IteratorAgeMilliseconds", stream_dims, "Maximum",
                            "GreaterThanThreshold", thresholds.iterator_age_ms),
            MetricAlarmSpec("stream-write-throttled", "Producers are throttled: add shards",
                            "AWS/Kinesis", "WriteProvisionedThroughputExceeded", stream_dims, "Sum",
                            "GreaterThanThreshold", 0, 1, "notBreaching"),
            MetricAlarmSpec("stream-read-throttled", "Consumers are throttled on GetRecords",
                            "AWS/Kinesis", "ReadProvisionedThroughputExceeded", stream_dims, "Sum",
                            "GreaterThanThreshold", 0, 3, "notBreaching"),
            MetricAlarmSpec("processor-errors", "The processor reports failed batches",
                            processor, "ProcessingErrors", {}, "Sum", "GreaterThanThreshold",
                            thresholds.processor_errors_per_5min, 1, "notBreaching"),
            MetricAlarmSpec("processor-dead-letters", "Poison records were dead-lettered",
                            processor, "DeadLetters", {}, "Sum", "GreaterThanOrEqualToThreshold",
                            thresholds.dead_letters_per_5min, 1, "notBreaching"),
            MetricAlarmSpec("db-cpu", "PostgreSQL CPU is high", "AWS/RDS", "CPUUtilization", db_id, "Average",
                            "GreaterThanThreshold", thresholds.db_cpu_percent),
            MetricAlarmSpec("db-free-storage", "PostgreSQL is running out of storage", "AWS/RDS",
                            "FreeStorageSpace", db_id, "Minimum", "LessThanThreshold",
                            thresholds.db_free_storage_bytes, 1),
            MetricAlarmSpec("db-connections", "PostgreSQL connections near the limit", "AWS/RDS",
                            "DatabaseConnections", db_id, "Maximum", "GreaterThanThreshold",
                            thresholds.db_connections),
            MetricAlarmSpec("archive-delivery", "Firehose failed to deliver records to the archive",
                            "AWS/Firehose", "DeliveryToS3.Success", {"DeliveryStreamName": archive.firehose.name},
                            "Minimum", "LessThanThreshold", 1, 3, "notBreaching"),
        ]
        for node in range(1, cache_node_count + 1):
            node_dims = {"CacheClusterId": f"{cache.replication_group.replication_group_id}-{node:03d}"}
            specs += [
                MetricAlarmSpec(f"cache-{node}-cpu", f"Redis node {node}: engine CPU is high", "AWS/ElastiCache",
                                "EngineCPUUtilization", node_dims, "Average", "GreaterThanThreshold",
                                thresholds.cache_cpu_percent),
                MetricAlarmSpec(f"cache-{node}-memory", f"Redis node {node}: memory nearly full", "AWS/ElastiCache",
                                "DatabaseMemoryUsagePercentage", node_dims, "Maximum", "GreaterThanThreshold",
                                thresholds.cache_memory_percent),
                MetricAlarmSpec(f"cache-{node}-evictions", f"Redis node {node}: keys are being evicted",
                                "AWS/ElastiCache", "Evictions", node_dims, "Sum", "GreaterThanThreshold",
                                thresholds.cache_evictions_per_5min, 1, "notBreaching"),
            ]
        self.alarms = {spec.purpose: self._metric_alarm(spec) for spec in specs}
        self.alarms["processor-tasks-below-desired"] = self._tasks_below_desired(service)
        self.dashboard = CloudwatchDashboard(
            self, "dashboard", dashboard_name=naming.name("pipeline"),
            dashboard_body=json.dumps(self._dashboard_body(region, stream, service, database, cache, archive)),
        )

    def _metric_alarm(self, spec: MetricAlarmSpec) -> CloudwatchMetricAlarm:
        return CloudwatchMetricAlarm(
            self,
            spec.purpose,
            alarm_name=self._naming.name(spec.purpose),
            alarm_description=spec.description,
            namespace=spec.namespace,
            metric_name=spec.metric_name,
            dimensions=spec.dimensions or None,
            statistic=spec.statistic,
            period=FIVE_MINUTES,
            evaluation_periods=spec.evaluation_periods,
            comparison_operator=spec.comparison,
            threshold=spec.threshold,
            treat_missing_data=spec.treat_missing_data,
            alarm_actions=[self.topic.arn],
            ok_actions=[self.topic.arn],
        )

    def _tasks_below_desired(self, service: ProcessorService) -> CloudwatchMetricAlarm:
        dims = {"ClusterName": service.cluster.name, "ServiceName": service.service.name}

        def metric(query_id: str, name: str) -> CloudwatchMetricAlarmMetricQuery:
            return CloudwatchMetricAlarmMetricQuery(
                id=query_id,
                metric=CloudwatchMetricAlarmMetricQueryMetric(
                    namespace="ECS/ContainerInsights", metric_name=name, dimensions=dims, period=60, stat="Average"
                ),
            )

        return CloudwatchMetricAlarm(
            self,
            "processor-tasks-below-desired",
            alarm_name=self._naming.name("processor-tasks-below-desired"),
            alarm_description="Fewer processor tasks run than the service wants (crash loop or no image)",
            comparison_operator="GreaterThanThreshold",
            threshold=0,
            evaluation_periods=5,
            treat_missing_data="breaching",  # no metrics at all means no tasks at all
            metric_query=[
                metric("desired", "DesiredTaskCount"),
                metric("running", "RunningTaskCount"),
                CloudwatchMetricAlarmMetricQuery(
                    id="missing", expression="desired - running", label="tasks missing", return_data=True
                ),
            ],
            alarm_actions=[self.topic.arn],
            ok_actions=[self.topic.arn],
        )

    @staticmethod
    def _dashboard_body(region: str, stream: DataStream, service: ProcessorService, database: Database,
                        cache: Cache, archive: Archive) -> dict[str, Any]:
        def widget(title: str, metrics: list[list[Any]], x: int, y: int) -> dict[str, Any]:
            return {"type": "metric", "x": x, "y": y, "width": 12, "height": 6,
                    "properties": {"title": title, "region": region, "stat": "Sum", "period": 60,
                                   "metrics": metrics}}

        ns = service.metric_namespace
        return {"widgets": [
            widget("Stream: records in / lag (ms)", [
                ["AWS/Kinesis", "IncomingRecords", "StreamName", stream.name],
                ["AWS/Kinesis", "GetRecords.IteratorAgeMilliseconds", "StreamName", stream.name,
                 {"stat": "Maximum", "yAxis": "right"}]], 0, 0),
            widget("Processor: records, errors, dead letters", [
                [ns, "RecordsProcessed"], [ns, "ProcessingErrors"], [ns, "DeadLetters"], [ns, "Anomalies"]], 12, 0),
            widget("Processor: batch latency and lag (ms)", [
                [ns, "BatchLatencyMs", {"stat": "p99"}], [ns, "MillisBehindLatest", {"stat": "Maximum"}]], 0, 6),
            widget("Tasks", [
                ["ECS/ContainerInsights", "RunningTaskCount", "ClusterName", service.cluster.name,
                 "ServiceName", service.service.name, {"stat": "Average"}],
                ["ECS/ContainerInsights", "DesiredTaskCount", "ClusterName", service.cluster.name,
                 "ServiceName", service.service.name, {"stat": "Average"}]], 12, 6),
            widget("PostgreSQL", [
                ["AWS/RDS", "CPUUtilization", "DBInstanceIdentifier", database.instance.identifier, {"stat": "Average"}],
                ["AWS/RDS", "DatabaseConnections", "DBInstanceIdentifier", database.instance.identifier,
                 {"stat": "Maximum", "yAxis": "right"}]], 0, 12),
            widget("Redis", [
                ["AWS/ElastiCache", "EngineCPUUtilization", "CacheClusterId",
                 f"{cache.replication_group.replication_group_id}-001", {"stat": "Average"}],
                ["AWS/ElastiCache", "CacheHitRate", "CacheClusterId",
                 f"{cache.replication_group.replication_group_id}-001", {"stat": "Average"}]], 12, 12),
            widget("Archive delivery", [
                ["AWS/Firehose", "DeliveryToS3.Records", "DeliveryStreamName", archive.firehose.name],
                ["AWS/Firehose", "DeliveryToS3.Success", "DeliveryStreamName", archive.firehose.name,
                 {"stat": "Average", "yAxis": "right"}]], 0, 18),
        ]}
