"""The config objects the constructs take; `stacks/config.py` fills them per environment.

Every default is documented where it is declared, and where safety is at stake the default
is the production-safe value: deletion protection, final snapshots, write-once archives and
backups, no shell into the tasks, long log retention. An environment meant to be destroyed
opts out explicitly, in one place (`stacks/config.py`, `_destroyable`), never by omission.
Each safety limit lives in the settings object it limits, checked when the object is built.
"""
from __future__ import annotations

import math
import re
from dataclasses import dataclass
from typing import Literal

from processor.task_settings import (
    INCIDENT_QUIET_S,
    INCIDENT_WINDOW_S,
    KINESIS_SHARD_READS_PER_SECOND,
    LEASE_DURATION_S,
    MAX_READS_PER_SHARD_PER_S,
    READ_INTERVAL_AT_TIP_S,
    read_interval_low,
)

# Kinesis limits per shard (AWS Kinesis Data Streams quotas; reads: processor/task_settings.py).
KINESIS_SHARD_RECORDS_PER_SECOND = 1_000
KINESIS_SHARD_BYTES_PER_SECOND = 1_048_576
FIREHOSE_READS_PER_SECOND = 1  # the archive's delivery stream polls each shard about once a second
ON_DEMAND_INITIAL_SHARDS = 4  # an on-demand stream starts with 4 MB/s of write capacity: four shards


MIN_STREAM_RETENTION_HOURS = 168  # a week of records can be replayed after an outage
MAX_ROTATION_DAYS = 30  # database credentials rotate at least this often
MIN_AVAILABILITY_ZONES = 2  # every tier survives the loss of one zone

# RDS for PostgreSQL's default max_connections: LEAST({DBInstanceClassMemory/9531392}, 5000)
# (RDS "Maximum number of database connections"). DBInstanceClassMemory is the class's memory
# less what the OS and RDS keep, so the class's whole memory gives an upper bound.
PG_BYTES_PER_CONNECTION = 9_531_392
PG_MAX_CONNECTIONS = 5_000
# GiB of memory per size, by family kind: burstable (t3, t4g), general purpose (m5, m6g, m6i,
# m7g), memory optimised (r5, r6g, r6i, r7g). A class not here stops synthesis, by name.
_SIZES_GIB = {
    "t": {"micro": 1, "small": 2, "medium": 4, "large": 8, "xlarge": 16, "2xlarge": 32},
    "m": {"large": 8, "xlarge": 16, "2xlarge": 32, "4xlarge": 64, "8xlarge": 128, "12xlarge": 192, "16xlarge": 256},
    "r": {"large": 16, "xlarge": 32, "2xlarge": 64, "4xlarge": 128, "8xlarge": 256, "12xlarge": 384, "16xlarge": 512},
}
_FAMILIES = {"t3": "t", "t4g": "t", "m5": "m", "m6g": "m", "m6i": "m", "m7g": "m", "r5": "r", "r6g": "r", "r6i": "r",
             "r7g": "r"}


def db_instance_memory_bytes(instance_class: str) -> int:
    """The memory of an RDS instance class (`db.t4g.micro` -> 1 GiB)."""
    _, family, size = (instance_class.split(".") + ["", ""])[:3]
    gib = _SIZES_GIB.get(_FAMILIES.get(family, ""), {}).get(size)
    if gib is None:
        raise ValueError(f"instance class {instance_class!r} has no memory figure in pipeline_lib/settings.py: "
                         "add its family to _FAMILIES (its connection limit and alarm derive from it)")
    return gib * 1024**3


