"""A stack's monthly cost, as a pure function of its resources, the price table and the usage.

Every resource ends up in exactly one place: a priced `Line` (fixed: what it costs before a
single record flows; traffic: what the stated usage adds), `free` (with why), or `unpriced`
(with why: a type the table does not know, or a value known only after apply). Nothing is
priced at zero silently.
"""
from __future__ import annotations

import math
import re
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any

from policy.resource_types import resource_type
from tools.cost.prices import PriceError, PriceTable
from tools.json_path import dig

GB = 1_000_000_000
MINUTES_PER_MONTH = 730 * 60
DAYS_PER_MONTH = 730 / 24
FIXED, TRAFFIC = "fixed", "traffic"
TOKEN_REFERENCE = re.compile(r"\$\{([a-z0-9_]+\.[A-Za-z0-9_-]+)(?:\.[^}]*)?\}")


@dataclass(frozen=True)
class Resource:
    """One managed resource: its values (synthesized config or a plan's before/after) and, per
    attribute, the addresses that attribute refers to (from `${...}` tokens or the plan's configuration)."""
    address: str
    type: str
    values: dict[str, Any]
    refs: dict[str, tuple[str, ...]] = field(default_factory=dict)

    def get(self, *path: Any) -> Any:
        return dig(self.values, path, single_blocks=True)


@dataclass(frozen=True)
class Usage:
    """What drives the per-unit items: stated per stack (tools/cost/usage.py), never guessed here."""
    records_per_minute: float
    record_bytes: int
    processor_log_gb_month: float  # the processor's JSON logs and EMF metric lines
    flow_log_gb_month: float  # VPC flow logs
    other_log_gb_month: float  # each other log group (DB, Redis, migrations, Firehose errors)
    database_gb: float  # what PostgreSQL holds (backups copy it)
    image_gb: float  # one processor image in ECR
    archive_compression: float  # GZIP on the JSON records
    archive_months: int  # archive storage is shown after this many months of growth
    api_records_per_request: float = 100.0  # how many records a supplier's request carries (batching)
    # Devices through IoT Core (a stack with a topic rule): how many stay connected, the readings
    # they send, how many go in one message and a message's size.
    devices: int = 0
    device_readings_per_minute: float = 0.0
    readings_per_message: int = 1
    device_message_bytes: int = 0
    # The storefront's reads of the catalog read API (a stack with its ALB): requests a second, the bytes
    # each carries through the ALB (request headers and the JSON answer), and how many requests a caller
    # sends down one kept-alive connection.
    catalog_reads_per_second: float = 0.0
    catalog_bytes_per_read: int = 0
    catalog_reads_per_connection: float = 100.0
    catalog_access_log_bytes_per_read: float = 0.0  # what each read adds to the ALB's access logs in S3 (gzipped)
    # The tasks each ECS service (by name) needs to keep up with the traffic above; an autoscaled
    # service runs at least its floor, and a service not named here runs only that.
    tasks_needed: Mapping[str, int] = field(default_factory=dict)

    @property
    def records_per_month(self) -> float:
        return self.records_per_minute * MINUTES_PER_MONTH

    @property
    def stream_gb_month(self) -> float:
        return self.records_per_month * self.record_bytes / GB


@dataclass(frozen=True)
class Line:
    address: str
    type: str
    service: str
    monthly: float
    basis: str  # how the figure is made, in words and numbers
    kind: str = FIXED


@dataclass(frozen=True)
class StackCost:
    stack: str
    region: str
    lines: tuple[Line, ...]
    free: tuple[tuple[str, str], ...]  # (address, why it is free)
    unpriced: tuple[tuple[str, str], ...]  # (address, why it has no figure)

    def total(self, kind: str | None = None) -> float:
        return sum(line.monthly for line in self.lines if kind is None or line.kind == kind)

    def by_service(self, kind: str | None = None) -> dict[str, float]:
        found: dict[str, float] = {}
        for line in self.lines:
            if kind is None or line.kind == kind:
                found[line.service] = found.get(line.service, 0.0) + line.monthly
        return dict(sorted(found.items(), key=lambda item: -item[1]))

    def per_resource(self) -> dict[str, float]:
        found: dict[str, float] = {}
        for line in self.lines:
            found[line.address] = found.get(line.address, 0.0) + line.monthly
        return found


