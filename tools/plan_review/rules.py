"""What makes a planned change risky. One function per rule; each yields a `Risk` per hit.

A rule sees one `Change` at a time and the `StackPlan` it belongs to. High risks fail the
review unless acknowledged (see `acknowledge`); medium risks are listed for the reviewer.
"""
from __future__ import annotations

import json
import re
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

from policy.conventions import REQUIRED_TAGS, carries_suffix
from policy.resource_types import name_attribute, resource_type
from tools.plan_review import iam
from tools.plan_review.diff import attribute_changes
from tools.plan_review.exposure import world_open
from tools.plan_review.model import Change, PlanInputError, StackPlan, configured_address

HIGH, MEDIUM = "high", "medium"
DRIFT_KEPT, DRIFT_UNDONE = "kept", "undone"
RETAIL_MIN_ARCHIVE_DAYS = 1_096  # three years
MAX_ROTATION_DAYS = 30

@dataclass(frozen=True)
class Risk:
    severity: str
    rule: str
    stack: str
    address: str
    reason: str
    acknowledged_by: str = ""
    # "" for a risk of the plan's own changes; for one found in the drift (a change made outside Terraform),
    # DRIFT_KEPT when the plan leaves it in place, DRIFT_UNDONE when applying the plan reverts it
    drift: str = ""

    @property
    def blocking(self) -> bool:
        """An unacknowledged high risk, unless it is drift this plan undoes (blocking would keep it open longer)."""
        return self.severity == HIGH and not self.acknowledged_by and self.drift != DRIFT_UNDONE


Rule = Callable[[Change, StackPlan], Iterator[Risk]]
RULES: dict[Rule, tuple[str, ...]] = {}  # each rule function and the rule ids its risks carry


def rule(*ids: str) -> Callable[[Rule], Rule]:
    """Register a rule function under the ids it reports (what the report shows and an acknowledgement names)."""
    def register(function: Rule) -> Rule:
        RULES[function] = ids
        return function
    return register


def assess(plan: StackPlan) -> list[Risk]:
    """Every risk in one stack's plan, high first, then by address."""
    found = []
    for change in plan.managed_changes():
        for check in RULES:
            try:
                found.extend(check(change, plan))
            except (TypeError, AttributeError, ValueError, KeyError, IndexError) as error:
                # a shape no provider schema gives: stop with bad input rather than pass the change unread
                raise PlanInputError(f"{plan.source}: {change.address}: the `{check.__name__}` rule cannot read this "
                                     f"change ({type(error).__name__}: {error}); nothing was reviewed") from error
    return sorted(set(found), key=lambda r: (r.severity != HIGH, r.address, r.rule, r.reason))


def _risk(severity: str, name: str, change: Change, plan: StackPlan, reason: str) -> Risk:
    return Risk(severity, name, plan.stack, change.address, reason)


def truthy(value: Any) -> bool | None:
    """Booleans as the provider writes them (some as the strings "true"/"false"); None if unset."""
    if isinstance(value, bool):
        return value
    if isinstance(value, str) and value.lower() in ("true", "false"):
        return value.lower() == "true"
    return None


def _went(change: Change, path: tuple[Any, ...], before: Any, after: Any) -> bool:
    """True when `path` goes from `before` to `after` (an update or replace), or, for a create,
    when it is set to `after`."""
    new = truthy(change.after_value(*path))
    if change.unknown(*path) or new is not after:
        return False
    return change.kind == "create" or truthy(change.before_value(*path)) is before


def _number(value: Any) -> float | None:
    if isinstance(value, bool) or value is None:
        return None
    try:
        return float(value)
    except (TypeError, ValueError):
        return None


def _shortened(change: Change, path: tuple[Any, ...], zero_means_forever: bool = False) -> tuple[float, float] | None:
    """(old, new) when a number at `path` decreases in an update or replace."""
    if change.kind not in ("update", "replace") or change.unknown(*path):
        return None
    old, new = _number(change.before_value(*path)), _number(change.after_value(*path))
    if old is None or new is None:
        return None
    if zero_means_forever:
        old, new = (float("inf") if old == 0 else old), (float("inf") if new == 0 else new)
    return (old, new) if new < old else None