def pg_max_connections(instance_class: str) -> int:
    """RDS PostgreSQL's default connection limit for the class (an upper bound: see above)."""
    return min(db_instance_memory_bytes(instance_class) // PG_BYTES_PER_CONNECTION, PG_MAX_CONNECTIONS)


@dataclass(frozen=True)
class StreamConfig:
    peak_records_per_minute: int  # required: what the producers send at their busiest
    average_record_bytes: int  # required: sizes the shards by bytes as well as by records
    retention_period_hours: int = MIN_STREAM_RETENTION_HOURS  # 7 days: room to replay a week-long outage
    headroom_factor: float = 2.0  # provision for twice the stated peak
    min_shards: int = 2  # two shards let two tasks work in parallel
    stream_mode: Literal["PROVISIONED", "ON_DEMAND"] = "PROVISIONED"  # ON_DEMAND: AWS sizes the shards

    def __post_init__(self) -> None:
        if self.retention_period_hours < MIN_STREAM_RETENTION_HOURS:
            raise ValueError(f"stream retention must be at least {MIN_STREAM_RETENTION_HOURS} hours")


    @property
    def shard_count(self) -> int:
        per_second = self.peak_records_per_minute / 60 * self.headroom_factor
        by_records = math.ceil(per_second / KINESIS_SHARD_RECORDS_PER_SECOND)
        by_bytes = math.ceil(per_second * self.average_record_bytes / KINESIS_SHARD_BYTES_PER_SECOND)
        return max(self.min_shards, by_records, by_bytes)

    @property
    def capacity_records_per_minute(self) -> int:
        return self.shard_count * KINESIS_SHARD_RECORDS_PER_SECOND * 60

    @property
    def max_consumers(self) -> int:
        """The most processor tasks that can each hold a shard: one shard, one reader. A
        provisioned stream has `shard_count`; an on-demand one starts with four shards and
        AWS adds shards as traffic grows, to about what the stated peak needs."""
        if self.stream_mode == "ON_DEMAND":
            return max(ON_DEMAND_INITIAL_SHARDS, self.shard_count)
        return self.shard_count


@dataclass(frozen=True)
class NetworkConfig:
    cidr_block: str  # required: the VPC's range, distinct per workload so they can be peered
    availability_zones: tuple[str, ...]  # required: private subnets, one per zone
    # Interface endpoints are billed per endpoint per zone-hour. None: one in every zone, so a
    # zone's outage leaves the tasks of the other zone their AWS APIs (production). A number:
    # only the first N zones; tasks elsewhere reach them across zones (a destroyable dev: 1).
    endpoint_zones: int | None = None

    def __post_init__(self) -> None:
        if len(self.availability_zones) < MIN_AVAILABILITY_ZONES:
            raise ValueError(f"at least {MIN_AVAILABILITY_ZONES} availability zones are required")
        if self.endpoint_zones is not None and not 1 <= self.endpoint_zones <= len(self.availability_zones):
            raise ValueError(f"endpoint_zones must be between 1 and {len(self.availability_zones)} (or None: every zone)")


@dataclass(frozen=True)
class ServiceConfig:
    cpu: int = 512  # Fargate units (1024 = 1 vCPU)
    memory_mib: int = 1024  # MiB, a valid Fargate pairing with `cpu`
    desired_count: int = 2  # two tasks from the start: one survives the other's zone
    min_count: int = 2  # autoscaling never goes below two
    cpu_architecture: Literal["ARM64", "X86_64"] = "ARM64"  # Graviton: cheaper per record
    image_tag: str = "unreleased"  # set per release from PROCESSOR_IMAGE_TAG (stacks/config.py); never "latest"
    # Scale out when the processor's own lag (MillisBehindLatest, the most any task reports)
    # stays above this; scale in when it stays under a tenth of it. Up to one task per shard.
    lag_target_ms: int = 30_000
    enable_execute_command: bool = False  # no shell into production tasks; a dev environment opts in
    # The IAM roles (names, this account) that may open an ECS Exec session; required with Exec.
    exec_operator_roles: tuple[str, ...] = ()
    force_delete_images: bool = False  # a destroy deletes the repository's images too: a destroyable dev opts in
    log_retention_days: int = 365  # the processor's logs (its metrics travel in them)
    # What the processor's tasks are told (processor/task_settings.py declares each: unit,
    # default, bounds). The fleet: a dead task's shards are taken over after its lease expires.
    lease_duration_s: float = LEASE_DURATION_S.default
    # The read budget per shard (processor/pacing.py), shared with the archive's Firehose: the
    # two together stay under Kinesis' limit, so one call a second stays spare (checked below).
    read_interval_at_tip_s: float = READ_INTERVAL_AT_TIP_S.default
    max_reads_per_shard_per_s: float = MAX_READS_PER_SHARD_PER_S.default

    def __post_init__(self) -> None:
        if not _IMAGE_TAG.fullmatch(self.image_tag) or self.image_tag == "latest":
            raise ValueError(f"image tag {self.image_tag!r} is not a release tag: the repository's tags are immutable, "
                             "so use one per release (letters, digits, . _ -, e.g. the commit SHA), never 'latest'")
        LEASE_DURATION_S.check(self.lease_duration_s)
        MAX_READS_PER_SHARD_PER_S.check(self.max_reads_per_shard_per_s)
        spare = KINESIS_SHARD_READS_PER_SECOND - FIREHOSE_READS_PER_SECOND
        if self.max_reads_per_shard_per_s > spare:
            raise ValueError(f"max_reads_per_shard_per_s must be at most {spare}: Kinesis allows "
                             f"{KINESIS_SHARD_READS_PER_SECOND} a shard, Firehose takes {FIREHOSE_READS_PER_SECOND}")
        if self.read_interval_at_tip_s < read_interval_low(self.max_reads_per_shard_per_s):
            raise ValueError("read_interval_at_tip_s must not be shorter than 1 / max_reads_per_shard_per_s")
        READ_INTERVAL_AT_TIP_S.check(self.read_interval_at_tip_s)
        if self.enable_execute_command and not self.exec_operator_roles:
            raise ValueError("ECS Exec with no operator role: name the roles that may open a session")
        for role in self.exec_operator_roles:
            if not _ROLE_NAME.fullmatch(role):
                raise ValueError(f"{role!r} is not an IAM role name (1-64 of letters, digits and +=,.@_-)")


@dataclass(frozen=True)
class CacheConfig:
    node_type: str = "cache.t4g.small"  # the smallest Graviton node with enough memory for the hot set
    # Primary + replica in another AZ: automatic failover and Multi-AZ (both on when there are two or
    # more). A destroyable dev runs one node: the same TLS, AUTH and key, no standby to fail over to.
    num_cache_clusters: int = 2
    engine_version: str = "7.1"
    parameter_group_family: str = "redis7"  # must match engine_version's major
    snapshot_retention_limit_days: int = 14  # daily snapshots kept two weeks
    final_snapshot: bool = True  # a deleted cache leaves a last snapshot; a destroyable dev opts out
    maxmemory_policy: str = "allkeys-lru"  # hot-product cache: evict the coldest
    # How a new AUTH token is applied. SET: it replaces the old one at once (the steady state:
    # no rotated-out token stays valid). ROTATE: both are valid, for the rotation's middle step
    # only, while the tasks roll onto the new one (docs/operations.md, "Rotating the Redis AUTH token").
    auth_token_update_strategy: Literal["SET", "ROTATE"] = "SET"

    @property
    def failover(self) -> bool:
        """Automatic failover and Multi-AZ: ElastiCache needs a replica to promote."""
        return self.num_cache_clusters > 1

    def __post_init__(self) -> None:
        if not 1 <= self.num_cache_clusters <= 6:
            raise ValueError(f"a replication group has 1 to 6 nodes (a primary and up to 5 replicas), "
                             f"not {self.num_cache_clusters}")
        if self.auth_token_update_strategy not in ("SET", "ROTATE"):
            raise ValueError(f"auth_token_update_strategy must be SET or ROTATE, not {self.auth_token_update_strategy!r}")


@dataclass(frozen=True)
class DatabaseConfig:
    instance_class: str = "db.t4g.medium"
    engine_version: str = "16"
    parameter_group_family: str = "postgres16"
    allocated_storage_gb: int = 50
    max_allocated_storage_gb: int = 200
    db_name: str = "pipeline"
    master_username: str = "pipeline_admin"  # migrations only (the migrate task), from the RDS-managed secret
    app_username: str = "processor"  # the service's role: its workload's DML, signed in with IAM tokens
    backup_retention_days: int = 35  # RDS's own automated backups (point-in-time restore), the maximum
    multi_az: bool = True  # a standby in another zone
    deletion_protection: bool = True  # a destroyable dev opts out
    skip_final_snapshot: bool = False  # a deleted database leaves a last snapshot; a destroyable dev opts out
    rotation_days: int = MAX_ROTATION_DAYS  # the master secret rotates this often (RDS-managed)
    performance_insights_retention_days: int = 7  # the free tier; 731 for a longer look back
    monitoring_interval_seconds: int = 60  # enhanced monitoring
    ca_cert_identifier: str = "rds-ca-rsa2048-g1"

    def __post_init__(self) -> None:
        db_instance_memory_bytes(self.instance_class)  # a class whose connection limit is unknown stops here
        if self.rotation_days > MAX_ROTATION_DAYS:
            raise ValueError(f"database credentials must rotate at least every {MAX_ROTATION_DAYS} days")
        major = self.engine_version.split(".")[0]
        if self.parameter_group_family != f"postgres{major}":
            raise ValueError(f"parameter_group_family {self.parameter_group_family!r} does not match engine_version "
                             f"{self.engine_version!r}: use 'postgres{major}'")


@dataclass(frozen=True)
class ArchiveConfig:
    expiration_days: int  # required: how long archived records are kept, the compliance period
    transition_to_ia_days: int = 30  # to Standard-IA after a month
    transition_to_glacier_days: int = 90  # to Glacier after a quarter
    buffering_interval_seconds: int = 300  # Firehose writes an object every 5 minutes ...
    buffering_size_mb: int = 64  # ... or every 64 MB, whichever comes first
    # Write-once: S3 Object Lock in COMPLIANCE mode keeps every record for `expiration_days`,
    # whoever asks (root included). A locked bucket can never be emptied, so a destroyable dev
    # opts out, and with it the vault lock on the database's backups.
    object_lock: bool = True
    force_destroy: bool = False  # a destroy empties the bucket: only where object_lock is off
    access_log_retention_days: int | None = 731  # S3 server access logs of the archive; None: none
    # AWS Backup copies of the database: None keeps them as long as the archive keeps records;
    # a destroyable dev opts out to a few days.
    backup_retention_days: int | None = None
    backup_vault_lock: bool = True  # recovery points cannot be deleted before their retention ends

    def __post_init__(self) -> None:
        if self.expiration_days <= self.transition_to_glacier_days:
            raise ValueError("archive expiry must come after the last storage-class transition")
        if self.object_lock and self.force_destroy:
            raise ValueError("a write-once (object_lock) archive cannot be force-destroyed: it can never be emptied")

    @property
    def backup_days(self) -> int:
        """How long AWS Backup keeps the database's recovery points."""
        return self.expiration_days if self.backup_retention_days is None else self.backup_retention_days


@dataclass(frozen=True)
class AlarmConfig:
    iterator_age_ms: int = 60_000
    processor_errors_per_5min: int = 10
    dead_letters_per_5min: int = 1
    db_cpu_percent: int = 80
    db_free_storage_bytes: int = 5 * 1024**3
    # Connections above this share of the class's limit (pg_max_connections: 112 for a
    # db.t4g.micro, 450 for a db.t4g.medium, 1,802 for a db.r7g.large), never a fixed count.
    db_connections_percent: int = 80
    cache_cpu_percent: int = 75
    cache_memory_percent: int = 80
    cache_evictions_per_5min: int = 1_000
    incident_outbox_age_seconds: int = 300  # an incident message unsent this long: SNS or the processor is stuck
    archive_read_lag_ms: int = 900_000  # Firehose reading a quarter of an hour behind the stream
    # A record inside Firehose older than its buffering interval plus this: delivery is stuck.
    archive_freshness_margin_seconds: int = 900
    api_4xx_percent: float = 10.0  # the supplier API refusing this share of requests: a supplier is broken
    api_5xx_percent: float = 1.0  # the supplier API failing this share: the stream or the integration is
    api_p99_latency_ms: int = 1_000  # a batch of 500 takes a few tens of milliseconds into Kinesis
    api_throttled_per_5min: int = 50  # 429s: a supplier outgrowing its plan (or an attack the WAF should see)
    # The catalog read API (pipeline_lib/catalog_read_api.py): a read from Redis takes a millisecond or two,
    # a miss a PostgreSQL query; a p99 above this is a cold cache, a slow database or starved tasks.
    catalog_api_p99_latency_ms: int = 250
    catalog_api_5xx_per_5min: int = 5  # answers of 5xx (the tasks' or the ALB's): a storefront sees errors
    # IoT Core (pipeline_lib/iot_ingest.py). Connections and publishes IoT refuses for want of a
    # registered, active, attached certificate or a policy that allows them: a few are a device
    # misconfigured after a change, many an attack or a revoked fleet still trying.
    iot_auth_errors_per_5min: int = 10


_ROLE_NAME = re.compile(r"[\w+=,.@-]{1,64}")
_IMAGE_TAG = re.compile(r"[A-Za-z0-9_][A-Za-z0-9_.-]{0,127}")
_EMAIL = re.compile(r"[^@\s,]+@[^@\s,]+\.[^@\s,]+")
_ARN = {"sqs": re.compile(r"arn:aws[a-z-]*:sqs:[a-z0-9-]+:\d{12}:[A-Za-z0-9_-]{1,80}(\.fifo)?"),
        "lambda": re.compile(r"arn:aws[a-z-]*:lambda:[a-z0-9-]+:\d{12}:function:[A-Za-z0-9_-]{1,64}(:[A-Za-z0-9_$-]+)?")}
_NAME = {"sqs": re.compile(r"[A-Za-z0-9_-]{1,80}(\.fifo)?"), "lambda": re.compile(r"[A-Za-z0-9_-]{1,64}")}


@dataclass(frozen=True)
class AlertSubscription:
    """Who the alarms reach: `email` (an address; confirmed by its owner), `https` (a URL),
    `sqs` or `lambda` (an ARN, or a bare name meaning that queue or function in the stack's
    account and region). The queue's or function's own policy must let SNS deliver to it."""

    protocol: Literal["email", "https", "sqs", "lambda"]
    endpoint: str

    def __post_init__(self) -> None:
        value = self.endpoint
        if self.protocol == "email":
            ok = bool(_EMAIL.fullmatch(value))
        elif self.protocol == "https":
            ok = value.startswith("https://") and len(value) > len("https://") and " " not in value
        elif self.protocol in _ARN:
            ok = bool(_ARN[self.protocol].fullmatch(value) or _NAME[self.protocol].fullmatch(value))
        else:
            raise ValueError(f"alert subscription protocol must be email, https, sqs or lambda, not {self.protocol!r}")
        if not ok:
            raise ValueError(f"{value!r} is not a valid {self.protocol} endpoint for an alert subscription")

    @classmethod
    def parse_list(cls, text: str) -> tuple[AlertSubscription, ...]:
        """`protocol:endpoint` items separated by commas, e.g.
        `email:oncall@example.com,sqs:alerts-dev` (ALERT_SUBSCRIPTIONS)."""
        subscriptions = []
        for item in filter(None, (part.strip() for part in text.split(","))):
            protocol, sep, endpoint = item.partition(":")
            if not sep or not endpoint:
                raise ValueError(f"alert subscription {item!r} is not protocol:endpoint (e.g. email:oncall@example.com)")
            subscriptions.append(cls(protocol.strip(), endpoint.strip()))  # type: ignore[arg-type]
        return tuple(subscriptions)


SEVERITIES = ("warning", "critical")  # processor/incidents.py
_LINE = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.:-]{0,63}")  # a line id, as the factory wire contract allows


