"""A bucket that an AWS log delivery writes into, and who those deliveries are.

Two deliveries write here: S3 server access logging (the production archive's who-read-what records,
pipeline_lib/archive.py) and an ALB's access logs (the catalog read API, pipeline_lib/catalog_read_api.py).
Neither can write to a bucket encrypted with a KMS key: S3 server access logs need an SSE-S3 target, and an
ALB delivers its logs only to SSE-S3 buckets. So these buckets are the one documented exception to "the
stack's key at rest" (policy/rules.py, `data_at_rest_uses_the_cmk`, allows SSE-S3 on exactly the buckets
such a delivery names; docs/architecture.md). What they hold is request metadata, never records; their
tags say why they are SSE-S3, so the console shows it too.

Everything else is as strict as the archive's: public access blocked, ACLs off (BucketOwnerEnforced: the
bucket owner owns every delivered object), a deny on any request without TLS, versioned, expired after the
retention its config states, and a bucket policy that lets each delivery put objects under its own prefix
and nothing else.
"""
from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any

from cdktf_cdktf_provider_aws.s3_bucket import S3Bucket
from cdktf_cdktf_provider_aws.s3_bucket_lifecycle_configuration import (
    S3BucketLifecycleConfiguration,
    S3BucketLifecycleConfigurationRule,
    S3BucketLifecycleConfigurationRuleAbortIncompleteMultipartUpload,
    S3BucketLifecycleConfigurationRuleExpiration,
    S3BucketLifecycleConfigurationRuleFilter,
    S3BucketLifecycleConfigurationRuleNoncurrentVersionExpiration,
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
from pipeline_lib.context import StackContext

# Old object versions exist only after an overwrite or a delete: a month is enough to undo one (the archive's
# bucket and these alike).
NONCURRENT_VERSION_DAYS = 30

# The Elastic Load Balancing account that writes a load balancer's access logs in each region this project
# deploys to (stacks/workloads.py), from the ELB user guide ("Enable access logs for your Application Load
# Balancer"). A region opened in August 2022 or later has no such account: its bucket policy names the service
# principal logdelivery.elasticloadbalancing.amazonaws.com instead. Another region is added from that guide,
# never guessed.
ELB_LOG_DELIVERY_ACCOUNTS = {"us-east-1": "127311923021", "eu-west-1": "156460612806"}

# What an S3 tag value may hold: the reason below is a tag.
_TAG_VALUE = re.compile(r"[\w .:/=+\-@]{1,256}")


class UnknownElbRegionError(ValueError):
    """No ELB log delivery account is recorded for this region."""


@dataclass(frozen=True)
class LogDelivery:
    """One AWS service that writes logs into the bucket: who it is, what it is called in the reason,
    and the key prefix it may put objects under (nothing outside it)."""

    sid: str
    name: str  # e.g. "ALB access logging": in the bucket's encryption reason
    principal: dict[str, str]
    prefix: str  # objects it may put: <bucket>/<prefix>*; ends with "/"
    condition: dict[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if not self.prefix.endswith("/") or self.prefix.startswith("/"):
            raise ValueError(f"log delivery prefix {self.prefix!r} must be a key prefix ending with '/'")


def s3_server_access_logging(source_bucket: S3Bucket, account_id: str, prefix: str, *, sid: str) -> LogDelivery:
    """S3 server access logs of `source_bucket`: the logging service, for that bucket of this account only."""
    return LogDelivery(
        sid=sid, name="S3 server access logging",
        principal={"Service": "logging.s3.amazonaws.com"}, prefix=prefix,
        condition={"ArnLike": {"aws:SourceArn": source_bucket.arn},
                   "StringEquals": {"aws:SourceAccount": account_id}})


def elb_access_logging(region: str, account_id: str, prefix: str) -> LogDelivery:
    """A load balancer's access logs: the region's ELB log delivery account may put objects under
    `<prefix>/AWSLogs/<account id>/`, where ELB writes them, and nowhere else. `prefix` is the load
    balancer's `access_logs.prefix`: no slashes at its ends and no `AWSLogs` (ELB adds that part)."""
    if not prefix or prefix.strip("/") != prefix or "AWSLogs" in prefix:
        raise ValueError(f"ALB access log prefix {prefix!r}: no leading or trailing slash, and no 'AWSLogs'")
    if region not in ELB_LOG_DELIVERY_ACCOUNTS:
        raise UnknownElbRegionError(
            f"no ELB log delivery account recorded for {region!r}: add it to ELB_LOG_DELIVERY_ACCOUNTS "
            "(pipeline_lib/log_delivery_bucket.py) from the ELB user guide; a region opened in August 2022 or "
            "later grants the service principal logdelivery.elasticloadbalancing.amazonaws.com instead")
    principal = {"AWS": f"arn:aws:iam::{ELB_LOG_DELIVERY_ACCOUNTS[region]}:root"}
    return LogDelivery(sid="ElbDeliversTheLoadBalancersAccessLogs", name="ALB access logging", principal=principal,
                       prefix=f"{prefix}/AWSLogs/{account_id}/")


class LogDeliveryBucket:
    """A bucket an AWS log delivery writes into: SSE-S3 (the reason in its tags), public access blocked,
    BucketOwnerEnforced, TLS only, versioned, expired after `retention_days`, and writable by `delivery`
    under its prefix alone.

    Its resources are added to `scope` as `<id_prefix>-bucket`, `<id_prefix>-policy`, ... rather than to a
    child construct: the production archive's access-log bucket was built so before this class existed, and
    a construct path is a Terraform address (docs/architecture.md): a child would replace that bucket."""

    def __init__(self, scope: Construct, id_prefix: str, *, context: StackContext, purpose: str,
                 delivery: LogDelivery, retention_days: int, force_destroy: bool) -> None:
        if retention_days < 1:
            raise ValueError(f"{purpose}: log retention must be at least a day, not {retention_days}")
        reason = f"SSE-S3 not the stack KMS key: {delivery.name} delivers only to SSE-S3 buckets"
        if not _TAG_VALUE.fullmatch(reason):
            raise ValueError(f"{delivery.name!r} cannot be part of an S3 tag value")
        self.delivery = delivery
        naming, account = context.naming, context.account
        # Bucket names are global: the account id keeps two accounts from colliding.
        self.bucket = S3Bucket(scope, f"{id_prefix}-bucket", bucket=f"{naming.name(purpose)}-{account.account_id}",
                               force_destroy=force_destroy,
                               tags={"LogDelivery": delivery.name, "EncryptionException": reason})
        bucket = self.bucket.id
        S3BucketOwnershipControls(scope, f"{id_prefix}-ownership", bucket=bucket,
                                  rule=S3BucketOwnershipControlsRule(object_ownership="BucketOwnerEnforced"))
        S3BucketPublicAccessBlock(
            scope, f"{id_prefix}-public-access", bucket=bucket, block_public_acls=True, block_public_policy=True,
            ignore_public_acls=True, restrict_public_buckets=True)
        S3BucketVersioningA(scope, f"{id_prefix}-versioning", bucket=bucket,
                            versioning_configuration=S3BucketVersioningVersioningConfiguration(status="Enabled"))
        S3BucketServerSideEncryptionConfigurationA(
            scope, f"{id_prefix}-encryption", bucket=bucket,
            rule=[S3BucketServerSideEncryptionConfigurationRuleA(
                apply_server_side_encryption_by_default=S3BucketServerSideEncryptionConfigurationRuleApplyServerSideEncryptionByDefaultA(
                    sse_algorithm="AES256"))],
        )
        arn = self.bucket.arn
        write = {"Sid": delivery.sid, "Effect": "Allow", "Principal": delivery.principal, "Action": "s3:PutObject",
                 "Resource": f"{arn}/{delivery.prefix}*"}
        self.policy = S3BucketPolicy(scope, f"{id_prefix}-policy", bucket=bucket, policy=iam.document(
            {**write, "Condition": delivery.condition} if delivery.condition else write,
            {"Sid": "DenyInsecureTransport", "Effect": "Deny", "Principal": "*", "Action": "s3:*",
             "Resource": [arn, f"{arn}/*"], "Condition": {"Bool": {"aws:SecureTransport": "false"}}},
        ))
        S3BucketLifecycleConfiguration(scope, f"{id_prefix}-lifecycle", bucket=bucket, rule=[
            S3BucketLifecycleConfigurationRule(
                id="expire", status="Enabled", filter=[S3BucketLifecycleConfigurationRuleFilter(prefix="")],
                expiration=[S3BucketLifecycleConfigurationRuleExpiration(days=retention_days)],
                noncurrent_version_expiration=[S3BucketLifecycleConfigurationRuleNoncurrentVersionExpiration(
                    noncurrent_days=NONCURRENT_VERSION_DAYS)],
                abort_incomplete_multipart_upload=[
                    S3BucketLifecycleConfigurationRuleAbortIncompleteMultipartUpload(days_after_initiation=7)],
            )])
