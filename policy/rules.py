"""The rules. One function per rule; each yields a `Finding` per violation.

A rule gets one synthesized stack and knows nothing about constructs: it reads the
same JSON Terraform reads, so it also catches what a hand edit or an escape hatch did.
"""
from __future__ import annotations

import json
import re
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

from policy.conventions import (
    CONFUSED_DEPUTY_KEYS,
    PRODUCTION_SUFFIXES,
    REPLACED_WHILE_IN_USE,
    REQUIRED_TAGS,
    SERVICE_TRUST_KEYS,
    SHARED_AWS_LOG_GROUPS,
    UNSCOPABLE_ACTIONS,
    VENDED_LOGS_PREFIX,
    carries_suffix,
    container_insights_log_group,
    rds_log_group,
    replacement_digest,
)
from policy.iam_patterns import wide_action, wide_resource
from policy.resource_types import key_references, name_attribute, resource_type
from policy.stack_json import Resource, StackJson, references

FORBIDDEN_SECRET_TYPES = frozenset({"aws_secretsmanager_secret", "aws_secretsmanager_secret_version"})


@dataclass(frozen=True)
class Finding:
    rule: str
    stack: str
    resource: str
    message: str

    def __str__(self) -> str:
        return f"[{self.rule}] {self.stack} {self.resource}: {self.message}"


Rule = Callable[[StackJson], Iterator[Finding]]
RULES: dict[str, Rule] = {}


def rule(function: Rule) -> Rule:
    RULES[function.__name__] = function
    return function


def _finding(function_name: str, stack: StackJson, resource: str, message: str) -> Finding:
    return Finding(function_name, stack.stack_id, resource, message)


def _physical_name(type_: str, config: dict[str, Any]) -> str | None:
    """The name, or the `name_prefix` AWS completes (which then carries the suffix)."""
    value = config.get(name_attribute(type_), config.get("name_prefix"))
    return value if isinstance(value, str) else None


@rule
def names_carry_the_suffix(stack: StackJson) -> Iterator[Finding]:
    for res in stack.resources():
        name = _physical_name(res.type, res.config)
        if name is None:
            if resource_type(res.type).named:  # an AWS-generated name is not reviewable
                yield _finding("names_carry_the_suffix", stack, res.path, "has no explicit physical name")
            continue
        if not carries_suffix(name, stack.suffix):
            yield _finding("names_carry_the_suffix", stack, res.path,
                           f"name {name!r} lacks the environment suffix {stack.suffix!r}")


@rule
def resources_are_tagged(stack: StackJson) -> Iterator[Finding]:
    tags = (stack.provider.get("default_tags") or [{}])[0].get("tags", {})
    for key in REQUIRED_TAGS:
        if not tags.get(key):
            yield _finding("resources_are_tagged", stack, "provider.aws", f"default_tags lacks {key}")
    for res in stack.resources("aws_ecs_service"):
        if res.config.get("propagate_tags") not in {"SERVICE", "TASK_DEFINITION"}:
            yield _finding("resources_are_tagged", stack, res.path, "tasks do not inherit tags (propagate_tags)")
    for res in stack.resources("aws_appautoscaling_target"):
        if not res.config.get("tags"):
            yield _finding("resources_are_tagged", stack, res.path, "scaling target carries no explicit tags")


def _access_log_targets(stack: StackJson) -> set[str]:
    """Buckets an AWS log delivery writes into: S3 server access logs and load balancers' access logs.
    Neither delivery writes to an SSE-KMS bucket, so these are encrypted with SSE-S3 (AES256), the one
    exception to the stack's key (pipeline_lib/log_delivery_bucket.py)."""
    targets = {res.config.get("target_bucket") for res in stack.resources("aws_s3_bucket_logging")}
    for res in stack.resources("aws_lb"):
        blocks = res.config.get("access_logs") or []
        for block in [blocks] if isinstance(blocks, dict) else blocks:
            if block.get("enabled") is not False and block.get("bucket"):
                targets.add(block["bucket"])
    return targets