@dataclass(frozen=True)
class IncidentSubscription:
    """Who incidents reach, and which: a target as for alerts (AlertSubscription), and
    optionally only some lines and severities (an SNS filter policy on the message's `line`
    and `severity` attributes)."""

    target: AlertSubscription
    lines: tuple[str, ...] = ()  # none: every line
    severities: tuple[str, ...] = ()  # none: every severity

    def __post_init__(self) -> None:
        for line in self.lines:
            if not _LINE.fullmatch(line):
                raise ValueError(f"{line!r} is not a line id")
        for severity in self.severities:
            if severity not in SEVERITIES:
                raise ValueError(f"severity must be one of {', '.join(SEVERITIES)}, not {severity!r}")

    @property
    def filter_policy(self) -> dict[str, list[str]] | None:
        policy = {"line": sorted(self.lines), "severity": sorted(self.severities)}
        return {k: v for k, v in policy.items() if v} or None

    @classmethod
    def parse_list(cls, text: str) -> tuple[IncidentSubscription, ...]:
        """Items separated by commas, each `protocol:endpoint` with optional `;line=A|B` and
        `;severity=critical` (INCIDENT_SUBSCRIPTIONS), e.g.
        `email:line1-team@example.com;line=line-1,sqs:incidents-all`."""
        out = []
        for item in filter(None, (part.strip() for part in text.split(","))):
            target, *filters = (part.strip() for part in item.split(";"))
            lines: tuple[str, ...] = ()
            severities: tuple[str, ...] = ()
            for f in filters:
                name, sep, values = f.partition("=")
                chosen = tuple(v.strip() for v in values.split("|") if v.strip())
                if not sep or not chosen or name.strip() not in ("line", "severity"):
                    raise ValueError(f"incident subscription filter {f!r} is not line=A|B or severity=S")
                if name.strip() == "line":
                    lines = chosen
                else:
                    severities = chosen
            parsed = AlertSubscription.parse_list(target)
            if not parsed:
                raise ValueError(f"incident subscription {item!r} has no protocol:endpoint")
            out.append(cls(parsed[0], lines, severities))
        return tuple(out)