def _with_parent_bucket(change: Change, plan: StackPlan) -> bool:
    """True when a deleted bucket companion (policy, encryption, public access block, versioning)
    goes because its bucket is deleted in the same plan: the bucket's delete is the risk that matters."""
    if change.kind != "delete":
        return False
    bucket = change.before_value("bucket")
    return isinstance(bucket, str) and bucket in plan.deleted_buckets


def _days(value: float) -> str:
    return "never expire" if value == float("inf") else f"{value:g}"


# -- stateful resources -------------------------------------------------------------------------------------------


@rule("stateful-replace", "stateful-delete", "stateful-forget")
def stateful_replace_delete_or_forget(change: Change, plan: StackPlan) -> Iterator[Risk]:
    if change.kind == "forget":
        what = resource_type(change.type).loses
        left = f"{what.split(':')[0].removeprefix('the ')} stays" if what else "the resource stays"
        yield _risk(MEDIUM, "stateful-forget", change, plan,
                    f"forgotten (a `removed` block): Terraform stops managing it; {left} in AWS, unprotected by "
                    "this stack's checks and still billed, until someone deletes or imports it")
        return
    lost = resource_type(change.type).loses  # policy/resource_types.py
    if not lost or change.kind not in ("replace", "delete"):
        return
    if change.kind == "delete":
        what = f"the deposed object {change.deposed} (left by an interrupted create-before-destroy replacement) is " \
            "deleted" if change.deposed else "deleted"
        yield _risk(HIGH, "stateful-delete", change, plan, f"{what}: loses {lost}")
        return
    forcing = sorted({row.path for row in attribute_changes(change) if row.forces_replacement})
    why = f"{', '.join(f'`{p}`' for p in forcing)} forces replacement" if forcing else \
        REPLACE_REASONS.get(change.action_reason, "replaced")
    if change.forgets_old:  # ["create", "forget"]: a `removed` block with destroy = false keeps the old one
        yield _risk(MEDIUM, "stateful-forget", change, plan,
                    f"{why}, but the old object is only forgotten: it stays in AWS with {lost.removeprefix('the ')}, "
                    "unmanaged and still billed, beside the new one")
        return
    yield _risk(HIGH, "stateful-replace", change, plan, f"{why}: destroys {lost}")


REPLACE_REASONS = {"replace_because_tainted": "replaced because it is tainted (a failed create or `terraform taint`)",
                   "replace_by_request": "replaced as requested (`-replace`)",
                   "replace_by_triggers": "replaced by `replace_triggered_by`"}


@rule("engine-major-upgrade")
def engine_major_upgrade(change: Change, plan: StackPlan) -> Iterator[Risk]:
    if change.type not in ("aws_db_instance", "aws_rds_cluster", "aws_elasticache_replication_group"):
        return
    if change.kind != "update" or change.unknown("engine_version"):
        return
    old, new = change.before_value("engine_version"), change.after_value("engine_version")
    engine = change.after_value("engine")
    if isinstance(old, str) and isinstance(new, str) and _major(engine, old) != _major(engine, new):
        yield _risk(HIGH, "engine-major-upgrade", change, plan,
                    f"engine major version {old} -> {new}: in place, with downtime, and cannot be rolled back")


TWO_PART_MAJORS = {"mysql": ("5",), "aurora-mysql": ("5",), "postgres": ("9",), "aurora-postgresql": ("9",),
                   "mariadb": ("5", "10")}


def _major(engine: Any, version: str) -> str:
    """The major version: `17` of 17.2, but `5.7` of MySQL 5.7.44, `9.6` of PostgreSQL 9.6.24 and `10.6` of
    MariaDB 10.6.14, whose second number was the major one."""
    parts = version.split(".")
    return ".".join(parts[:2]) if parts[0] in TWO_PART_MAJORS.get(str(engine), ()) else parts[0]


# -- encryption and TLS -------------------------------------------------------------------------------------------

KEY_ATTRIBUTES = ("kms_key_id", "kms_key_arn", "kms_master_key_id")