class Unpriceable(Exception):
    """This resource cannot be priced; the message says why."""


Context = dict[str, Resource]
Pricer = Callable[[Resource, "Pricing"], Iterator[Line]]
PRICERS: dict[str, Pricer] = {}


def prices(*types: str) -> Callable[[Pricer], Pricer]:
    def register(function: Pricer) -> Pricer:
        for type_ in types:
            PRICERS[type_] = function
        return function
    return register


@dataclass(frozen=True)
class Pricing:
    """What a pricer sees: the table, the stack's region, its usage (None: fixed costs only) and the
    stack's other resources (to follow a reference)."""
    table: PriceTable
    region: str
    usage: Usage | None
    resources: Context

    def price(self, key: str, size: str | None = None) -> float:
        return self.table.price(self.region, key, size)

    @property
    def hours(self) -> float:
        return self.table.hours_per_month

    def usage_for(self, billed: str) -> Usage:
        """The usage a traffic-driven item needs; without one (a plan's review) the item is not priced, saying why."""
        if self.usage is None:
            raise Unpriceable(f"billed {billed} (see `make cost`)")
        return self.usage

    def referenced(self, resource: Resource, attribute: str, type_: str) -> Resource | None:
        for address in resource.refs.get(attribute, ()):
            found = self.resources.get(address)
            if found is not None and found.type == type_:
                return found
        return None

    def referring(self, resource: Resource, type_: str, attribute: str) -> Iterator[Resource]:
        """The resources of `type_` whose `attribute` refers to `resource`."""
        return (r for r in self.resources.values() if r.type == type_ and resource.address in r.refs.get(attribute, ()))


def estimate(stack: str, region: str, resources: list[Resource], table: PriceTable, usage: Usage | None) -> StackCost:
    context = {r.address: r for r in resources}
    pricing = Pricing(table, region, usage, context)
    lines: list[Line] = []
    free: list[tuple[str, str]] = []
    unpriced: list[tuple[str, str]] = []
    for resource in sorted(resources, key=lambda r: r.address):
        if resource.type in PRICERS:
            try:
                found = list(PRICERS[resource.type](resource, pricing))
            except (Unpriceable, PriceError) as error:
                unpriced.append((resource.address, str(error)))
                continue
            if found:
                lines.extend(found)
            else:
                free.append((resource.address, "free at this configuration"))
        elif why_free := resource_type(resource.type).free:  # policy/resource_types.py
            free.append((resource.address, why_free))
        else:
            unpriced.append((resource.address, f"`{resource.type}` is not in the price table"))
    return StackCost(stack, region, tuple(lines), tuple(free), tuple(unpriced))


def _number(resource: Resource, *path: Any) -> float:
    value = resource.get(*path)
    if isinstance(value, bool) or value is None:
        raise Unpriceable(f"`{'.'.join(map(str, path))}` is not set or known only after apply")
    try:
        return float(value)
    except (TypeError, ValueError):
        raise Unpriceable(f"`{'.'.join(map(str, path))}` = {value!r} is not a number") from None


def _text(resource: Resource, *path: Any) -> str:
    value = resource.get(*path)
    if not isinstance(value, str) or value.startswith("${"):
        raise Unpriceable(f"`{'.'.join(map(str, path))}` is not set or known only after apply")
    return value


# -- compute and streams --------------------------------------------------------------------------------------------


