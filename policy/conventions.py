"""The house rules every resource obeys, as data: shared by the constructs, the policy
check over synthesized JSON and the plan review. No cdktf import here, so the plan
review starts without loading the provider bindings.
"""
from __future__ import annotations

import hashlib
import re

# Log groups an AWS service delivers to (ElastiCache logs) live under this prefix: delivery
# edits the account's one CloudWatch Logs resource policy (5,120 characters, shared by every
# stack and suffix), and one statement of it covers every group under the prefix.
VENDED_LOGS_PREFIX = "/aws/vendedlogs/"

# Suffixes that are production: they keep every protection and get production sizes
# (stacks/config.py); the policy check and the plan review hold them to production's rules.
PRODUCTION_SUFFIXES = frozenset({"prod"})

REQUIRED_TAGS = ("Project", "Workload", "Environment", "Owner", "CostCenter", "ManagedBy", "DataClassification")

# Actions AWS offers no resource-level scope for: `Resource: "*"` is the only valid
# value. The policy check and the plan review allow "*" for these and nothing else.
UNSCOPABLE_ACTIONS = frozenset(
    {
        "ecr:GetAuthorizationToken",
        "cloudwatch:PutMetricData",  # scoped with the cloudwatch:namespace condition instead
        "logs:DescribeLogGroups",
        "ssmmessages:CreateControlChannel",
        "ssmmessages:CreateDataChannel",
        "ssmmessages:OpenControlChannel",
        "ssmmessages:OpenDataChannel",
        "kinesis:ListStreams",
    }
)


# The confused-deputy keys each AWS service puts in the request context when it assumes a role it was given
# (its own docs); the first is the one this project's trust policies require, equal to the account. A
# condition on a key the service does not send fails every AssumeRole, so the role can never be used, and
# nothing says so until the first request needs it. Where a service sends none, the guard is iam:PassRole,
# which cannot pass a role across accounts. pipeline_lib/iam.py builds every trust policy from this table;
# policy rule `trust_conditions_are_ones_the_service_sends` holds every role to it, and the emulator
# evaluates trust policies with exactly these keys (localdev/access/trust.py).
SERVICE_TRUST_KEYS: dict[str, tuple[str, ...]] = {
    "ecs-tasks.amazonaws.com": ("aws:SourceAccount", "aws:SourceArn"),  # ECS, "Task IAM role"
    "monitoring.rds.amazonaws.com": ("aws:SourceAccount", "aws:SourceArn"),  # RDS enhanced monitoring's role
    "vpc-flow-logs.amazonaws.com": ("aws:SourceAccount", "aws:SourceArn"),  # VPC flow logs' IAM role
    "iot.amazonaws.com": ("aws:SourceAccount", "aws:SourceArn"),  # IoT, cross-service confused deputy
    "firehose.amazonaws.com": ("sts:ExternalId",),  # Firehose's documented trust policy: the account id
    "backup.amazonaws.com": (),  # AWS Backup's default service role trusts the service alone
    # API Gateway sends neither aws:SourceAccount nor aws:SourceArn when it assumes an AWS integration's
    # credentials role: with either condition every request answers 500 ("API Gateway does not have
    # permission to assume the provided role").
    "apigateway.amazonaws.com": (),
}
# The keys a trust condition can name to tie a service's AssumeRole to a caller (lower case: IAM
# compares condition keys case-insensitively).
CONFUSED_DEPUTY_KEYS = frozenset({"aws:sourceaccount", "aws:sourcearn", "aws:sourceorgid", "aws:sourceorgpaths",
                                  "sts:externalid"})

