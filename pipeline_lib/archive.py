"""Compliance archive: every record of the stream lands in S3 through Firehose."""
from __future__ import annotations

import json

from cdktf_cdktf_provider_aws.cloudwatch_log_stream import CloudwatchLogStream
from cdktf_cdktf_provider_aws.iam_role import IamRole
from cdktf_cdktf_provider_aws.iam_role_policy import IamRolePolicy
from cdktf_cdktf_provider_aws.kinesis_firehose_delivery_stream import (
    KinesisFirehoseDeliveryStream,
    KinesisFirehoseDeliveryStreamExtendedS3Configuration,
    KinesisFirehoseDeliveryStreamExtendedS3ConfigurationCloudwatchLoggingOptions,
    KinesisFirehoseDeliveryStreamKinesisSourceConfiguration,
)
from cdktf_cdktf_provider_aws.s3_bucket import S3Bucket
from cdktf_cdktf_provider_aws.s3_bucket_lifecycle_configuration import (
    S3BucketLifecycleConfiguration,
    S3BucketLifecycleConfigurationRule,
    S3BucketLifecycleConfigurationRuleAbortIncompleteMultipartUpload,
    S3BucketLifecycleConfigurationRuleExpiration,
    S3BucketLifecycleConfigurationRuleFilter,
    S3BucketLifecycleConfigurationRuleNoncurrentVersionExpiration,
    S3BucketLifecycleConfigurationRuleTransition,
)
from cdktf_cdktf_provider_aws.s3_bucket_logging import S3BucketLoggingA
from cdktf_cdktf_provider_aws.s3_bucket_object_lock_configuration import (
    S3BucketObjectLockConfigurationA,
    S3BucketObjectLockConfigurationRuleA,
    S3BucketObjectLockConfigurationRuleDefaultRetentionA,
)
from cdktf_cdktf_provider_aws.s3_bucket_ownership_controls import (
    S3BucketOwnershipControls,
    S3BucketOwnershipControlsRule,
)
from cdktf_cdktf_provider_aws.s3_bucket_policy import S3BucketPolicy
from cdktf_cdktf_provider_aws.s3_bucket_public_access_block import S3BucketPublicAccessBlock
from cdktf_cdktf_provider_aws.s3_bucket_server_side_encryption_configuration import (
    S3BucketServerSideEncryptionConfigurationA,
    S3BucketServerSideEncryptionConfigurationRuleA,
    S3BucketServerSideEncryptionConfigurationRuleApplyServerSideEncryptionByDefaultA,
)
from cdktf_cdktf_provider_aws.s3_bucket_versioning import (
    S3BucketVersioningA,
    S3BucketVersioningVersioningConfiguration,
)
from constructs import Construct

from pipeline_lib import iam
from pipeline_lib.alarms import FIVE_MINUTES, AlarmSpec, MathAlarmSpec, MetricAlarmSpec, MetricRef, Widget
from pipeline_lib.context import StackContext
from pipeline_lib.data_stream import DataStream
from pipeline_lib.log_delivery_bucket import NONCURRENT_VERSION_DAYS, LogDeliveryBucket, s3_server_access_logging
from pipeline_lib.log_group import EncryptedLogGroup
from pipeline_lib.settings import AlarmConfig, ArchiveConfig

ACCESS_LOG_PREFIX = "archive/"  # where S3 writes the archive's server access logs in their bucket