@rule("encryption")
def encryption_removed_or_weakened(change: Change, plan: StackPlan) -> Iterator[Risk]:
    def high(reason: str) -> Risk:
        return _risk(HIGH, "encryption", change, plan, reason)

    for flag in ("storage_encrypted", "at_rest_encryption_enabled"):
        if _went(change, (flag,), True, False):
            yield high(f"`{flag}` is off: data at rest is not encrypted")
    if change.kind in ("update", "replace"):
        for attribute in KEY_ATTRIBUTES:
            old, new = change.before_value(attribute), change.after_value(attribute)
            if old and not new and not change.unknown(attribute):
                yield high(f"`{attribute}` removed: no longer encrypted with the customer-managed key")
    if change.type == "aws_kinesis_stream" and change.after_value("encryption_type") == "NONE":
        if change.kind == "create" or change.before_value("encryption_type") == "KMS":
            yield high("stream encryption is NONE: records at rest are not encrypted")
    if change.kind in ("update", "replace", "create"):
        for attribute in KEY_ATTRIBUTES:
            old, new = change.before_value(attribute), change.after_value(attribute)
            if _aws_managed_key(new) and not _aws_managed_key(old) and not change.unknown(attribute):
                yield high(f"`{attribute}` is the AWS-managed key `{new}`: not the stack's customer-managed key "
                           "(its policy cannot be restricted or audited by this stack)")
    if change.type == "aws_kms_key" and _went(change, ("enable_key_rotation",), True, False):
        yield high("automatic key rotation turned off")
    if change.type == "aws_kms_key" and change.kind in ("update", "replace") \
            and _went(change, ("is_enabled",), True, False):
        yield high("the key is disabled: everything encrypted with it is unreadable and every write with it fails")
    if change.type == "aws_s3_bucket_server_side_encryption_configuration":
        if change.kind == "delete" and not _with_parent_bucket(change, plan):
            yield high("the bucket's default encryption configuration is removed")
        for index, _ in enumerate(change.after_value("rule") or []):
            default = ("rule", index, "apply_server_side_encryption_by_default", 0)
            old, new = change.before_value(*default, "sse_algorithm"), change.after_value(*default, "sse_algorithm")
            if new == "AES256" and (change.kind == "create" or (isinstance(old, str) and old.startswith("aws:kms"))):
                yield high("bucket encryption is SSE-S3 (AES256): not the customer-managed KMS key")
            key_path = (*default, "kms_master_key_id")
            old_key, new_key = change.before_value(*key_path), change.after_value(*key_path)
            if isinstance(new, str) and new.startswith("aws:kms") and not change.unknown(*key_path) and \
                    (new_key in (None, "") or _aws_managed_key(new_key)) and \
                    not (old_key in (None, "") or _aws_managed_key(old_key)):
                yield high("bucket encryption uses the AWS-managed key (`aws/s3`) instead of the stack's "
                           "customer-managed key")
    if change.type == "aws_kinesis_firehose_delivery_stream":
        path = ("server_side_encryption", 0, "enabled")
        if _went(change, path, True, False):
            yield high("Firehose server-side encryption turned off")


@rule("tls")
def tls_enforcement_off(change: Change, plan: StackPlan) -> Iterator[Risk]:
    def high(reason: str) -> Risk:
        return _risk(HIGH, "tls", change, plan, reason)

    if _went(change, ("transit_encryption_enabled",), True, False):
        yield high("`transit_encryption_enabled` is off: Redis traffic in clear text")
    mode = change.after_value("transit_encryption_mode")
    if mode == "preferred" and (change.kind == "create" or change.before_value("transit_encryption_mode") == "required"):
        yield high("`transit_encryption_mode` is preferred: clients may connect without TLS")
    if change.type == "aws_db_parameter_group":
        old, new = _parameter(change.before, "rds.force_ssl"), _parameter(change.after, "rds.force_ssl")
        if change.kind == "delete":  # gone with its database, or succeeded by a group that still forces TLS
            succeeded = any(c.type == change.type and c.kind in ("create", "replace")
                            and _parameter(c.after, "rds.force_ssl") == "1" for c in plan.changes)
            if succeeded or any(c.kind == "delete" for c in plan.deleted("aws_db_instance")):
                new = old
        if old == "1" and new != "1":
            yield high("`rds.force_ssl` is no longer 1: PostgreSQL accepts connections without TLS")
    if change.type in ("aws_s3_bucket_policy", "aws_s3_bucket") and not _with_parent_bucket(change, plan) \
            and not (change.type == "aws_s3_bucket" and change.kind == "delete"):
        if _bucket_policy_requires_tls(change.before) and not _bucket_policy_requires_tls(change.after) \
                and not change.unknown("policy"):
            yield high("the bucket policy no longer denies requests without TLS (aws:SecureTransport)")
    if change.type == "aws_ecs_task_definition":
        before = _container_environment(change.before)
        for name, value in _container_environment(change.after).items():
            old = before.get(name)
            if name == "DB_SSLMODE" and value in ("disable", "allow", "prefer") and old != value:
                yield high(f"the task sets DB_SSLMODE={value}: database connections may skip TLS")
            if name == "REDIS_TLS" and value.lower() in ("false", "0", "no") and old != value:
                yield high("the task sets REDIS_TLS=false: cache connections without TLS")