@dataclass(frozen=True)
class IncidentConfig:
    """The factory's incidents (processor/incidents.py): how they are grouped, and who they reach."""

    # Grouping and closing (processor/task_settings.py declares each: unit, default, bounds).
    incident_window_s: float = INCIDENT_WINDOW_S.default
    incident_quiet_s: float = INCIDENT_QUIET_S.default
    subscriptions: tuple[IncidentSubscription, ...] = ()

    def __post_init__(self) -> None:
        INCIDENT_WINDOW_S.check(self.incident_window_s)
        INCIDENT_QUIET_S.check(self.incident_quiet_s)


# -- the supplier API ---------------------------------------------------------------------------------------------
_SUPPLIER_ID = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.:-]{0,63}")  # the wire contract's key (processor/contract)
_KEY_GENERATION = re.compile(r"[a-z0-9][a-z0-9-]{0,15}")  # part of an API key's name
PUT_RECORDS_MAX = 500  # Kinesis takes at most this many records in one PutRecords call


@dataclass(frozen=True)
class UsageTier:
    """A usage plan: what one supplier's keys may send (API Gateway throttles per key, best effort)."""

    name: str
    rate_limit_per_second: float  # steady requests a second, per key
    burst_limit: int  # requests at once above the steady rate (the token bucket's size)
    quota_per_day: int | None = None  # requests a day; None: no quota

    def __post_init__(self) -> None:
        if not _KEY_GENERATION.fullmatch(self.name):
            raise ValueError(f"usage tier name {self.name!r} must be lowercase letters, digits or '-'")
        if self.rate_limit_per_second <= 0 or self.burst_limit < 1:
            raise ValueError(f"usage tier {self.name}: the rate and the burst must be positive")
        if self.quota_per_day is not None and self.quota_per_day < 1:
            raise ValueError(f"usage tier {self.name}: a quota must be at least 1 request a day")


