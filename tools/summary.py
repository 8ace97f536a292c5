"""`python -m tools.summary [cdktf.out]`: what each synthesized stack contains, readably."""
from __future__ import annotations

import sys
from collections import Counter
from pathlib import Path

from policy.stack_json import StackJson, load_app

TIERS = {
    "Encryption": ("aws_kms_",),
    "Network": ("aws_vpc", "aws_subnet", "aws_route_table", "aws_default_security_group", "aws_security_group",
                "aws_flow_log"),
    "Stream": ("aws_kinesis_stream",),
    "Processor": ("aws_ecs_", "aws_ecr_", "aws_appautoscaling_"),
    "Cache": ("aws_elasticache_",),
    "Database": ("aws_db_", "aws_secretsmanager_"),
    "Archive & backup": ("aws_s3_", "aws_kinesis_firehose", "aws_backup_"),
    "Monitoring": ("aws_cloudwatch_metric_alarm", "aws_cloudwatch_dashboard", "aws_sns_"),
    "Logs": ("aws_cloudwatch_log_",),
    "IAM": ("aws_iam_",),
}


def tier_of(resource_type: str) -> str:
    for tier, prefixes in TIERS.items():
        if resource_type.startswith(prefixes):
            return tier
    return "Other"


def one(stack: StackJson, type_: str) -> dict:
    return next(stack.resources(type_)).config


def describe(stack: StackJson) -> list[str]:
    tiers = Counter(tier_of(r.type) for r in stack.resources())
    total = sum(tiers.values())
    stream, db = one(stack, "aws_kinesis_stream"), one(stack, "aws_db_instance")
    redis = one(stack, "aws_elasticache_replication_group")
    task = next(r.config for r in stack.resources("aws_ecs_task_definition") if "-processor-" in r.config["family"])
    target = next(stack.resources("aws_appautoscaling_target"), None)
    service = one(stack, "aws_ecs_service")
    scaling = (f"{target.config['min_capacity']}-{target.config['max_capacity']} tasks (scaling on the processor's lag)"
               if target is not None else f"{service['desired_count']} tasks (one per shard; reshard to scale)")
    expiry = one(stack, "aws_s3_bucket_lifecycle_configuration")["rule"][0]["expiration"][0]["days"]
    alarms = sum(1 for _ in stack.resources("aws_cloudwatch_metric_alarm"))
    lines = [
        f"{stack.stack_id}  ({stack.provider['region']}, {total} resources, {len(stack.outputs)} outputs)",
        f"  stream     {stream['name']}: " + (
            f"{stream['shard_count']} shards (~{stream['shard_count'] * 60_000:,} records/min)"
            if stream.get("shard_count") else "on-demand shards") + f", {stream['retention_period']} h retention, KMS",
        f"  processor  Fargate {task['runtime_platform']['cpu_architecture']} {task['cpu']} CPU / "
        f"{task['memory']} MiB, {scaling}",
        f"  database   PostgreSQL {db['engine_version']} {db['instance_class']}, multi-AZ {db['multi_az']}, "
        f"deletion protection {db['deletion_protection']}, secret rotation every "
        f"{one(stack, 'aws_secretsmanager_secret_rotation')['rotation_rules']['automatically_after_days']} days",
        f"  cache      Redis {redis['engine_version']} {redis['node_type']} x{redis['num_cache_clusters']}, "
        f"TLS {redis['transit_encryption_mode']}, AUTH from existing secret",
        f"  archive    S3 via Firehose, SSE-KMS, expires after {expiry} days; AWS Backup for the database",
        f"  monitoring {alarms} alarms -> encrypted SNS topic, 1 dashboard",
        "  by tier    " + ", ".join(f"{tier} {count}" for tier, count in sorted(tiers.items())),
    ]
    return lines


def main(argv: list[str]) -> int:
    outdir = Path(argv[0]) if argv else Path("cdktf.out")
    for stack in load_app(outdir):
        print("\n".join(describe(stack)))
        print()
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