@prices("aws_ecs_service")
def ecs_service(resource: Resource, pricing: Pricing) -> Iterator[Line]:
    """A service's tasks by their vCPU and memory hours. With an autoscaling target, what runs before any
    traffic is the target's floor (with nothing to do, its scale-in brings the service there from the
    desired count it starts at); the tasks the stated traffic needs beyond the floor, up to the target's
    ceiling, are traffic's (`Usage.tasks_needed`, by service name)."""
    task = pricing.referenced(resource, "task_definition", "aws_ecs_task_definition")
    if task is None:
        raise Unpriceable("its task definition is not in this stack")
    desired = _number(resource, "desired_count")
    floor = ceiling = desired
    target = next(pricing.referring(resource, "aws_appautoscaling_target", "resource_id"), None)
    if target is not None:
        floor, ceiling = _number(target, "min_capacity"), _number(target, "max_capacity")
    vcpu, gb = _number(task, "cpu") / 1024, _number(task, "memory") / 1024
    architecture = str(task.get("runtime_platform", 0, "cpu_architecture") or "X86_64").lower()
    per_hour = vcpu * pricing.price(f"fargate_{architecture}_vcpu_hour") + gb * pricing.price(f"fargate_{architecture}_gb_hour")
    size = f"({vcpu:g} vCPU + {gb:g} GB {architecture}) × {pricing.hours:g} h"
    scaled_in = f" (autoscaling's floor; it starts at {desired:g})" if floor < desired else ""
    yield Line(resource.address, resource.type, "Fargate", floor * per_hour * pricing.hours,
               f"{floor:g} task(s){scaled_in} × {size}")
    needed = pricing.usage.tasks_needed.get(resource.get("name"), 0) if pricing.usage is not None else 0
    extra = min(max(needed, floor), ceiling) - floor
    if extra > 0:
        yield Line(resource.address, resource.type, "Fargate", extra * per_hour * pricing.hours,
                   f"{extra:g} task(s) beyond the floor for the stated traffic (it needs {needed:g}) × {size}", TRAFFIC)


@prices("aws_kinesis_stream")
def kinesis_stream(resource: Resource, pricing: Pricing) -> Iterator[Line]:
    mode = resource.get("stream_mode_details", 0, "stream_mode")
    retention = _number(resource, "retention_period") if resource.get("retention_period") is not None else 24
    if mode == "ON_DEMAND":
        yield Line(resource.address, resource.type, "Kinesis", pricing.price("kinesis_on_demand_stream_hour") * pricing.hours,
                   f"on-demand: one stream × {pricing.hours:g} h")
        usage = pricing.usage
        if usage is not None:
            ingested = usage.records_per_month * math.ceil(usage.record_bytes / 1_000) * 1_000 / GB
            readers = 1 + sum(1 for _ in pricing.referring(resource, "aws_kinesis_firehose_delivery_stream",
                                                           "kinesis_source_configuration"))
            retained = usage.stream_gb_month * max(0.0, retention - 24) / 24 / DAYS_PER_MONTH
            cost = (ingested * pricing.price("kinesis_on_demand_ingest_gb")
                    + readers * usage.stream_gb_month * pricing.price("kinesis_on_demand_retrieval_gb")
                    + retained * pricing.price("kinesis_on_demand_extended_retention_gb_month"))
            yield Line(resource.address, resource.type, "Kinesis", cost,
                       f"{ingested:,.1f} GB in (records rounded up to 1 KB), read by {readers} consumer(s), "
                       f"{retained:,.1f} GB held beyond 24 h", TRAFFIC)
        return
    shards = _number(resource, "shard_count")
    yield Line(resource.address, resource.type, "Kinesis", shards * pricing.price("kinesis_shard_hour") * pricing.hours,
               f"{shards:g} shard(s) × {pricing.hours:g} h")
    if retention > 24:
        yield Line(resource.address, resource.type, "Kinesis",
                   shards * pricing.price("kinesis_extended_retention_shard_hour") * pricing.hours,
                   f"extended retention ({retention:g} h): {shards:g} shard(s) × {pricing.hours:g} h")
    if pricing.usage is not None:
        units = pricing.usage.records_per_month * math.ceil(pricing.usage.record_bytes / 25_000)
        yield Line(resource.address, resource.type, "Kinesis",
                   units / 1e6 * pricing.price("kinesis_put_payload_units_per_million"),
                   f"{units / 1e6:,.1f} M PUT payload units (one per record up to 25 KB)", TRAFFIC)