@rule
def data_at_rest_uses_the_cmk(stack: StackJson) -> Iterator[Finding]:
    log_targets = _access_log_targets(stack)
    encrypted_buckets = {
        res.config.get("bucket") for res in stack.resources("aws_s3_bucket_server_side_encryption_configuration")
    }
    for res in stack.resources():
        if res.type == "aws_s3_bucket_server_side_encryption_configuration" and res.config.get("bucket") in log_targets:
            default = res.config.get("rule", [{}])[0].get("apply_server_side_encryption_by_default", {})
            if default.get("sse_algorithm") != "AES256":
                yield _finding("data_at_rest_uses_the_cmk", stack, res.path,
                               "an access-log bucket must use SSE-S3: S3 and ELB deliver no logs to SSE-KMS buckets")
            continue
        refs = key_references(res.type, res.config)
        if refs is not None and not all(references(ref, "aws_kms_key") for ref in refs):
            yield _finding("data_at_rest_uses_the_cmk", stack, res.path, "not encrypted with the stack's KMS key")
        if res.type == "aws_s3_bucket" and f"${{aws_s3_bucket.{res.name}.id}}" not in encrypted_buckets:
            yield _finding("data_at_rest_uses_the_cmk", stack, res.path, "bucket has no SSE-KMS configuration")


def _document_denies_plain_http(policy: dict[str, Any]) -> bool:
    """A policy document with a Deny on `aws:SecureTransport` = false (the Bool form this house writes)."""
    for statement in policy.get("Statement", []):
        condition = statement.get("Condition", {}).get("Bool", {})
        if statement.get("Effect") == "Deny" and str(condition.get("aws:SecureTransport")).lower() == "false":
            return True
    return False


@rule
def tls_is_enforced(stack: StackJson) -> Iterator[Finding]:
    for res in stack.resources("aws_db_instance"):
        group = stack.by_reference(res.config.get("parameter_group_name", ""))
        params = {p.get("name"): str(p.get("value")) for p in (group.config.get("parameter", []) if group else [])}
        if params.get("rds.force_ssl") != "1":
            yield _finding("tls_is_enforced", stack, res.path, "parameter group does not set rds.force_ssl=1")
    for res in stack.resources("aws_elasticache_replication_group"):
        if res.config.get("transit_encryption_enabled") is not True or res.config.get(
            "transit_encryption_mode"
        ) != "required":
            yield _finding("tls_is_enforced", stack, res.path, "Redis does not require TLS")
    bucket_policies = {
        res.config.get("bucket"): json.loads(res.config.get("policy", "{}"))
        for res in stack.resources("aws_s3_bucket_policy")
    }
    for res in stack.resources("aws_s3_bucket"):
        policy = bucket_policies.get(f"${{aws_s3_bucket.{res.name}.id}}")
        if policy is None or not _document_denies_plain_http(policy):
            yield _finding("tls_is_enforced", stack, res.path, "bucket policy does not deny plain HTTP")


def _policies(stack: StackJson) -> Iterator[tuple[str, str, bool, dict[str, Any]]]:
    """(type, path, is_identity_policy, document) for every policy document in the stack."""
    sources = {"aws_iam_role_policy": True, "aws_iam_policy": True, "aws_kms_key": False,
               "aws_s3_bucket_policy": False, "aws_sns_topic_policy": False}
    for type_, identity in sources.items():
        for res in stack.resources(type_):
            if res.config.get("policy"):
                yield type_, res.path, identity, json.loads(res.config["policy"])


def _as_list(value: Any) -> list[Any]:
    if value is None:
        return []
    return value if isinstance(value, list) else [value]


# A Terraform reference in a synthesized policy is a value known at apply: one resource's ARN, an account
# id, a name. It is never a wildcard, so it is judged as a literal of its shape (an ARN naming a resource).
_TOKEN = re.compile(r"\$\{[^}]*\}")
_NAMED_ARN = "arn:aws:reference:region:000000000000:reference/named"


def _as_literal(pattern: str) -> str:
    return _TOKEN.sub(lambda m: _NAMED_ARN if m.group(0).endswith(".arn}") else "reference", pattern)


def _quoted(patterns: list[str]) -> str:
    return ", ".join(f"'{p}'" for p in patterns)