def _aws_managed_key(value: Any) -> bool:
    """An AWS-managed key named by alias (`alias/aws/s3`, or its ARN)."""
    return isinstance(value, str) and (value.startswith("alias/aws/") or ":alias/aws/" in value)


def _parameter(resource: Any, name: str) -> str | None:
    for parameter in (resource or {}).get("parameter") or []:
        if isinstance(parameter, dict) and parameter.get("name") == name:
            return str(parameter.get("value"))
    return None


def _bucket_policy_requires_tls(resource: Any) -> bool:
    """A bucket or bucket-policy resource's `policy` holds any Deny that names `aws:SecureTransport`."""
    policy = (resource or {}).get("policy") if isinstance(resource, dict) else None
    try:
        document = json.loads(policy) if isinstance(policy, str) else None
    except json.JSONDecodeError:
        return False
    statements = (document or {}).get("Statement", [])
    for statement in statements if isinstance(statements, list) else [statements]:
        condition = json.dumps(statement.get("Condition", {})) if isinstance(statement, dict) else ""
        if isinstance(statement, dict) and statement.get("Effect") == "Deny" and "aws:SecureTransport" in condition:
            return True
    return False


def _container_environment(resource: Any) -> dict[str, str]:
    raw = (resource or {}).get("container_definitions") if isinstance(resource, dict) else None
    try:
        containers = json.loads(raw) if isinstance(raw, str) else []
    except json.JSONDecodeError:
        return {}
    found: dict[str, str] = {}
    for container in containers if isinstance(containers, list) else []:
        for variable in container.get("environment") or []:
            if isinstance(variable, dict) and "name" in variable:
                found[str(variable["name"])] = str(variable.get("value", ""))
    return found


# -- exposure ------------------------------------------------------------------------------------------------------

PUBLIC_FLAGS = {
    "publicly_accessible": "the database gets a public endpoint",
    "map_public_ip_on_launch": "the subnet gives every network interface a public IP",
    "associate_public_ip_address": "the instance gets a public IP",
}
PUBLIC_ACLS = {"public-read": "anyone may read it", "public-read-write": "anyone may read and write it",
               "authenticated-read": "any AWS account may read it"}
PUBLIC_ACCESS_BLOCK = ("block_public_acls", "block_public_policy", "ignore_public_acls", "restrict_public_buckets")


@rule("public-access")
def public_access(change: Change, plan: StackPlan) -> Iterator[Risk]:
    for flag, consequence in PUBLIC_FLAGS.items():
        if _went(change, (flag,), False, True):
            yield _risk(HIGH, "public-access", change, plan, f"`{flag}` is on: {consequence}")
    if change.type == "aws_ecs_service" and _went(change, ("network_configuration", 0, "assign_public_ip"), False, True):
        yield _risk(HIGH, "public-access", change, plan, "`assign_public_ip` is on: tasks get public IPs")
    if change.type in ("aws_s3_bucket_acl", "aws_s3_bucket") and change.kind != "delete" and \
            change.after_value("acl") in PUBLIC_ACLS and change.before_value("acl") != change.after_value("acl"):
        yield _risk(HIGH, "public-access", change, plan,
                    f"the bucket ACL is `{change.after_value('acl')}`: {PUBLIC_ACLS[change.after_value('acl')]}")
    if change.type in ("aws_s3_bucket_public_access_block", "aws_s3_account_public_access_block"):
        whose = "the account's" if change.type == "aws_s3_account_public_access_block" else "the bucket's"
        if change.kind == "delete" and not _with_parent_bucket(change, plan):
            yield _risk(HIGH, "public-access", change, plan, f"{whose} public access block is removed")
        opened = [flag for flag in PUBLIC_ACCESS_BLOCK if _went(change, (flag,), True, False)]
        if opened:
            yield _risk(HIGH, "public-access", change, plan,
                        f"public access block relaxed: {', '.join(f'`{f}`' for f in opened)} off")