class Archive(Construct):
    def __init__(
        self,
        scope: Construct,
        id_: str,
        *,
        context: StackContext,
        stream: DataStream,
        settings: ArchiveConfig,
    ) -> None:
        super().__init__(scope, id_)
        naming, account, key = context.naming, context.account, context.key
        self.settings = settings
        self._stream = stream
        # Bucket names are global: the account id keeps two accounts from colliding.
        self.bucket = S3Bucket(
            self, "bucket", bucket=f"{naming.name('archive')}-{account.account_id}", force_destroy=settings.force_destroy,
            object_lock_enabled=settings.object_lock or None,  # only at creation: S3 cannot add it later
        )
        S3BucketOwnershipControls(
            self, "ownership", bucket=self.bucket.id,
            rule=S3BucketOwnershipControlsRule(object_ownership="BucketOwnerEnforced"),
        )
        S3BucketPublicAccessBlock(
            self, "public-access", bucket=self.bucket.id, block_public_acls=True, block_public_policy=True,
            ignore_public_acls=True, restrict_public_buckets=True,
        )
        S3BucketVersioningA(
            self, "versioning", bucket=self.bucket.id,
            versioning_configuration=S3BucketVersioningVersioningConfiguration(status="Enabled"),
        )
        if settings.object_lock:
            # COMPLIANCE: no user, root included, can delete or shorten a locked version before
            # its date; the lifecycle expiry then removes it once that date has passed.
            S3BucketObjectLockConfigurationA(
                self, "write-once", bucket=self.bucket.id,
                rule=S3BucketObjectLockConfigurationRuleA(default_retention=S3BucketObjectLockConfigurationRuleDefaultRetentionA(
                    mode="COMPLIANCE", days=settings.expiration_days)),
            )
        if settings.access_log_retention_days is not None:
            self._access_log(context, settings.access_log_retention_days)
        S3BucketServerSideEncryptionConfigurationA(
            self, "encryption", bucket=self.bucket.id,
            rule=[
                S3BucketServerSideEncryptionConfigurationRuleA(
                    apply_server_side_encryption_by_default=S3BucketServerSideEncryptionConfigurationRuleApplyServerSideEncryptionByDefaultA(
                        sse_algorithm="aws:kms", kms_master_key_id=key.arn
                    ),
                    bucket_key_enabled=True,  # one KMS call per object batch, not per object
                )
            ],
        )
        S3BucketPolicy(
            self, "tls-only", bucket=self.bucket.id,
            policy=json.dumps({
                "Version": "2012-10-17",
                "Statement": [
                    {
                        "Sid": "DenyInsecureTransport",
                        "Effect": "Deny",
                        "Principal": "*",
                        "Action": "s3:*",
                        "Resource": [self.bucket.arn, f"{self.bucket.arn}/*"],
                        "Condition": {"Bool": {"aws:SecureTransport": "false"}},
                    },
                    {
                        "Sid": "DenyOutdatedTls",
                        "Effect": "Deny",
                        "Principal": "*",
                        "Action": "s3:*",
                        "Resource": [self.bucket.arn, f"{self.bucket.arn}/*"],
                        "Condition": {"NumericLessThan": {"s3:TlsVersion": "1.2"}},
                    },
                ],
            }),
        )
        S3BucketLifecycleConfiguration(
            self, "lifecycle", bucket=self.bucket.id,
            rule=[
                S3BucketLifecycleConfigurationRule(
                    id="tier-then-expire",
                    status="Enabled",
                    filter=[S3BucketLifecycleConfigurationRuleFilter(prefix="")],
                    transition=[
                        S3BucketLifecycleConfigurationRuleTransition(
                            days=settings.transition_to_ia_days, storage_class="STANDARD_IA"
                        ),
                        S3BucketLifecycleConfigurationRuleTransition(
                            days=settings.transition_to_glacier_days, storage_class="GLACIER"
                        ),
                    ],
                    expiration=[S3BucketLifecycleConfigurationRuleExpiration(days=settings.expiration_days)],
                    noncurrent_version_expiration=[
                        S3BucketLifecycleConfigurationRuleNoncurrentVersionExpiration(
                            noncurrent_days=NONCURRENT_VERSION_DAYS
                        )
                    ],
                    abort_incomplete_multipart_upload=[
                        S3BucketLifecycleConfigurationRuleAbortIncompleteMultipartUpload(days_after_initiation=7)
                    ],
                )
            ],
        )

        self.delivery_log = EncryptedLogGroup(
            self, "delivery-log", name=naming.path("firehose"), key=key, retention_in_days=context.log_retention_days
        )
        log_stream = CloudwatchLogStream(self, "delivery-log-stream", name=naming.name("s3-delivery"),
                                         log_group_name=self.delivery_log.name)
        role = IamRole(
            self, "firehose-role", name=naming.name("archive-firehose"),
            assume_role_policy=iam.assume_role_policy("firehose.amazonaws.com", account_id=account.account_id),
        )
        policy = IamRolePolicy(
            self, "firehose-policy", name=naming.name("archive-delivery"), role=role.id,
            policy=iam.document(
                iam.statement(
                    "ReadTheStream",
                    ["kinesis:DescribeStream", "kinesis:GetShardIterator", "kinesis:GetRecords", "kinesis:ListShards"],
                    [stream.arn],
                ),
                # Firehose's documented S3 access, each action on what it acts on: the bucket's
                # own actions on the bucket, object actions on its objects (`make demo`'s
                # least-privilege report showed PutObject granted on the bucket ARN, unusable there).
                iam.statement("FindTheArchiveBucket",
                              ["s3:GetBucketLocation", "s3:ListBucket", "s3:ListBucketMultipartUploads"],
                              [self.bucket.arn]),
                iam.statement("WriteTheArchive", ["s3:AbortMultipartUpload", "s3:GetObject", "s3:PutObject"],
                              [f"{self.bucket.arn}/*"]),
                iam.statement(
                    "UseTheKeyForStreamAndArchive", ["kms:Decrypt", "kms:GenerateDataKey"], [key.arn],
                    condition={"StringEquals": {"kms:ViaService": [key.via("kinesis"), key.via("s3")]}},
                ),
                iam.statement("ReportDeliveryErrors", ["logs:PutLogEvents"],
                              [f"{self.delivery_log.arn}:log-stream:{log_stream.name}"]),
            ),
        )
        self.firehose = KinesisFirehoseDeliveryStream(
            self,
            "firehose",
            name=naming.name("archive"),
            destination="extended_s3",
            kinesis_source_configuration=KinesisFirehoseDeliveryStreamKinesisSourceConfiguration(
                kinesis_stream_arn=stream.arn, role_arn=role.arn
            ),
            extended_s3_configuration=KinesisFirehoseDeliveryStreamExtendedS3Configuration(
                role_arn=role.arn,
                bucket_arn=self.bucket.arn,
                prefix="records/year=!{timestamp:yyyy}/month=!{timestamp:MM}/day=!{timestamp:dd}/",
                error_output_prefix="errors/!{firehose:error-output-type}/year=!{timestamp:yyyy}/month=!{timestamp:MM}/",
                buffering_interval=settings.buffering_interval_seconds,
                buffering_size=settings.buffering_size_mb,
                compression_format="GZIP",
                kms_key_arn=key.arn,
                cloudwatch_logging_options=KinesisFirehoseDeliveryStreamExtendedS3ConfigurationCloudwatchLoggingOptions(
                    enabled=True, log_group_name=self.delivery_log.name, log_stream_name=log_stream.name
                ),
            ),
            depends_on=[policy],  # Firehose validates its role's access at creation
        )

    def _access_log(self, context: StackContext, retention_days: int) -> None:
        """Who read or changed what in the archive: S3 server access logs, in a bucket of their own
        (SSE-S3, since their delivery cannot write to an SSE-KMS bucket: pipeline_lib/log_delivery_bucket.py)."""
        self.access_log = LogDeliveryBucket(
            self, "access-log", context=context, purpose="archive-access",
            delivery=s3_server_access_logging(self.bucket, context.account.account_id, ACCESS_LOG_PREFIX,
                                              sid="S3DeliversTheArchivesAccessLogs"),
            retention_days=retention_days, force_destroy=self.settings.force_destroy)
        self.access_log_bucket = self.access_log.bucket
        S3BucketLoggingA(self, "access-logging", bucket=self.bucket.id, target_bucket=self.access_log_bucket.id,
                         target_prefix=ACCESS_LOG_PREFIX)

    @property
    def bucket_name(self) -> str:
        return self.bucket.bucket

    def widgets(self) -> list[Widget]:
        firehose = ["DeliveryStreamName", self.firehose.name]
        return [Widget("Archive: read from the stream, delivered", [
            ["AWS/Kinesis", "IncomingRecords", "StreamName", self._stream.name],
            ["AWS/Firehose", "DataReadFromKinesisStream.Records", *firehose],
            ["AWS/Firehose", "DeliveryToS3.Records", *firehose],
            ["AWS/Firehose", "DeliveryToS3.Success", *firehose, {"stat": "Average", "yAxis": "right"}]])]

    def alarms(self, thresholds: AlarmConfig) -> list[AlarmSpec]:
        """Both sides of the delivery stream. A Firehose that cannot read its Kinesis source (a
        key or role condition broken) retries GetRecords for ever and delivers nothing: its
        DeliveryToS3 metrics then have no data at all, and the processor keeps the stream's
        iterator age low. So the source side is watched on its own: records arriving on the
        stream while Firehose reads none, and how far behind the stream its reads are; then
        how old the oldest record inside Firehose is (data freshness). A record not archived
        within the stream's retention is gone."""
        firehose = {"DeliveryStreamName": self.firehose.name}
        return [
            MetricAlarmSpec(purpose="archive-delivery", description="Firehose failed to deliver records to the archive",
                            namespace="AWS/Firehose", metric_name="DeliveryToS3.Success", dimensions=firehose,
                            statistic="Minimum", comparison="LessThanThreshold", threshold=1, evaluation_periods=3,
                            treat_missing_data="notBreaching"),
            MathAlarmSpec(
                purpose="archive-not-reading",
                description="Records arrive on the stream but the archive's Firehose reads none (its role, key "
                            "or source is broken): the compliance archive has stopped",
                metrics={"incoming": MetricRef(namespace="AWS/Kinesis", metric_name="IncomingRecords",
                                               dimensions={"StreamName": self._stream.name}, statistic="Sum",
                                               period_seconds=FIVE_MINUTES),
                         "read": MetricRef(namespace="AWS/Firehose", metric_name="DataReadFromKinesisStream.Records",
                                           dimensions=firehose, statistic="Sum", period_seconds=FIVE_MINUTES)},
                # A Firehose that reads nothing publishes no data point at all: FILL makes that a 0.
                expression="IF(incoming > 0 AND FILL(read, 0) == 0, 1, 0)", label="stream written, archive not read",
                comparison="GreaterThanOrEqualToThreshold", threshold=1, evaluation_periods=3,
                treat_missing_data="notBreaching",  # nothing written to the stream: nothing to archive
            ),
            MetricAlarmSpec(purpose="archive-read-lag",
                            description="The archive's Firehose reads the stream far behind its newest record",
                            namespace="AWS/Firehose", metric_name="KinesisMillisBehindLatest", dimensions=firehose,
                            statistic="Maximum", comparison="GreaterThanThreshold",
                            threshold=thresholds.archive_read_lag_ms, evaluation_periods=3,
                            treat_missing_data="notBreaching"),
            MetricAlarmSpec(purpose="archive-freshness",
                            description="The oldest record inside Firehose waits longer than its buffering interval "
                                        "plus a margin: delivery to S3 is stuck",
                            namespace="AWS/Firehose", metric_name="DeliveryToS3.DataFreshness", dimensions=firehose,
                            statistic="Maximum", comparison="GreaterThanThreshold",
                            threshold=self.settings.buffering_interval_seconds
                            + thresholds.archive_freshness_margin_seconds,
                            evaluation_periods=3, treat_missing_data="notBreaching"),
        ]