@rule
def no_wildcard_actions(stack: StackJson) -> Iterator[Finding]:
    """An Allow of `*`, a NotAction, or a pattern wide in the plan review's sense (`s3:*`, `s3:Get*`,
    `iam:Pass*`: policy/iam_patterns.py `wide_action`); `kms:GenerateDataKey*` keeps a name and passes."""
    for _, path, _, document in _policies(stack):
        for statement in document.get("Statement", []):
            if statement.get("Effect") != "Allow":
                continue
            sid = statement.get("Sid", "?")
            if "NotAction" in statement:
                yield _finding("no_wildcard_actions", stack, path,
                               f"statement {sid} allows every action but {_quoted(_as_list(statement['NotAction']))}"
                               " (NotAction)")
                continue
            wide = [a for a in _as_list(statement.get("Action")) if wide_action(_as_literal(str(a)))]
            if wide:
                yield _finding("no_wildcard_actions", stack, path, f"statement {sid} allows Action {_quoted(wide)}")


@rule
def no_wildcard_resources(stack: StackJson) -> Iterator[Finding]:
    """In an identity policy, a scopable action on `*`, a NotResource, or an ARN pattern naming no particular
    resource (`arn:aws:s3:::*`, `...:stream/*`: policy/iam_patterns.py `wide_resource`)."""
    for _, path, identity, document in _policies(stack):
        if not identity:  # in a key or bucket policy "*" means the key/bucket itself
            continue
        for statement in document.get("Statement", []):
            if statement.get("Effect") != "Allow":
                continue
            if "NotResource" in statement:
                wide = [f"every resource but {_quoted(_as_list(statement['NotResource']))} (NotResource)"]
            else:
                wide = [f"'{r}'" for r in _as_list(statement.get("Resource")) if wide_resource(_as_literal(str(r)))]
            if "NotAction" in statement:
                scoped = [f"every action but {_quoted(_as_list(statement['NotAction']))}"]
            else:
                scoped = sorted(set(_as_list(statement.get("Action"))) - UNSCOPABLE_ACTIONS)
            if wide and scoped:
                yield _finding("no_wildcard_resources", stack, path,
                               f"statement {statement.get('Sid', '?')} grants {', '.join(scoped)} on {', '.join(wide)}")


@rule
def trust_conditions_are_ones_the_service_sends(stack: StackJson) -> Iterator[Finding]:
    """A role a service assumes is guarded by a key that service sends (policy/conventions.py
    SERVICE_TRUST_KEYS) and by no key it does not: such a condition fails every AssumeRole, and the role
    is never usable. A service the table does not know is a finding until its keys are looked up."""
    for res in stack.resources("aws_iam_role"):
        try:
            document = json.loads(res.config.get("assume_role_policy") or "{}")
        except (TypeError, ValueError):
            continue  # a reference, read at apply
        for statement in _as_list(document.get("Statement")):
            principal = statement.get("Principal")
            if statement.get("Effect") != "Allow" or not isinstance(principal, dict):
                continue
            required = {key.lower(): key for operator, block in (statement.get("Condition") or {}).items()
                        if not operator.endswith("IfExists") for key in block if key.lower() in CONFUSED_DEPUTY_KEYS}
            for service in _as_list(principal.get("Service")):
                if service not in SERVICE_TRUST_KEYS:
                    yield _finding("trust_conditions_are_ones_the_service_sends", stack, res.path,
                                   f"trusts {service}, whose confused-deputy keys are not in SERVICE_TRUST_KEYS")
                    continue
                sent = {key.lower() for key in SERVICE_TRUST_KEYS[service]}
                for lowered, key in sorted(required.items()):
                    if lowered not in sent:
                        yield _finding("trust_conditions_are_ones_the_service_sends", stack, res.path,
                                       f"requires {key}, which {service} does not send when it assumes a role: "
                                       "every AssumeRole would be refused")
                if sent and not sent & required.keys():
                    yield _finding("trust_conditions_are_ones_the_service_sends", stack, res.path,
                                   f"trusts {service} with no confused-deputy condition "
                                   f"(it sends {', '.join(SERVICE_TRUST_KEYS[service])})")


@rule
def no_secrets_are_created(stack: StackJson) -> Iterator[Finding]:
    for res in stack.resources():
        if res.type in FORBIDDEN_SECRET_TYPES:
            yield _finding("no_secrets_are_created", stack, res.path,
                           "stacks read existing secrets; they never create one")
    for res in stack.resources("aws_db_instance"):
        if res.config.get("password") or res.config.get("manage_master_user_password") is not True:
            yield _finding("no_secrets_are_created", stack, res.path, "master password is not RDS-managed")
    for res in stack.resources("aws_elasticache_replication_group"):
        token = res.config.get("auth_token")
        if not (isinstance(token, str) and token.startswith("${data.aws_secretsmanager_secret_version.")):
            yield _finding("no_secrets_are_created", stack, res.path,
                           "AUTH token does not come from an existing Secrets Manager secret")


