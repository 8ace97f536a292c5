"""The encrypted alerts topic, who it reaches, an alarm for every spec the constructs give,
and one dashboard per stack."""
from __future__ import annotations

import json
from collections.abc import Sequence
from typing import Any

from cdktf_cdktf_provider_aws.cloudwatch_dashboard import CloudwatchDashboard
from cdktf_cdktf_provider_aws.cloudwatch_metric_alarm import (
    CloudwatchMetricAlarm,
    CloudwatchMetricAlarmMetricQuery,
    CloudwatchMetricAlarmMetricQueryMetric,
)
from cdktf_cdktf_provider_aws.sns_topic import SnsTopic
from constructs import Construct

from pipeline_lib.account import AccountContext
from pipeline_lib.alarms import AlarmSpec, MathAlarmSpec, MetricAlarmSpec, Watched
from pipeline_lib.archive import Archive
from pipeline_lib.cache import Cache
from pipeline_lib.data_stream import DataStream
from pipeline_lib.database import Database
from pipeline_lib.encryption_key import EncryptionKey
from pipeline_lib.naming import Naming
from pipeline_lib.processor_service import ProcessorService
from pipeline_lib.settings import AlarmConfig, AlertSubscription
from pipeline_lib.subscriptions import subscribe
from processor import metrics as m  # the names the processor emits


class Monitoring(Construct):
    def __init__(
        self,
        scope: Construct,
        id_: str,
        *,
        naming: Naming,
        account: AccountContext,
        key: EncryptionKey,
        stream: DataStream,
        service: ProcessorService,
        database: Database,
        cache: Cache,
        archive: Archive,
        thresholds: AlarmConfig,
        subscriptions: Sequence[AlertSubscription] = (),
    ) -> None:
        super().__init__(scope, id_)
        self._naming = naming
        self._account = account
        self.topic = SnsTopic(self, "alerts", name=naming.name("alerts"), kms_master_key_id=key.arn)
        self.subscriptions = [subscribe(self, self.topic.arn, account, s) for s in subscriptions]
        watched: list[Watched] = [stream, service, database, archive, cache]
        self.alarms = {spec.purpose: self._alarm(spec) for part in watched for spec in part.alarms(thresholds)}
        self.dashboard = CloudwatchDashboard(
            self, "dashboard", dashboard_name=naming.name("pipeline"),
            dashboard_body=json.dumps(self._dashboard_body(account.region, stream, service, database, cache, archive)),
        )

    def _alarm(self, spec: AlarmSpec) -> CloudwatchMetricAlarm:
        common: dict[str, Any] = {
            "alarm_name": self._naming.name(spec.purpose),
            "alarm_description": spec.description,
            "comparison_operator": spec.comparison,
            "threshold": spec.threshold,
            "evaluation_periods": spec.evaluation_periods,
            "treat_missing_data": spec.treat_missing_data,
            "alarm_actions": [self.topic.arn],
            "ok_actions": [self.topic.arn],
        }
        if isinstance(spec, MetricAlarmSpec):
            return CloudwatchMetricAlarm(
                self, spec.purpose, namespace=spec.namespace, metric_name=spec.metric_name,
                dimensions=dict(spec.dimensions) or None, statistic=spec.statistic, period=spec.period_seconds,
                **common,
            )
        assert isinstance(spec, MathAlarmSpec)
        queries = [
            CloudwatchMetricAlarmMetricQuery(
                id=query_id,
                metric=CloudwatchMetricAlarmMetricQueryMetric(
                    namespace=m.namespace, metric_name=m.metric_name, dimensions=dict(m.dimensions),
                    period=m.period_seconds, stat=m.statistic,
                ),
            )
            for query_id, m in spec.metrics.items()
        ]
        queries.append(CloudwatchMetricAlarmMetricQuery(id="missing", expression=spec.expression, label=spec.label,
                                                        return_data=True))
        return CloudwatchMetricAlarm(self, spec.purpose, metric_query=queries, **common)

    @staticmethod
    def _dashboard_body(region: str, stream: DataStream, service: ProcessorService, database: Database,
                        cache: Cache, archive: Archive) -> dict[str, Any]:
        def widget(title: str, metrics: list[list[Any]], x: int, y: int) -> dict[str, Any]:
            return {"type": "metric", "x": x, "y": y, "width": 12, "height": 6,
                    "properties": {"title": title, "region": region, "stat": "Sum", "period": 60,
                                   "metrics": metrics}}

        ns = service.metric_namespace
        primary = cache.node_ids[0]
        return {"widgets": [
            widget("Stream: records in / lag (ms)", [
                ["AWS/Kinesis", "IncomingRecords", "StreamName", stream.name],
                ["AWS/Kinesis", "GetRecords.IteratorAgeMilliseconds", "StreamName", stream.name,
                 {"stat": "Maximum", "yAxis": "right"}]], 0, 0),
            widget("Processor: records, errors, dead letters", [
                [ns, m.RECORDS_PROCESSED], [ns, m.PROCESSING_ERRORS], [ns, m.DEAD_LETTERS], [ns, m.ANOMALIES]], 12, 0),
            widget("Processor: batch latency and lag (ms)", [
                [ns, m.BATCH_LATENCY_MS, {"stat": "p99"}], [ns, m.MILLIS_BEHIND_LATEST, {"stat": "Maximum"}]], 0, 6),
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
                ["AWS/ElastiCache", "EngineCPUUtilization", "CacheClusterId", primary, {"stat": "Average"}],
                ["AWS/ElastiCache", "CacheHitRate", "CacheClusterId", primary, {"stat": "Average"}]], 12, 12),
            widget("Archive: read from the stream, delivered", [
                ["AWS/Kinesis", "IncomingRecords", "StreamName", stream.name],
                ["AWS/Firehose", "DataReadFromKinesisStream.Records", "DeliveryStreamName", archive.firehose.name],
                ["AWS/Firehose", "DeliveryToS3.Records", "DeliveryStreamName", archive.firehose.name],
                ["AWS/Firehose", "DeliveryToS3.Success", "DeliveryStreamName", archive.firehose.name,
                 {"stat": "Average", "yAxis": "right"}]], 0, 18),
        ]}