@prices("aws_kinesis_firehose_delivery_stream")
def firehose(resource: Resource, pricing: Pricing) -> Iterator[Line]:
    usage = pricing.usage_for("per GB ingested: depends on traffic")
    billed_gb = usage.records_per_month * math.ceil(usage.record_bytes / 5_000) * 5_000 / GB
    yield Line(resource.address, resource.type, "Firehose", billed_gb * pricing.price("firehose_gb"),
               f"{billed_gb:,.0f} GB billed: {usage.records_per_month / 1e6:,.1f} M records, each rounded "
               f"up to 5 KB ({usage.record_bytes} B each)", TRAFFIC)


@prices("aws_iot_topic_rule")
def iot_topic_rule(resource: Resource, pricing: Pricing) -> Iterator[Line]:
    """What the devices cost through this rule: their connection minutes, each message (unless they
    publish through Basic Ingest, straight to the rule: the device policies say where they may
    publish), the rule triggered and each action executed per message, all in 5 KB units."""
    usage = pricing.usage_for("per message and connection-minute: depends on the devices")
    if not usage.devices:
        raise Unpriceable("the usage states no devices (tools/cost/usage.py)")
    messages = usage.device_readings_per_minute * MINUTES_PER_MONTH / usage.readings_per_message
    units = messages * math.ceil(max(usage.device_message_bytes, 1) / IOT_METERING_BYTES)
    actions = len(resource.get("kinesis") or []) + len(resource.get("firehose") or []) + len(resource.get("sqs") or [])
    minutes = usage.devices * MINUTES_PER_MONTH
    shape = (f"{usage.devices} devices, {messages / 1e6:,.1f} M messages of {usage.readings_per_message} reading(s) "
             f"({usage.device_message_bytes:,} B)")
    yield Line(resource.address, resource.type, "IoT Core", minutes / 1e6 * pricing.price("iot_connection_minutes_per_million"),
               f"{usage.devices} devices connected all month: {minutes / 1e6:,.1f} M connection-minutes", TRAFFIC)
    if not _basic_ingest_only(pricing):
        yield Line(resource.address, resource.type, "IoT Core", units / 1e6 * pricing.price("iot_messages_per_million"),
                   f"messaging: {shape}, billed per 5 KB", TRAFFIC)
    yield Line(resource.address, resource.type, "IoT Core",
               units / 1e6 * (pricing.price("iot_rules_triggered_per_million")
                              + actions * pricing.price("iot_actions_executed_per_million")),
               f"rule triggered and {actions} action(s) per message: {shape}"
               + (" (Basic Ingest: no messaging charge)" if _basic_ingest_only(pricing) else ""), TRAFFIC)


IOT_METERING_BYTES = 5 * 1024


def _basic_ingest_only(pricing: Pricing) -> bool:
    """Every device policy of the stack lets devices publish only to Basic Ingest topics ($aws/rules/...)."""
    import json

    topics = []
    for policy in (r for r in pricing.resources.values() if r.type == "aws_iot_policy"):
        for statement in json.loads(str(policy.get("policy") or "{}")).get("Statement", []):
            actions = statement.get("Action")
            if "iot:Publish" in ([actions] if isinstance(actions, str) else actions or []):
                resources = statement.get("Resource")
                topics += [resources] if isinstance(resources, str) else resources or []
    return bool(topics) and all(":topic/$aws/rules/" in topic for topic in topics)


# -- databases and caches -------------------------------------------------------------------------------------------