@rule
def destroyable_outside_production(stack: StackJson) -> Iterator[Finding]:
    for res in stack.resources():
        if res.config.get("lifecycle", {}).get("prevent_destroy"):
            yield _finding("destroyable_outside_production", stack, res.path, "lifecycle.prevent_destroy is set")
    if stack.suffix in PRODUCTION_SUFFIXES:
        return
    checks = {
        "aws_db_instance": lambda c: c.get("deletion_protection") is False and c.get("skip_final_snapshot") is True,
        "aws_s3_bucket": lambda c: c.get("force_destroy") is True,
        "aws_ecr_repository": lambda c: c.get("force_delete") is True,
        "aws_backup_vault": lambda c: c.get("force_destroy") is True,
        "aws_elasticache_replication_group": lambda c: not c.get("final_snapshot_identifier"),
        # A locked bucket can never be emptied; a locked vault keeps its recovery points.
        "aws_s3_bucket_object_lock_configuration": lambda c: False,
        "aws_backup_vault_lock_configuration": lambda c: False,
    }
    for type_, destroyable in checks.items():
        for res in stack.resources(type_):
            if not destroyable(res.config):
                yield _finding("destroyable_outside_production", stack, res.path,
                               "would block or outlive `cdktf destroy` in a non-production environment")


@rule
def production_is_protected(stack: StackJson) -> Iterator[Finding]:
    if stack.suffix not in PRODUCTION_SUFFIXES:
        return
    for res in stack.resources("aws_db_instance"):
        config = res.config
        if not (config.get("deletion_protection") is True and config.get("skip_final_snapshot") is False
                and config.get("multi_az") is True):
            yield _finding("production_is_protected", stack, res.path,
                           "production database needs deletion protection, a final snapshot and Multi-AZ")
    locked = {res.config.get("bucket") for res in stack.resources("aws_s3_bucket_object_lock_configuration")
              if (res.config.get("rule") or {}).get("default_retention", {}).get("mode") == "COMPLIANCE"}
    logged = {res.config.get("bucket") for res in stack.resources("aws_s3_bucket_logging")}
    # The compliance archives: the buckets a Firehose delivery stream writes to.
    archives = {res.config.get("extended_s3_configuration", {}).get("bucket_arn")
                for res in stack.resources("aws_kinesis_firehose_delivery_stream")}
    for res in stack.resources("aws_s3_bucket"):
        if res.config.get("force_destroy"):
            yield _finding("production_is_protected", stack, res.path, "production buckets must not force-destroy")
        if f"${{aws_s3_bucket.{res.name}.arn}}" not in archives:
            continue
        if f"${{aws_s3_bucket.{res.name}.id}}" not in locked or res.config.get("object_lock_enabled") is not True:
            yield _finding("production_is_protected", stack, res.path,
                           "production archive must be write-once (Object Lock, COMPLIANCE mode)")
        if f"${{aws_s3_bucket.{res.name}.id}}" not in logged:
            yield _finding("production_is_protected", stack, res.path, "production archive access must be logged")
    locked_vaults = {res.config.get("backup_vault_name") for res in stack.resources("aws_backup_vault_lock_configuration")}
    for res in stack.resources("aws_backup_vault"):
        if f"${{aws_backup_vault.{res.name}.name}}" not in locked_vaults:
            yield _finding("production_is_protected", stack, res.path, "production backups need a vault lock")


@rule
def vended_logs_share_one_resource_policy_statement(stack: StackJson) -> Iterator[Finding]:
    """Log delivery from ElastiCache edits the account's one CloudWatch Logs resource policy
    (5,120 characters, shared by every stack and suffix): its destinations must sit under
    /aws/vendedlogs/, which one statement of that policy covers."""
    for res in stack.resources("aws_elasticache_replication_group"):
        for delivery in res.config.get("log_delivery_configuration") or []:
            if delivery.get("destination_type") != "cloudwatch-logs":
                continue
            group = stack.by_reference(delivery.get("destination", ""))
            name = group.config.get("name") if group is not None else delivery.get("destination")
            if not isinstance(name, str) or not name.startswith(VENDED_LOGS_PREFIX):
                yield _finding("vended_logs_share_one_resource_policy_statement", stack, res.path,
                               f"{delivery.get('log_type')} is delivered to {name!r}, outside {VENDED_LOGS_PREFIX}")