@rule("open-security-group")
def security_group_open_to_the_world(change: Change, plan: StackPlan) -> Iterator[Risk]:
    for direction, cidr, ports in _world_rules(change.type, change.after) - _world_rules(change.type, change.before):
        # (a group's inline rules only known after apply show no rule at all; `egress` unknown, as it is
        # on every new group that leaves it to AWS's default, says nothing about the ingress found)
        severity = HIGH if direction == "ingress" else MEDIUM
        yield _risk(severity, "open-security-group", change, plan, open_rule_reason(direction, cidr, ports))


def open_rule_reason(direction: str, cidr: str, ports: str) -> str:
    return f"{'ingress from' if direction == 'ingress' else 'egress to'} {cidr} on {ports}"


SEPARATE_RULES = ("aws_security_group_rule", "aws_vpc_security_group_ingress_rule", "aws_vpc_security_group_egress_rule")


def separately_managed_open_rules(plan: StackPlan) -> set[tuple[str, str]]:
    """(security group id, reason) of every world-open rule this stack manages as a resource of its own: a
    group's computed `ingress`/`egress` lists those too, so they show there as drift without being any."""
    found = set()
    for change in plan.changes:
        if change.managed and change.type in SEPARATE_RULES:
            for side in (change.before, change.after):
                for direction, cidr, ports in _world_rules(change.type, side):
                    found.add((str(side.get("security_group_id")), open_rule_reason(direction, cidr, ports)))
    return found


def _world_rules(type_: str, resource: Any) -> set[tuple[str, str, str]]:
    """(direction, cidr as the report shows it, ports) for every rule of a security group or rule resource
    open to the world (`exposure.world_open`: any spelling of it)."""
    if not isinstance(resource, dict) or type_ in NETWORK_ACLS:
        return set()
    found: set[tuple[str, str, str]] = set()

    def add(direction: str, cidrs: list[Any], rule: dict[str, Any]) -> None:
        for cidr in cidrs:
            if (shown := world_open(cidr)) is not None:
                found.add((direction, shown, _ports(rule)))

    for direction in ("ingress", "egress"):  # aws_security_group and aws_default_security_group inline rules
        for block in resource.get(direction) or []:
            if isinstance(block, dict):
                add(direction, [*(block.get("cidr_blocks") or []), *(block.get("ipv6_cidr_blocks") or [])], block)
    if resource.get("type") in ("ingress", "egress"):  # aws_security_group_rule
        add(resource["type"], [*(resource.get("cidr_blocks") or []), *(resource.get("ipv6_cidr_blocks") or [])],
            resource)
    if type_ in ("aws_vpc_security_group_ingress_rule", "aws_vpc_security_group_egress_rule"):
        direction = "ingress" if type_.endswith("ingress_rule") else "egress"
        add(direction, [resource.get("cidr_ipv4"), resource.get("cidr_ipv6")], resource)
    return found


NETWORK_ACLS = ("aws_network_acl", "aws_default_network_acl", "aws_network_acl_rule")


@rule("open-network-acl")
def network_acl_open_to_the_world(change: Change, plan: StackPlan) -> Iterator[Risk]:
    """A network ACL entry allowing the world is medium: it is AWS's default ACL, and the security groups
    still gate each interface; it says only that the subnet's own gate is open."""
    for direction, cidr, ports in _acl_world_entries(change.type, change.after) - \
            _acl_world_entries(change.type, change.before):
        verb = "allows ingress from" if direction == "ingress" else "allows egress to"
        yield _risk(MEDIUM, "open-network-acl", change, plan,
                    f"network ACL {verb} {cidr} on {ports}: only security groups stand in the way")