@dataclass(frozen=True)
class Supplier:
    """One supplier: its id (the wire contract's supplier_id, stamped from its key) and tier, and
    the generations of its API key: one, or two while a key rotates (issue the new, retire the old)."""

    supplier_id: str
    tier: str
    keys: tuple[str, ...] = ("1",)

    def __post_init__(self) -> None:
        if not _SUPPLIER_ID.fullmatch(self.supplier_id):
            raise ValueError(f"supplier id {self.supplier_id!r} is not a key the wire contract accepts")
        if not 1 <= len(self.keys) <= 2 or len(set(self.keys)) != len(self.keys):
            raise ValueError(f"supplier {self.supplier_id}: one API key, or two while one rotates, not {self.keys}")
        for key in self.keys:
            if not _KEY_GENERATION.fullmatch(key):
                raise ValueError(f"supplier {self.supplier_id}: key generation {key!r} must be lowercase letters, "
                                 "digits or '-'")

    @classmethod
    def parse_list(cls, text: str) -> tuple[Supplier, ...]:
        """`supplier_id:tier[:generation|generation]` items separated by commas, e.g.
        `acme:standard,globex:bulk:2026-11|2026-12` (SUPPLIERS)."""
        suppliers = []
        for item in filter(None, (part.strip() for part in text.split(","))):
            parts = [p.strip() for p in item.split(":")]
            if len(parts) not in (2, 3) or not all(parts):
                raise ValueError(f"supplier {item!r} is not supplier_id:tier[:key|key] (e.g. acme:standard)")
            keys = tuple(k.strip() for k in parts[2].split("|")) if len(parts) == 3 else ("1",)
            suppliers.append(cls(parts[0], parts[1], keys))
        ids = [s.supplier_id for s in suppliers]
        if len(set(ids)) != len(ids):
            raise ValueError(f"a supplier is listed twice in {text!r}")
        return tuple(suppliers)