@rule
def production_alarms_reach_someone(stack: StackJson) -> Iterator[Finding]:
    """In production every alarm's topic has a subscriber: an alarm that notifies nobody is no alarm."""
    if stack.suffix not in PRODUCTION_SUFFIXES:
        return
    subscribed = {s.config.get("topic_arn") for s in stack.resources("aws_sns_topic_subscription")}
    for alarm in stack.resources("aws_cloudwatch_metric_alarm"):
        for action in alarm.config.get("alarm_actions") or []:
            if "${aws_sns_topic." in str(action) and action not in subscribed:
                yield _finding("production_alarms_reach_someone", stack, alarm.path,
                               f"notifies {action}, which has no subscription")


@rule
def endpoints_are_fenced_to_this_account(stack: StackJson) -> Iterator[Finding]:
    """A VPC endpoint without a policy passes any principal to any account's resources. Every
    Allow must carry an account condition, or name the one foreign resource it is for."""
    for res in stack.resources("aws_vpc_endpoint"):
        if not res.config.get("policy"):
            yield _finding("endpoints_are_fenced_to_this_account", stack, res.path, "has no endpoint policy")
            continue
        for statement in json.loads(res.config["policy"]).get("Statement", []):
            if statement.get("Effect") != "Allow":
                continue
            keys = {key for block in (statement.get("Condition") or {}).values() for key in block}
            if not keys & {"aws:PrincipalAccount", "aws:ResourceAccount"} and "*" in _as_list(statement.get("Resource")):
                yield _finding("endpoints_are_fenced_to_this_account", stack, res.path,
                               f"statement {statement.get('Sid', '?')} passes any account's resources")


def _alarm_metrics(alarm: dict[str, Any]) -> list[dict[str, Any]]:
    """The metrics one alarm reads: its own, or each of its metric queries'."""
    if alarm.get("metric_name"):
        return [{"namespace": alarm.get("namespace"), "metric_name": alarm.get("metric_name"),
                 "dimensions": alarm.get("dimensions") or {}}]
    return [query["metric"] for query in alarm.get("metric_query") or [] if query.get("metric")]


@rule
def shard_level_metrics_are_read(stack: StackJson) -> Iterator[Finding]:
    """Shard-level (enhanced) Kinesis metrics are billed per shard and metric: a stream enables
    them only if an alarm reads a per-shard metric (a ShardId dimension) of this namespace."""
    read = any(metric.get("namespace") == "AWS/Kinesis" and "ShardId" in (metric.get("dimensions") or {})
               for alarm in stack.resources("aws_cloudwatch_metric_alarm") for metric in _alarm_metrics(alarm.config))
    for res in stack.resources("aws_kinesis_stream"):
        if res.config.get("shard_level_metrics") and not read:
            yield _finding("shard_level_metrics_are_read", stack, res.path,
                           f"enables shard-level metrics {sorted(res.config['shard_level_metrics'])} that no alarm reads")


@rule
def in_use_resources_are_replaced_create_first(stack: StackJson) -> Iterator[Finding]:
    """What AWS will not delete while it is in use (parameter groups, security groups, subnet
    groups: policy/conventions.py REPLACED_WHILE_IN_USE) is replaced new-first, under a name
    that is not the old one's: delete-first fails while attached (a security group's delete
    waits 15 minutes on its ENIs), and create-first under a fixed name collides."""
    for type_, forcing in REPLACED_WHILE_IN_USE.items():
        for res in stack.resources(type_):
            config = res.config
            if (config.get("lifecycle") or {}).get("create_before_destroy") is not True:
                yield _finding("in_use_resources_are_replaced_create_first", stack, res.path,
                               "in use, so it must be replaced create-first (lifecycle.create_before_destroy)")
            if not forcing or config.get("name_prefix"):
                continue
            name = config.get("name")
            values = tuple(str(config.get(attribute, "")) for attribute in forcing)
            if not isinstance(name, str) or replacement_digest(values) not in name:
                yield _finding("in_use_resources_are_replaced_create_first", stack, res.path,
                               f"fixed name {name!r}: a change to {' or '.join(forcing)} replaces it under the same "
                               "name; use name_prefix (or a name with replacement_digest of those arguments)")