@prices("aws_db_instance")
def db_instance(resource: Resource, pricing: Pricing) -> Iterator[Line]:
    size = _text(resource, "instance_class")
    multi_az = resource.get("multi_az") in (True, "true")
    copies = 2 if multi_az else 1
    where = "Multi-AZ" if multi_az else "single-AZ"
    yield Line(resource.address, resource.type, "RDS", copies * pricing.price("rds_postgres_instance_hour", size) * pricing.hours,
               f"{size} {where} × {pricing.hours:g} h")
    storage = _number(resource, "allocated_storage")
    yield Line(resource.address, resource.type, "RDS", copies * storage * pricing.price("rds_gp3_gb_month"),
               f"{storage:g} GB gp3{' × 2 (Multi-AZ)' if multi_az else ''}")
    retention = resource.get("performance_insights_retention_period")
    if resource.get("performance_insights_enabled") in (True, "true") and isinstance(retention, int | float) \
            and retention > 7:
        vcpus = pricing.table.vcpu(size) * copies
        yield Line(resource.address, resource.type, "RDS", vcpus * pricing.price("database_insights_vcpu_hour") * pricing.hours,
                   f"Performance Insights kept {retention:g} days (beyond the free 7): {vcpus} vCPU × {pricing.hours:g} h")
    if resource.get("manage_master_user_password") in (True, "true"):
        yield Line(resource.address, resource.type, "Secrets Manager", pricing.price("secret_month"),
                   "the RDS-managed master secret")


@prices("aws_elasticache_replication_group")
def replication_group(resource: Resource, pricing: Pricing) -> Iterator[Line]:
    size = _text(resource, "node_type")
    nodes = _number(resource, "num_cache_clusters")
    yield Line(resource.address, resource.type, "ElastiCache",
               nodes * pricing.price("elasticache_node_hour", size) * pricing.hours, f"{nodes:g} × {size} × {pricing.hours:g} h")


# -- network --------------------------------------------------------------------------------------------------------


@prices("aws_vpc_endpoint")
def vpc_endpoint(resource: Resource, pricing: Pricing) -> Iterator[Line]:
    if resource.get("vpc_endpoint_type") != "Interface":
        return  # a gateway endpoint (S3) is free
    subnets = resource.get("subnet_ids")
    zones = len(subnets) if isinstance(subnets, list) and subnets else len(resource.refs.get("subnet_ids", ()))
    if not zones:
        raise Unpriceable("its subnets are known only after apply")
    service = str(resource.get("service_name") or "").split(f".{pricing.region}.", 1)[-1]
    yield Line(resource.address, resource.type, "VPC endpoints",
               zones * pricing.price("interface_endpoint_az_hour") * pricing.hours,
               f"{service}: {zones} AZ(s) × {pricing.hours:g} h")
    usage = pricing.usage
    if usage is not None and service in ("kinesis-streams", "logs"):
        gb = usage.stream_gb_month if service == "kinesis-streams" else (
            usage.processor_log_gb_month + usage.other_log_gb_month)
        yield Line(resource.address, resource.type, "VPC endpoints", gb * pricing.price("interface_endpoint_gb"),
                   f"{gb:,.1f} GB processed", TRAFFIC)


# -- storage --------------------------------------------------------------------------------------------------------


@prices("aws_s3_bucket")
def s3_bucket(resource: Resource, pricing: Pricing) -> Iterator[Line]:
    usage = pricing.usage_for("per GB stored: depends on traffic")
    archived_by = next(pricing.referring(resource, "aws_kinesis_firehose_delivery_stream", "extended_s3_configuration"), None)
    logged_by = next(pricing.referring(resource, "aws_lb", "access_logs"), None)
    if logged_by is not None:
        yield _alb_access_logs(resource, logged_by, pricing, usage)
        return
    if archived_by is None:  # the archive's S3 server access-log bucket: a few MB a month
        yield Line(resource.address, resource.type, "S3", 1 * pricing.price("s3_standard_gb_month"),
                   "about 1 GB of access logs (assumed)", TRAFFIC)
        return
    monthly_gb = usage.stream_gb_month / usage.archive_compression
    standard_days, ia_days, expiry = _lifecycle(resource, pricing)
    age_days = usage.archive_months * DAYS_PER_MONTH
    held = {  # GB per class after `archive_months` of steady growth
        "s3_standard_gb_month": min(age_days, standard_days),
        "s3_standard_ia_gb_month": max(0.0, min(age_days, ia_days) - standard_days),
        "s3_glacier_flexible_gb_month": max(0.0, min(age_days, expiry) - ia_days),
    }
    cost = sum(days / DAYS_PER_MONTH * monthly_gb * pricing.price(key) for key, days in held.items())
    interval = archived_by.get("extended_s3_configuration", 0, "buffering_interval")
    objects = MINUTES_PER_MONTH * 60 / float(interval or 300)  # Firehose writes an object per buffering interval
    cost += objects / 1000 * pricing.price("s3_put_per_thousand")
    yield Line(resource.address, resource.type, "S3", cost,
               f"month {usage.archive_months}: {monthly_gb:,.1f} GB a month (GZIP {usage.archive_compression:g}:1), "
               f"Standard {standard_days:g} d → Standard-IA → Glacier at {ia_days:g} d, expired at {expiry:g} d", TRAFFIC)