def _acl_world_entries(type_: str, resource: Any) -> set[tuple[str, str, str]]:
    """(direction, cidr as the report shows it, ports) for every `allow` entry of a network ACL open to the world."""
    if not isinstance(resource, dict) or type_ not in NETWORK_ACLS:
        return set()
    entries: list[tuple[str, dict[str, Any], str]] = []
    if type_ == "aws_network_acl_rule":
        entries.append(("egress" if truthy(resource.get("egress")) else "ingress", resource, "rule_action"))
    else:
        entries.extend((direction, block, "action") for direction in ("ingress", "egress")
                       for block in resource.get(direction) or [] if isinstance(block, dict))
    found: set[tuple[str, str, str]] = set()
    for direction, entry, action in entries:
        if str(entry.get(action) or "").lower() != "allow":
            continue
        for cidr in (entry.get("cidr_block"), entry.get("ipv6_cidr_block")):
            if (shown := world_open(cidr)) is not None:
                found.add((direction, shown, _ports(entry)))
    return found


def _ports(rule: dict[str, Any]) -> str:
    protocol = str(rule.get("ip_protocol") or rule.get("protocol") or "")
    low, high = rule.get("from_port"), rule.get("to_port")
    if protocol in ("-1", "all") or (low in (None, 0) and high in (None, 0, 65535)):
        return "all ports"
    return f"{protocol} {low}" if low == high else f"{protocol} {low}-{high}"


# -- IAM ----------------------------------------------------------------------------------------------------------


MANAGED_ATTACHMENTS = {"aws_iam_role_policy_attachment": "policy_arn", "aws_iam_user_policy_attachment": "policy_arn",
                       "aws_iam_group_policy_attachment": "policy_arn", "aws_iam_policy_attachment": "policy_arn",
                       "aws_iam_role_policy_attachments_exclusive": "policy_arns"}


@rule("iam-wildcard", "iam-gain")
def policy_gains(change: Change, plan: StackPlan) -> Iterator[Risk]:
    if change.type in MANAGED_ATTACHMENTS:
        if change.kind in ("create", "replace", "update"):
            attribute = MANAGED_ATTACHMENTS[change.type]
            after, before = change.after_value(attribute), change.before_value(attribute)
            arns = set(after if isinstance(after, list) else [after]) - \
                set(before if isinstance(before, list) else [before])
            for arn in sorted(a for a in arns if isinstance(a, str)):
                if iam.broad_managed_policy(arn):
                    yield _risk(HIGH, "iam-wildcard", change, plan,
                                f"attaches the managed policy `{arn}`: administrator or full-access scope")
                else:
                    yield _risk(MEDIUM, "iam-gain", change, plan, f"attaches the managed policy `{arn}`")
        return
    if change.type not in iam.POLICY_ATTRIBUTES or change.kind == "delete":
        return
    attribute, resource_policy = iam.POLICY_ATTRIBUTES[change.type]
    yield from _document_gains(change, plan, attribute, resource_policy, (attribute,))
    if change.type == "aws_iam_role":  # inline_policy blocks: identity policies kept on the role itself
        for index, _ in enumerate(change.after_value("inline_policy") or []):
            yield from _document_gains(change, plan, "inline_policy", False, ("inline_policy", index, "policy"))


def _document_gains(change: Change, plan: StackPlan, attribute: str, resource_policy: bool,
                    path: tuple[Any, ...]) -> Iterator[Risk]:
    """What one policy document of a change grants that it did not, and the Denies it drops."""
    if change.unknown(*path):
        # a policy the resource may leave unset (AWS fills in a default) is unknown on every create: noise
        if change.kind != "create" or change.type not in iam.OPTIONAL_POLICIES:
            yield _risk(MEDIUM, "iam-gain", change, plan,
                        f"`{attribute}` is known only after apply: review the policy in the synthesized JSON")
        yield from _deferred_document_wildcards(change, plan, attribute, resource_policy)
        return
    old_document = change.before_value(*path) if change.kind != "create" else None
    if path[0] == "inline_policy":  # the same policy by name, wherever it sits in the list
        name = change.after_value("inline_policy", path[1], "name")
        old_document = next((b.get("policy") for b in change.before_value("inline_policy") or []
                             if isinstance(b, dict) and b.get("name") == name), None)
    try:
        before = iam.grants(old_document)
        added = iam.gained(iam.grants(change.after_value(*path)), before)
        dropped = {d for d in iam.gained(iam.grants(old_document, "Deny"), iam.grants(change.after_value(*path), "Deny"))
                   if "aws:SecureTransport" not in d.condition}  # that one is the tls rule's
    except iam.PolicyParseError as error:
        yield _risk(MEDIUM, "iam-gain", change, plan, f"`{attribute}`: {error}")
        return
    if dropped:
        yield _risk(MEDIUM, "iam-gain", change, plan, f"a Deny is dropped: {iam.summarize(dropped)} is no longer denied")
    if not added:
        return
    wide = {g for g in added if g.wildcard(resource_policy, plan.accounts)}
    if wide:
        yield _risk(HIGH, "iam-wildcard", change, plan, f"wildcard granted: {iam.summarize(wide)}")
    narrow = added - wide
    if narrow:
        verb = "grants" if change.kind == "create" else "gains"
        yield _risk(MEDIUM, "iam-gain", change, plan, f"{verb} {iam.summarize(narrow)}")
        unconditioned = {g for g in narrow if not g.condition
                         and any(b.condition and (b.action, b.resource, b.principal) == (g.action, g.resource, g.principal)
                                 for b in before)}
        if unconditioned:
            yield _risk(MEDIUM, "iam-gain", change, plan, f"condition dropped from {iam.summarize(unconditioned)}")