@dataclass(frozen=True)
class SupplierApiConfig:
    """The retail stack's supplier ingestion API: `POST /v1/updates` into the stream."""

    tiers: tuple[UsageTier, ...]
    suppliers: tuple[Supplier, ...] = ()  # none: the API refuses every caller (403)
    stage_name: str = "live"
    # The whole stage's ceiling, above every plan (API Gateway's account limit is 10,000/s).
    stage_rate_limit_per_second: float = 200.0
    stage_burst_limit: int = 400
    max_records_per_request: int = PUT_RECORDS_MAX
    waf: bool = True  # a web ACL with a rate-based rule: usage plans are best effort (dev keeps it too: every control on)
    waf_requests_per_5min_per_ip: int = 3_000  # the rate-based rule's limit (WAF counts over 5 minutes)

    def __post_init__(self) -> None:
        if not 1 <= self.max_records_per_request <= PUT_RECORDS_MAX:
            raise ValueError(f"a request carries 1 to {PUT_RECORDS_MAX} records (one PutRecords call), "
                             f"not {self.max_records_per_request}")
        names = [t.name for t in self.tiers]
        if len(set(names)) != len(names):
            raise ValueError(f"a usage tier is declared twice in {names}")
        for supplier in self.suppliers:
            if supplier.tier not in names:
                raise ValueError(f"supplier {supplier.supplier_id}: no usage tier {supplier.tier!r} "
                                 f"(tiers: {', '.join(names)})")
        if not 100 <= self.waf_requests_per_5min_per_ip <= 2_000_000_000:
            raise ValueError("a WAF rate-based rule's limit is 100 to 2,000,000,000 requests per 5 minutes")

    def tier(self, name: str) -> UsageTier:
        return next(t for t in self.tiers if t.name == name)