def _alb_access_logs(bucket: Resource, balancer: Resource, pricing: Pricing, usage: Usage) -> Line:
    """A load balancer's access-log bucket: a line per request, gzipped, held until the lifecycle expires it
    (shown after `archive_months` of growth, as the archive is), and the objects ELB puts: one per node
    (one per subnet) every five minutes. ELB itself charges nothing for delivering them."""
    monthly_gb = usage.catalog_reads_per_second * MINUTES_PER_MONTH * 60 * usage.catalog_access_log_bytes_per_read / GB
    expiry = _expiry_days(bucket, pricing)
    held_gb = monthly_gb * min(usage.archive_months * DAYS_PER_MONTH, expiry) / DAYS_PER_MONTH
    subnets = balancer.get("subnets")
    nodes = len(subnets) if isinstance(subnets, list) else 2  # a token list: at least two zones
    objects = MINUTES_PER_MONTH / 5 * nodes
    cost = held_gb * pricing.price("s3_standard_gb_month") + objects / 1000 * pricing.price("s3_put_per_thousand")
    return Line(bucket.address, bucket.type, "S3", cost,
                f"ALB access logs of {usage.catalog_reads_per_second:g} reads/s: {monthly_gb:,.1f} GB a month, "
                f"expired at {expiry:g} d: {held_gb:,.1f} GB held in month {usage.archive_months}; "
                f"{objects:,.0f} objects a month", TRAFFIC)


def _enabled_lifecycle_rules(bucket: Resource, pricing: Pricing) -> Iterator[tuple[dict[str, Any], float | None]]:
    """Each enabled rule of the bucket's lifecycle configurations, and its expiry day (None without one)."""
    for config in pricing.referring(bucket, "aws_s3_bucket_lifecycle_configuration", "bucket"):
        for rule in config.get("rule") or []:
            if isinstance(rule, dict) and rule.get("status") == "Enabled":
                expiry = Resource(config.address, config.type, rule).get("expiration", 0, "days")
                yield rule, float(expiry) if isinstance(expiry, int | float) else None


def _expiry_days(bucket: Resource, pricing: Pricing) -> float:
    for _, expiry in _enabled_lifecycle_rules(bucket, pricing):
        if expiry is not None:
            return expiry
    raise Unpriceable("no enabled lifecycle rule with an expiry: the logs would be held for ever")


def _lifecycle(bucket: Resource, pricing: Pricing) -> tuple[float, float, float]:
    """(days in Standard, day it leaves Standard-IA, expiry day) from the bucket's lifecycle rules."""
    for rule, expiry in _enabled_lifecycle_rules(bucket, pricing):
        transitions = {t.get("storage_class"): float(t.get("days", 0)) for t in rule.get("transition") or []
                       if isinstance(t, dict)}
        if "STANDARD_IA" in transitions and expiry is not None:
            return transitions["STANDARD_IA"], transitions.get("GLACIER", float("inf")), expiry
    raise Unpriceable("no enabled lifecycle rule with a Standard-IA transition and an expiry")