def _deferred_document_wildcards(change: Change, plan: StackPlan, attribute: str,
                                 resource_policy: bool) -> Iterator[Risk]:
    """A policy unknown because the `aws_iam_policy_document` it reads waits for apply (it names a resource
    not yet created) still shows its constant actions and principals there: a wildcard among them is one."""
    sources = plan.data_references.get(configured_address(change.address), {}).get(attribute, ())
    for source in sources:
        for data in plan.changes:
            if data.mode != "data" or data.type != "aws_iam_policy_document" or configured_address(data.address) != source:
                continue
            wide = {g for g in iam.document_grants(data.after) if g.wildcard(resource_policy, plan.accounts)}
            if wide:
                yield _risk(HIGH, "iam-wildcard", change, plan,
                            f"wildcard granted (by `{data.address}`, read at apply): {iam.summarize(wide)}")


# -- protection, retention, rotation ------------------------------------------------------------------------------

RETENTION = {
    ("aws_db_instance", "backup_retention_period"): "backup retention (days)",
    ("aws_rds_cluster", "backup_retention_period"): "backup retention (days)",
    ("aws_elasticache_replication_group", "snapshot_retention_limit"): "snapshot retention (days)",
    ("aws_cloudwatch_log_group", "retention_in_days"): "log retention (days)",
    ("aws_kinesis_stream", "retention_period"): "stream retention (hours)",
    ("aws_kms_key", "deletion_window_in_days"): "key deletion window (days)",
}


@rule("protection")
def protection_and_retention(change: Change, plan: StackPlan) -> Iterator[Risk]:
    def high(reason: str) -> Risk:
        return _risk(HIGH, "protection", change, plan, reason)

    if change.kind in ("update", "replace") and _went(change, ("deletion_protection",), True, False):
        yield high("deletion protection turned off")
    if change.kind in ("update", "replace") and _went(change, ("skip_final_snapshot",), False, True):
        yield high("`skip_final_snapshot` on: a delete keeps no final snapshot")
    for (type_, attribute), what in RETENTION.items():
        if change.type == type_:
            shortened = _shortened(change, (attribute,), zero_means_forever=attribute == "retention_in_days")
            if shortened:
                yield high(f"{what} shortened from {_days(shortened[0])} to {_days(shortened[1])}")
    if change.type == "aws_backup_plan":
        for index, _ in enumerate(change.after_value("rule") or []):
            shortened = _shortened(change, ("rule", index, "lifecycle", 0, "delete_after"))
            if shortened:
                yield high(f"backups kept {shortened[1]:g} days instead of {shortened[0]:g}")
    if change.type == "aws_s3_bucket_lifecycle_configuration":
        yield from _archive_expiry(change, plan)
    if change.type == "aws_s3_bucket" and change.kind != "delete" and _went(change, ("force_destroy",), False, True):
        if change.kind != "create" or plan.production:
            yield high("`force_destroy` on: deleting the bucket deletes every object (and version) in it")
    if change.type == "aws_s3_bucket_versioning":
        path = ("versioning_configuration", 0, "status")
        old, new = change.before_value(*path), change.after_value(*path)
        if change.kind == "delete" and old == "Enabled" and not _with_parent_bucket(change, plan):
            yield high("the bucket's versioning configuration is removed: overwrites and deletes lose the old data")
        elif old == "Enabled" and new in ("Suspended", "Disabled") and not change.unknown(*path):
            yield high(f"versioning {new.lower()}: overwrites and deletes lose the old data for good")
    if change.type in BACKUPS and change.kind == "delete" and not _replaced_alongside(change, plan):
        yield high(f"the database's {BACKUPS[change.type]} is deleted: no new backups are taken")