# AWS IoT Core limits (AWS IoT Core endpoints and quotas, "Message broker and protocol limits").
IOT_MAX_MESSAGE_BYTES = 128 * 1024  # an MQTT PUBLISH payload; a bigger one closes the connection
IOT_MESSAGE_METERING_BYTES = 5 * 1024  # messaging is billed per 5 KB of payload
IOT_LOG_LEVELS = ("ERROR", "WARN", "INFO", "DEBUG")


@dataclass(frozen=True)
class IotConfig:
    """The factory's front door for devices (pipeline_lib/iot_ingest.py): one identity per sensor,
    a topic rule into the stream, and how devices batch their readings."""

    # Readings a device sends in one MQTT message (tools/sensors writes it into the device's
    # config): IoT bills rules and actions per message, so 10 a message costs a tenth of one a
    # message (docs/iot.md, "Batching and cost"); a message waits at most `batch_wait_s`.
    readings_per_message: int = 10
    batch_wait_s: float = 10.0
    # Basic Ingest: devices publish to `$aws/rules/<rule>/...`, straight to the rule, with no
    # messaging charge and no subscriber able to read another device's readings. False: the
    # ordinary topic `factory/<line>/<sensor>/readings` (billed per message).
    basic_ingest: bool = True
    # The account's IoT log (AWSIotLogsV2, one per account and region, and SetV2LoggingOptions, a
    # per-region singleton): True, this stack owns both, encrypted with its key. Only one stack of
    # an account and region may: production does; a destroyable environment opts out (destroying
    # it would turn off every other environment's device logs; docs/iot.md, "IoT logging").
    account_logging: bool = True
    log_level: str = "WARN"  # connection and authorization failures, rule errors; INFO adds every connect

    def __post_init__(self) -> None:
        most = IOT_MAX_MESSAGE_BYTES // MAX_READING_BYTES
        if not 1 <= self.readings_per_message <= most:
            raise ValueError(f"readings_per_message must be between 1 and {most}: a message of {MAX_READING_BYTES} "
                             f"bytes a reading must fit IoT's {IOT_MAX_MESSAGE_BYTES // 1024} KB")
        if not 0 < self.batch_wait_s <= 60:
            raise ValueError("batch_wait_s must be above 0 and at most 60 s: a reading waits that long on the device")
        if self.log_level not in IOT_LOG_LEVELS:
            raise ValueError(f"log_level must be one of {', '.join(IOT_LOG_LEVELS)}, not {self.log_level!r}")