# What makes a name differ per creation: the apply's time (held with ignore_changes) or a
# resource made with its holder (random_id, time_static).
_PER_CREATION = ("timestamp()", "${random_", "${time_static.")


@rule
def final_snapshots_are_unique_per_instance(stack: StackJson) -> Iterator[Finding]:
    """A final snapshot outlives its instance: under a fixed identifier, the teardown of a
    re-created instance fails ("snapshot already exists") and leaves the stack half destroyed."""
    for type_ in ("aws_db_instance", "aws_elasticache_replication_group", "aws_rds_cluster"):
        for res in stack.resources(type_):
            identifier = res.config.get("final_snapshot_identifier")
            if not identifier:
                continue
            if not any(marker in str(identifier) for marker in _PER_CREATION):
                yield _finding("final_snapshots_are_unique_per_instance", stack, res.path,
                               f"final snapshot identifier {identifier!r} is the same for every instance it names")
            elif "timestamp()" in str(identifier) and "final_snapshot_identifier" not in (
                    (res.config.get("lifecycle") or {}).get("ignore_changes") or []):
                yield _finding("final_snapshots_are_unique_per_instance", stack, res.path,
                               "a final snapshot identifier from timestamp() needs lifecycle.ignore_changes, "
                               "or every plan changes it")


@rule
def production_state_is_remote_and_encrypted(stack: StackJson) -> Iterator[Finding]:
    """Production state holds the Redis AUTH token in clear: it lives in S3, encrypted and
    locked, never in a local file a CI runner takes with it (stacks/state.py)."""
    if stack.suffix not in PRODUCTION_SUFFIXES:
        return
    backends = (stack.document.get("terraform") or {}).get("backend") or {}
    s3 = backends.get("s3")
    if s3 is None:
        yield _finding("production_state_is_remote_and_encrypted", stack, "terraform.backend",
                       f"production state is kept by {', '.join(sorted(backends)) or 'no backend'}, not S3")
    elif s3.get("encrypt") is not True or s3.get("use_lockfile") is not True:
        yield _finding("production_state_is_remote_and_encrypted", stack, "terraform.backend",
                       "production state in S3 must be encrypted (encrypt) and locked (use_lockfile)")


@rule
def kinesis_sourced_firehose_is_watched_at_its_source(stack: StackJson) -> Iterator[Finding]:
    """A Firehose reading a Kinesis stream that cannot read retries for ever and delivers
    nothing, so its delivery metrics go silent rather than bad: an alarm must compare what
    it reads with what the stream receives, and one must watch its data freshness."""
    watched: dict[str, set[str]] = {}
    for alarm in stack.resources("aws_cloudwatch_metric_alarm"):
        for metric in _alarm_metrics(alarm.config):
            if metric.get("namespace") == "AWS/Firehose":
                name = str((metric.get("dimensions") or {}).get("DeliveryStreamName"))
                watched.setdefault(name, set()).add(str(metric.get("metric_name")))
    for res in stack.resources("aws_kinesis_firehose_delivery_stream"):
        if not res.config.get("kinesis_source_configuration"):
            continue
        seen = watched.get(f"${{aws_kinesis_firehose_delivery_stream.{res.name}.name}}", set()) | watched.get(
            str(res.config.get("name")), set())
        for metric in ("DataReadFromKinesisStream.Records", "DeliveryToS3.DataFreshness"):
            if metric not in seen:
                yield _finding("kinesis_sourced_firehose_is_watched_at_its_source", stack, res.path,
                               f"no alarm reads its {metric}")


# Metrics of a whole stream: they do not fall as tasks are added (every reader's lag, Firehose's
# included), which target tracking needs of its metric.
_STREAM_LEVEL = {("AWS/Kinesis", "GetRecords.IteratorAgeMilliseconds"), ("AWS/Kinesis", "IncomingRecords"),
                 ("AWS/Kinesis", "IncomingBytes")}