BACKUPS = {"aws_backup_plan": "backup plan", "aws_backup_selection": "backup selection"}


def _replaced_alongside(change: Change, plan: StackPlan) -> bool:
    """A backup plan or selection deleted while another of its type is created (moved, not dropped),
    or together with the database it backs up (the database's delete is the risk that matters)."""
    return any(c.type == change.type and c.kind == "create" for c in plan.changes) or \
        any(c.kind == "delete" for c in plan.deleted("aws_db_instance"))


def _archive_expiry(change: Change, plan: StackPlan) -> Iterator[Risk]:
    for index, rule_ in enumerate(change.after_value("rule") or []):
        if not isinstance(rule_, dict) or rule_.get("status") != "Enabled":
            continue
        days = _number(change.after_value("rule", index, "expiration", 0, "days"))
        if days is None or change.unknown("rule", index, "expiration", 0, "days"):
            continue
        if plan.workload == "retail" and days < RETAIL_MIN_ARCHIVE_DAYS:
            yield _risk(HIGH, "protection", change, plan,
                        f"archive expires after {days:g} days: retail keeps data at least 3 years "
                        f"({RETAIL_MIN_ARCHIVE_DAYS} days)")
        elif (shortened := _shortened(change, ("rule", index, "expiration", 0, "days"))) is not None:
            yield _risk(HIGH, "protection", change, plan,
                        f"archive expiry shortened from {shortened[0]:g} to {shortened[1]:g} days")


ROTATION_RATE = re.compile(r"rate\(\s*(\d+)\s+days?\s*\)")


@rule("rotation")
def rotation(change: Change, plan: StackPlan) -> Iterator[Risk]:
    if change.type != "aws_secretsmanager_secret_rotation":
        return
    if change.kind == "delete":
        secret = change.before_value("secret_id")
        with_secret = any(c.kind == "delete" and secret in (c.before_value("arn"), c.before_value("id"))
                          for c in plan.deleted("aws_secretsmanager_secret"))
        with_database = any(c.kind == "delete" for c in plan.deleted("aws_db_instance"))
        if not (with_secret or with_database):  # else it goes with what it rotates
            yield _risk(HIGH, "rotation", change, plan, "secret rotation removed")
        return
    days = _number(change.after_value("rotation_rules", 0, "automatically_after_days"))
    expression = change.after_value("rotation_rules", 0, "schedule_expression")
    if days is None and isinstance(expression, str) and (match := ROTATION_RATE.search(expression)):
        days = float(match.group(1))
    if days is not None and days > MAX_ROTATION_DAYS:
        yield _risk(HIGH, "rotation", change, plan,
                    f"credentials rotate every {days:g} days (at most {MAX_ROTATION_DAYS} allowed)")


# -- tags and names ------------------------------------------------------------------------------------------------


@rule("tags-and-suffix")
def new_resources_are_tagged_and_suffixed(change: Change, plan: StackPlan) -> Iterator[Risk]:
    if change.kind not in ("create", "replace") or not isinstance(change.after, dict):
        return
    if "tags_all" in change.after or "tags" in change.after:
        tags_path = "tags_all" if "tags_all" in change.after else "tags"
        if not change.unknown(tags_path):
            tags = change.after_value(tags_path) or {}
            missing = [key for key in REQUIRED_TAGS if key not in tags]
            if missing:
                yield _risk(MEDIUM, "tags-and-suffix", change, plan, f"new resource lacks tags: {', '.join(missing)}")
    attribute = name_attribute(change.type)
    name = change.after_value(attribute)
    if isinstance(name, str) and not change.unknown(attribute) and not carries_suffix(name, plan.suffix):
        yield _risk(MEDIUM, "tags-and-suffix", change, plan,
                    f"name `{name}` does not carry the environment suffix `{plan.suffix}`")



# Every id a Risk's `rule` can take (what the report shows and an acknowledgement names).
RISK_RULES: tuple[str, ...] = tuple(id_ for ids in RULES.values() for id_ in ids)