# Resources AWS refuses to delete while something uses them (a group attached to an instance,
# a security group on an ENI), each with the arguments besides its name that force a
# replacement (provider 5.x). A replacement must create the new one first
# (`create_before_destroy`), so its name cannot be fixed: a `name_prefix`, or, where the type
# has none, a name that changes with those arguments (`replacement_digest`). Subnet groups are
# replaced only by a new name, so theirs may be fixed. Policy rule
# `in_use_resources_are_replaced_create_first`.
REPLACED_WHILE_IN_USE: dict[str, tuple[str, ...]] = {
    "aws_security_group": ("description", "vpc_id"),
    "aws_db_parameter_group": ("family", "description"),
    "aws_elasticache_parameter_group": ("family", "description"),
    "aws_db_subnet_group": (),
    "aws_elasticache_subnet_group": (),
    # In use by a listener and a service: ResourceInUse on delete. Its name_prefix holds 6 characters,
    # too few for the workload and suffix, so its name carries the digest. Its vpc_id forces a
    # replacement too, but is known only at apply: a new VPC is a rebuild of the stack, not guarded here.
    "aws_lb_target_group": ("port", "protocol", "protocol_version", "target_type"),
}


# Log groups AWS services create for themselves when a feature is on. A stack creates each first,
# with its key and a retention, so nothing is kept unencrypted for ever or outlives a destroy
# (policy rule aws_created_log_groups_are_owned); except those shared by every resource of the
# region, which no one stack may own: destroying one suffix's stack would delete the group every
# other instance in the region writes to. Those are set up once per account and region
# (docs/operations.md, "Log groups AWS creates").
SHARED_AWS_LOG_GROUPS = {
    "RDSOSMetrics": "RDS Enhanced Monitoring: one group for every instance of the account in the region",
}


# AWS IoT Core's log (its v2 logging): one fixed group per account and region, written once the
# region's logging options name a role. The stack that owns those options creates it first
# (pipeline_lib/iot_logging.py; policy rule iot_logs_are_owned_where_iot_logging_is_set).
IOT_LOG_GROUP = "AWSIotLogsV2"


def container_insights_log_group(cluster_name: str) -> str:
    """Where Container Insights (enabled or enhanced) writes a cluster's performance events."""
    return f"/aws/ecs/containerinsights/{cluster_name}/performance"


def rds_log_group(identifier: str, export: str) -> str:
    """Where RDS publishes an instance's exported log (enabled_cloudwatch_logs_exports)."""
    return f"/aws/rds/instance/{identifier}/{export}"


def replacement_digest(values: tuple[str, ...]) -> str:
    """Eight hex digits that change whenever one of `values` does (a name part, for types
    without `name_prefix` whose other arguments force a replacement)."""
    return hashlib.sha256("\x1f".join(values).encode()).hexdigest()[:8]


# What ElastiCache accepts as a Redis AUTH token (ElastiCache user guide, "AUTH"): 16 to 128
# printable characters, and of the non-alphanumerics only these; no spaces, quotes, @, / or _.
REDIS_AUTH_TOKEN_LENGTH = (16, 128)
REDIS_AUTH_TOKEN_SPECIALS = "!&#$^<>-"


def redis_auth_token_problem(token: str) -> str | None:
    """Why ElastiCache would refuse `token` as an AUTH token, or None. Never names the token."""
    low, high = REDIS_AUTH_TOKEN_LENGTH
    if not low <= len(token) <= high:
        return f"has {len(token)} characters, not {low} to {high}"
    bad = sorted({c for c in token if not (c.isascii() and c.isalnum()) and c not in REDIS_AUTH_TOKEN_SPECIALS})
    if bad:
        shown = ", ".join("a space" if c == " " else repr(c) if c.isprintable() else f"U+{ord(c):04X}" for c in bad)
        return (f"contains {shown}: besides letters and digits ElastiCache accepts only "
                f"{' '.join(REDIS_AUTH_TOKEN_SPECIALS)}")
    return None


def carries_suffix(name: str, suffix: str) -> bool:
    """True when `suffix` is one whole segment of `name` (retail-db-dev, /retail/dev/x), or, in a
    name that allows no hyphen (an IoT topic rule's), its underscored spelling (factory_readings_pr_142)."""
    return any(re.search(rf"(^|[-/_.]){re.escape(spelling)}($|[-/_.])", name) is not None
               for spelling in {suffix, suffix.replace("-", "_")})