MAX_READING_BYTES = 512  # the largest reading a device sends (a status with a long event id is ~180 bytes)


# -- the catalog read API -----------------------------------------------------------------------------------------
# Fargate's valid (cpu, memory MiB) pairings up to 1 vCPU, the sizes a read API task takes.
FARGATE_SIZES = {256: (512, 1024, 2048), 512: (1024, 2048, 3072, 4096), 1024: tuple(range(2048, 8193, 1024))}
_DOMAIN = re.compile(r"(?=.{4,253}$)([a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?\.)+[a-z]{2,63}")
_PG_ROLE = re.compile(r"[a-z_][a-z0-9_]{0,62}")
_TLS_POLICIES = ("ELBSecurityPolicy-TLS13-1-2-2021-06", "ELBSecurityPolicy-TLS13-1-2-Res-2021-06",
                 "ELBSecurityPolicy-TLS13-1-3-2021-06")


@dataclass(frozen=True)
class CatalogReadApiConfig:
    """The retail catalog's read API for the storefront (pipeline_lib/catalog_read_api.py): an ECS
    service of the processor image behind an internal ALB, TLS at both hops."""

    # The ALB's certificate: an existing ACM certificate for this name (issued or imported by an
    # operator before the first deploy; the stack reads it, docs/catalog-api.md). Callers reach
    # the API by this name, which an operator points at the ALB (a private hosted zone's alias).
    certificate_domain: str
    reader_user: str = "catalog_reader"  # the SELECT-only PostgreSQL role the migration makes
    cpu: int = 512  # Fargate units per task
    memory_mib: int = 1024
    min_count: int = 2  # two tasks in two zones: one survives the other's zone
    max_count: int = 6
    # Target tracking on ALBRequestCountPerTarget: requests a minute per task the scaling keeps to
    # (a 0.5 vCPU task serves several hundred reads a second from Redis; this leaves room for misses).
    requests_per_task_per_minute: int = 6_000
    container_port: int = 8443
    tls_policy: str = "ELBSecurityPolicy-TLS13-1-2-2021-06"  # TLS 1.3 and 1.2 with forward secrecy only
    db_pool_size: int = 4  # PostgreSQL connections per task (x max_count within the class's limit)
    deletion_protection: bool = True  # the ALB; a destroyable dev opts out
    log_retention_days: int = 365
    # The ALB's access logs (one line per request: caller, path, status, timings, TLS), in a bucket of their
    # own (SSE-S3: pipeline_lib/log_delivery_bucket.py), kept as long as the tasks' logs, then expired.
    access_log_retention_days: int = 365
    access_log_force_destroy: bool = False  # a destroy empties the access-log bucket; a destroyable dev opts in

    def __post_init__(self) -> None:
        if not _DOMAIN.fullmatch(self.certificate_domain):
            raise ValueError(f"certificate_domain {self.certificate_domain!r} is not a DNS name")
        if not _PG_ROLE.fullmatch(self.reader_user):
            raise ValueError(f"reader_user {self.reader_user!r} is not a plain PostgreSQL role name")
        if self.memory_mib not in FARGATE_SIZES.get(self.cpu, ()):
            raise ValueError(f"{self.cpu} CPU units with {self.memory_mib} MiB is not a Fargate task size")
        if not 1 <= self.min_count <= self.max_count <= 50:
            raise ValueError(f"task counts must satisfy 1 <= min ({self.min_count}) <= max ({self.max_count}) <= 50")
        if self.requests_per_task_per_minute < 1:
            raise ValueError("requests_per_task_per_minute must be positive")
        if not 1024 <= self.container_port <= 65535:
            raise ValueError("container_port must be an unprivileged port: the container runs as a non-root user")
        if self.tls_policy not in _TLS_POLICIES:
            raise ValueError(f"tls_policy must be one of {', '.join(_TLS_POLICIES)} (TLS 1.2 or later)")
        if not 1 <= self.db_pool_size <= 64:
            raise ValueError("db_pool_size must be 1 to 64 connections")
        if self.access_log_retention_days < 1:
            raise ValueError("access_log_retention_days must be at least 1: the ALB's access logs are always kept")