@rule
def scaling_can_act_and_tracks_what_tasks_change(stack: StackJson) -> Iterator[Finding]:
    """A scaling policy must be able to act (a target with room between min and max, no step
    beyond that room, no more tasks than a provisioned stream has shards) and must not track a
    metric that more tasks cannot lower."""
    shards = [res.config.get("shard_count") for res in stack.resources("aws_kinesis_stream")]
    for res in stack.resources("aws_appautoscaling_target"):
        low, high = res.config.get("min_capacity"), res.config.get("max_capacity")
        if isinstance(low, int) and isinstance(high, int) and low >= high:
            yield _finding("scaling_can_act_and_tracks_what_tasks_change", stack, res.path,
                           f"min {low} = max {high}: its policies can never act (drop them; reshard to scale)")
        if (len(shards) == 1 and isinstance(shards[0], int) and isinstance(high, int) and high > shards[0]
                and not _serves_requests(stack, res)):
            yield _finding("scaling_can_act_and_tracks_what_tasks_change", stack, res.path,
                           f"max {high} tasks for {shards[0]} shards: a task without a shard idles")
    for res in stack.resources("aws_appautoscaling_policy"):
        target = stack.by_reference(str(res.config.get("resource_id", "")))
        room = None
        if target is not None and all(isinstance(target.config.get(k), int) for k in ("min_capacity", "max_capacity")):
            room = target.config["max_capacity"] - target.config["min_capacity"]
        steps = (res.config.get("step_scaling_policy_configuration") or {}).get("step_adjustment") or []
        for step in steps:
            if room is not None and abs(int(step.get("scaling_adjustment", 0))) > room:
                yield _finding("scaling_can_act_and_tracks_what_tasks_change", stack, res.path,
                               f"a step of {step.get('scaling_adjustment')} tasks exceeds the room of {room}")
        metric = (res.config.get("target_tracking_scaling_policy_configuration") or {}).get(
            "customized_metric_specification") or {}
        if (metric.get("namespace"), metric.get("metric_name")) in _STREAM_LEVEL:
            yield _finding("scaling_can_act_and_tracks_what_tasks_change", stack, res.path,
                           f"tracks the stream-level {metric.get('metric_name')}, which more tasks do not lower")


def _serves_requests(stack: StackJson, target: Resource) -> bool:
    """The scaling target's ECS service sits behind a load balancer: it serves requests and reads no
    shard (the catalog read API), so the stream's shard count does not bound its tasks."""
    for token in re.findall(r"\$\{aws_ecs_service\.[^}]+\}", str(target.config.get("resource_id", ""))):
        service = stack.by_reference(token)
        if service is not None and service.config.get("load_balancer"):
            return True
    return False


@rule
def aws_created_log_groups_are_owned(stack: StackJson) -> Iterator[Finding]:
    """A log group an AWS service would create for a feature the stack turns on (Container
    Insights, RDS log exports) is created by the stack first: with its key and retention, and
    gone with it. A group shared by the whole region (SHARED_AWS_LOG_GROUPS) is never a stack's."""
    groups = {res.config.get("name") for res in stack.resources("aws_cloudwatch_log_group")}
    expected: list[tuple[str, str]] = []
    for res in stack.resources("aws_ecs_cluster"):
        insights = {s.get("name"): s.get("value") for s in res.config.get("setting") or []}.get("containerInsights")
        if insights in ("enabled", "enhanced"):
            expected.append((res.path, container_insights_log_group(str(res.config.get("name")))))
    for res in stack.resources("aws_db_instance"):
        for export in res.config.get("enabled_cloudwatch_logs_exports") or []:
            expected.append((res.path, rds_log_group(str(res.config.get("identifier")), export)))
    for path, name in expected:
        if name not in groups:
            yield _finding("aws_created_log_groups_are_owned", stack, path,
                           f"AWS would create {name} itself, unencrypted and kept for ever: create it in the stack")
    for res in stack.resources("aws_cloudwatch_log_group"):
        if res.config.get("name") in SHARED_AWS_LOG_GROUPS:
            yield _finding("aws_created_log_groups_are_owned", stack, res.path,
                           f"{res.config['name']} is shared by the region ({SHARED_AWS_LOG_GROUPS[res.config['name']]}): "
                           "no one stack may own it")


# Rules that live in their own modules and register here: devices through IoT Core (iot_rules), and
# alarms and graphs held to what AWS, the log metric filters and the processor publish (metric_rules).
from policy import iot_rules, metric_rules  # noqa: E402,F401
