"""The Kinesis data stream every record of the workload enters through."""
from __future__ import annotations

from typing import Any

from cdktf_cdktf_provider_aws.kinesis_stream import KinesisStream, KinesisStreamStreamModeDetails
from constructs import Construct

from pipeline_lib import iam
from pipeline_lib.alarms import AlarmSpec, MetricAlarmSpec, Widget
from pipeline_lib.context import StackContext
from pipeline_lib.settings import AlarmConfig, StreamConfig


class DataStream(Construct):
    def __init__(self, scope: Construct, id_: str, *, context: StackContext, settings: StreamConfig) -> None:
        super().__init__(scope, id_)
        naming, key = context.naming, context.key
        self.settings = settings
        provisioned = settings.stream_mode == "PROVISIONED"
        self.stream = KinesisStream(
            self,
            "stream",
            name=naming.name("updates"),
            shard_count=settings.shard_count if provisioned else None,
            stream_mode_details=KinesisStreamStreamModeDetails(stream_mode=settings.stream_mode),
            retention_period=settings.retention_period_hours,
            encryption_type="KMS",
            kms_key_id=key.arn,
            # No shard-level (enhanced) metrics: each is billed per shard as a custom metric, and no
            # alarm can name a shard of a stream that reshards (on demand, or by UpdateShardCount).
            # The processor reports its own lag (MillisBehindLatest, what the fleet scales on) and
            # the stream-level throttling alarms catch a hot shard's refusals. Policy rule
            # `shard_level_metrics_are_read` keeps them off unless an alarm reads one.
            enforce_consumer_deletion=True,  # registered EFO consumers must not block destroy
        )
        self._key = key

    @property
    def name(self) -> str:
        return self.stream.name

    @property
    def arn(self) -> str:
        return self.stream.arn

    @property
    def max_consumers(self) -> int:
        """The most tasks that can each hold a shard (StreamConfig.max_consumers)."""
        return self.settings.max_consumers

    def alarms(self, thresholds: AlarmConfig) -> list[AlarmSpec]:
        """Lag, and throttling on either side of the stream."""
        dims = {"StreamName": self.name}
        return [
            MetricAlarmSpec(purpose="stream-iterator-age",
                            description="Records wait too long in the stream: the processor lags",
                            namespace="AWS/Kinesis", metric_name="GetRecords.IteratorAgeMilliseconds", dimensions=dims,
                            statistic="Maximum", comparison="GreaterThanThreshold", threshold=thresholds.iterator_age_ms),
            MetricAlarmSpec(purpose="stream-write-throttled", description="Producers are throttled: add shards",
                            namespace="AWS/Kinesis", metric_name="WriteProvisionedThroughputExceeded", dimensions=dims,
                            statistic="Sum", comparison="GreaterThanThreshold", threshold=0, evaluation_periods=1,
                            treat_missing_data="notBreaching"),
            MetricAlarmSpec(purpose="stream-read-throttled",
                            description="Consumers are throttled on GetRecords",
                            namespace="AWS/Kinesis", metric_name="ReadProvisionedThroughputExceeded", dimensions=dims,
                            statistic="Sum", comparison="GreaterThanThreshold", threshold=0, evaluation_periods=3,
                            treat_missing_data="notBreaching"),
        ]

    def widgets(self) -> list[Widget]:
        return [Widget("Stream: records in / lag (ms)", [
            ["AWS/Kinesis", "IncomingRecords", "StreamName", self.name],
            ["AWS/Kinesis", "GetRecords.IteratorAgeMilliseconds", "StreamName", self.name,
             {"stat": "Maximum", "yAxis": "right"}]])]

    def read_statements(self) -> list[dict[str, Any]]:
        """What the processor, a consumer of this stream (and only this stream), calls: the calls
        `make demo` records with this role (localdev/access/). No DescribeStream: the processor
        lists shards with ListShards and checks the stream with DescribeStreamSummary."""
        return [
            iam.statement(
                "ReadTheStream",
                [
                    "kinesis:DescribeStreamSummary",
                    "kinesis:GetRecords",
                    "kinesis:GetShardIterator",
                    "kinesis:ListShards",
                ],
                [self.arn],
            ),
            iam.statement("DecryptTheStream", ["kms:Decrypt"], [self._key.arn],
                          condition={"StringEquals": {"kms:ViaService": self._key.via("kinesis")}}),
        ]

    def write_statements(self) -> list[dict[str, Any]]:
        """What a producer writing batches to this stream (and only this stream) calls: PutRecords,
        and the data key Kinesis makes with the stream's key for each write."""
        return [
            iam.statement("PutRecordsOnTheStream", ["kinesis:PutRecords"], [self.arn]),
            iam.statement("EncryptForTheStream", ["kms:GenerateDataKey"], [self._key.arn],
                          condition={"StringEquals": {"kms:ViaService": self._key.via("kinesis")}}),
        ]