@prices("aws_cloudwatch_log_group")
def log_group(resource: Resource, pricing: Pricing) -> Iterator[Line]:
    usage = pricing.usage_for("per GB ingested and stored: depends on traffic")
    name = str(resource.get("name") or resource.address)
    gb = usage.processor_log_gb_month if "processor" in name and "migrat" not in name else (
        usage.flow_log_gb_month if "flow" in name else usage.other_log_gb_month)
    retention = resource.get("retention_in_days") or 3653
    stored = gb * min(float(retention), 365.0) / DAYS_PER_MONTH
    yield Line(resource.address, resource.type, "CloudWatch Logs",
               gb * pricing.price("logs_ingest_gb") + stored * pricing.price("logs_storage_gb_month"),
               f"{gb:g} GB a month ingested, {stored:,.1f} GB stored (kept {retention} days)", TRAFFIC)


@prices("aws_backup_plan")
def backup_plan(resource: Resource, pricing: Pricing) -> Iterator[Line]:
    usage = pricing.usage_for("per GB of recovery points: depends on the data")
    keep = max((_number(resource, "rule", i, "lifecycle", 0, "delete_after") for i, _ in enumerate(resource.get("rule") or [])),
               default=0)
    growth_per_day = usage.stream_gb_month / DAYS_PER_MONTH
    stored = usage.database_gb + growth_per_day * min(keep, 365)  # a full copy, then what changes each day
    yield Line(resource.address, resource.type, "AWS Backup", stored * pricing.price("backup_rds_gb_month"),
               f"{stored:,.1f} GB of recovery points (kept {keep:g} days)", TRAFFIC)


@prices("aws_ecr_repository")
def ecr_repository(resource: Resource, pricing: Pricing) -> Iterator[Line]:
    usage = pricing.usage_for("per GB of images: depends on the releases kept")
    kept = 10
    for policy in pricing.referring(resource, "aws_ecr_lifecycle_policy", "repository"):
        match = re.search(r'"countNumber":\s*(\d+)', str(policy.get("policy") or ""))
        kept = int(match.group(1)) if match else kept
    gb = kept * usage.image_gb
    yield Line(resource.address, resource.type, "ECR", gb * pricing.price("ecr_storage_gb_month"),
               f"{kept} images kept × {usage.image_gb:g} GB", TRAFFIC)


# -- monitoring, keys, secrets --------------------------------------------------------------------------------------


@prices("aws_cloudwatch_metric_alarm")
def alarm(resource: Resource, pricing: Pricing) -> Iterator[Line]:
    metrics = resource.get("metric_query")
    count = sum(1 for q in metrics if isinstance(q, dict) and q.get("metric")) if isinstance(metrics, list) and metrics else 1
    yield Line(resource.address, resource.type, "CloudWatch", count * pricing.price("cloudwatch_alarm_month"),
               f"standard alarm × {count} metric(s)")


@prices("aws_cloudwatch_dashboard")
def dashboard(resource: Resource, pricing: Pricing) -> Iterator[Line]:
    yield Line(resource.address, resource.type, "CloudWatch", pricing.price("cloudwatch_dashboard_month"),
               "one dashboard (the account's first three are free: not counted)")


@prices("aws_kms_key")
def kms_key(resource: Resource, pricing: Pricing) -> Iterator[Line]:
    yield Line(resource.address, resource.type, "KMS", pricing.price("kms_key_month"), "one customer-managed key")


@prices("aws_secretsmanager_secret")
def secret(resource: Resource, pricing: Pricing) -> Iterator[Line]:
    yield Line(resource.address, resource.type, "Secrets Manager", pricing.price("secret_month"), "one secret")


# -- front doors ---------------------------------------------------------------------------------------------------


@prices("aws_api_gateway_rest_api")
def rest_api(resource: Resource, pricing: Pricing) -> Iterator[Line]:
    usage = pricing.usage_for("per request")
    per_million = pricing.price("apigateway_rest_requests_per_million")
    requests = usage.records_per_month / usage.api_records_per_request
    unbatched = usage.records_per_month / 1_000_000 * per_million
    yield Line(resource.address, resource.type, "API Gateway", requests / 1_000_000 * per_million,
               f"{requests / 1_000_000:,.2f} M requests at {usage.api_records_per_request:g} records each "
               f"(one record a request: ${unbatched:,.2f})", TRAFFIC)


@prices("aws_wafv2_web_acl")
def web_acl(resource: Resource, pricing: Pricing) -> Iterator[Line]:
    rules = resource.get("rule")
    count = len(rules) if isinstance(rules, list) else 1
    yield Line(resource.address, resource.type, "WAF",
               pricing.price("waf_web_acl_month") + count * pricing.price("waf_rule_month"),
               f"one web ACL, {count} rule(s)")
    if pricing.usage is None:  # a plan's review: the ACL and its rules are known, the requests are traffic's
        return
    usage = pricing.usage
    requests = usage.records_per_month / usage.api_records_per_request
    yield Line(resource.address, resource.type, "WAF", requests / 1_000_000 * pricing.price("waf_requests_per_million"),
               f"{requests / 1_000_000:,.2f} M requests inspected", TRAFFIC)


@prices("aws_cloudwatch_log_metric_filter")
def log_metric_filter(resource: Resource, pricing: Pricing) -> Iterator[Line]:
    yield Line(resource.address, resource.type, "CloudWatch", pricing.price("cloudwatch_custom_metric_month"),
               "one custom metric")


def references(value: Any) -> tuple[str, ...]:
    """Every resource address a synthesized value's `${...}` tokens name (data sources excluded)."""
    found: list[str] = []

    def walk(node: Any) -> None:
        if isinstance(node, str):
            found.extend(m for m in TOKEN_REFERENCE.findall(node) if not m.startswith("data."))
        elif isinstance(node, dict):
            for item in node.values():
                walk(item)
        elif isinstance(node, list):
            for item in node:
                walk(item)

    walk(value)
    return tuple(dict.fromkeys(found))


def from_synthesized(document: dict[str, Any]) -> list[Resource]:
    """The managed resources of one synthesized stack (`cdk.tf.json`)."""
    resources = []
    for type_, blocks in (document.get("resource") or {}).items():
        for name, values in (blocks or {}).items():
            if not isinstance(values, dict):
                continue
            refs = {attribute: references(value) for attribute, value in values.items()}
            resources.append(Resource(f"{type_}.{name}", type_, values, {k: v for k, v in refs.items() if v}))
    return resources


@prices("aws_route53_zone")
def hosted_zone(resource: Resource, pricing: Pricing) -> Iterator[Line]:
    """A hosted zone by the month; its queries here are alias queries to a load balancer, which are free."""
    yield Line(resource.address, resource.type, "Route 53", pricing.price("route53_hosted_zone_month"),
               "one hosted zone")


@prices("aws_lb")
def load_balancer(resource: Resource, pricing: Pricing) -> Iterator[Line]:
    """An ALB: by the hour, plus LCU-hours: the largest of its dimensions (new connections at 25 a second,
    active connections at 3,000 a minute, processed bytes at 1 GB an hour, rule evaluations at 1,000 a
    second) is what is billed. The read API's one listener rule is free (10 per LCU are)."""
    if resource.get("load_balancer_type") not in (None, "application"):
        raise Unpriceable(f"a {resource.get('load_balancer_type')} load balancer is not priced here")
    yield Line(resource.address, resource.type, "Elastic Load Balancing", pricing.price("alb_hour") * pricing.hours,
               f"one ALB × {pricing.hours:g} h")
    if pricing.usage is None:  # a plan's review: the hours are known, the LCUs are traffic's
        return
    usage = pricing.usage
    reads = usage.catalog_reads_per_second
    dimensions = {
        "new connections": reads / usage.catalog_reads_per_connection / 25,
        "active connections": reads / usage.catalog_reads_per_connection * 60 / 3_000,
        "processed bytes": reads * usage.catalog_bytes_per_read * 3600 / GB,
    }
    dimension, lcus = max(dimensions.items(), key=lambda item: item[1])
    yield Line(resource.address, resource.type, "Elastic Load Balancing",
               lcus * pricing.price("alb_lcu_hour") * pricing.hours,
               f"{reads:g} reads/s of {usage.catalog_bytes_per_read:,} bytes: {lcus:.3f} LCU ({dimension}) "
               f"× {pricing.hours:g} h", TRAFFIC)
