"""All tuning of both workloads, one frozen object per (workload, environment).

Everything a reviewer may want to change lives here, readable in one screen per
workload. `build_config(workload, suffix)` is the only constructor the app uses.

The settings' defaults are the production-safe values (pipeline_lib/settings.py). The
suffixes in `PRODUCTION_SUFFIXES` keep them and get production sizes (`_production`);
every other suffix (dev, pr-123, ...) opts out of what would stop a destroy, explicitly and
in one place (`_destroyable`), and is fully destroyable.
"""
from __future__ import annotations

import os
from dataclasses import dataclass, field, replace
from typing import Literal

from pipeline_lib.naming import validate_suffix
from pipeline_lib.settings import (
    AlarmConfig,
    AlertSubscription,
    ArchiveConfig,
    CacheConfig,
    CatalogReadApiConfig,
    DatabaseConfig,
    IncidentConfig,
    IncidentSubscription,
    IotConfig,
    NetworkConfig,
    ServiceConfig,
    StreamConfig,
    Supplier,
    SupplierApiConfig,
    UsageTier,
)
from policy.conventions import PRODUCTION_SUFFIXES
from processor.task_settings import heartbeat_default
from stacks.workloads import WORKLOAD_REGIONS, WORKLOADS, catalog_api_secret_names, redis_auth_secret_name

# Who the alarms reach, `protocol:endpoint` items (pipeline_lib.settings.AlertSubscription),
# e.g. "email:oncall@example.com,https:https://hooks.example.com/aws,sqs:alerts-dev". Set per
# deployment, not in the repository: production refuses to synthesize without one.
ALERT_SUBSCRIPTIONS_ENV = "ALERT_SUBSCRIPTIONS"
# Who the factory's incidents reach: items as ALERT_SUBSCRIPTIONS, each optionally filtered
# to some lines or severities (pipeline_lib.settings.IncidentSubscription), e.g.
# "email:line1@example.com;line=line-1,sqs:incidents-critical;severity=critical".
INCIDENT_SUBSCRIPTIONS_ENV = "INCIDENT_SUBSCRIPTIONS"
# A shell into a non-production environment's tasks (ECS Exec) for a debugging session:
# "on" to enable; off by default (every task is one less way in, and Exec needs two more
# interface endpoints). Production refuses it.
EXEC_ENV = "ECS_EXEC"
# Who may open a session when Exec is on: IAM role names of the account, separated by commas
# (ECS_EXEC_OPERATORS); without it, the platform team's operator role below. Each must exist
# before the deploy: the key policy names it (KMS refuses a principal that does not exist).
EXEC_OPERATORS_ENV = "ECS_EXEC_OPERATORS"
DEFAULT_EXEC_OPERATOR_ROLES = ("platform-operator",)
# The Redis AUTH rotation's middle step (`make rotate-redis-auth`): "ROTATE" keeps the old token
# valid beside the new one while the tasks roll; unset, SET, the steady state.
AUTH_UPDATE_ENV = "REDIS_AUTH_UPDATE"
# The processor image's tag for this deployment (the release workflow sets the commit SHA).
# The repositories' tags are immutable, so a release is a new tag, never an edit here.
IMAGE_TAG_ENV = "PROCESSOR_IMAGE_TAG"
# Who may call the retail supplier API, per deployment: `supplier_id:tier[:generation|generation]`
# items separated by commas (pipeline_lib.settings.Supplier), e.g. "acme:standard,globex:bulk:3|4"
# (two key generations while globex's key rotates). Unset: the API refuses every caller.
SUPPLIERS_ENV = "SUPPLIERS"
# What a deployment is made of that lives outside the repository: a pull request's plan and the release
# both take each from the repository variable of that name (.github/workflows/), so the plan reviewed is
# the one applied, and a release never drops every supplier's key for want of SUPPLIERS.
DEPLOYMENT_ENV = (ALERT_SUBSCRIPTIONS_ENV, INCIDENT_SUBSCRIPTIONS_ENV, SUPPLIERS_ENV)


class ConfigError(ValueError):
    """A configuration that must not deploy; the message is the one line the operator sees."""

Workload = Literal["retail", "factory"]


@dataclass(frozen=True)
class WorkloadConfig:
    workload: Workload
    environment_suffix: str
    region: str
    network: NetworkConfig
    stream: StreamConfig
    service: ServiceConfig
    cache: CacheConfig
    database: DatabaseConfig
    archive: ArchiveConfig
    alarms: AlarmConfig = field(default_factory=AlarmConfig)
    alert_subscriptions: tuple[AlertSubscription, ...] = ()  # none: the alarms notify nobody (dev only)
    incidents: IncidentConfig | None = None  # the factory's incidents topic; None: no incidents published
    supplier_api: SupplierApiConfig | None = None  # retail's supplier ingestion API; None: none
    catalog_api: CatalogReadApiConfig | None = None  # retail's catalog read API for the storefront; None: none
    iot: IotConfig | None = None  # devices through AWS IoT Core (the factory's sensors); None: none
    log_retention_days: int = 365  # every log group but the processor's (ServiceConfig)
    key_deletion_window_days: int = 30  # the longest KMS allows: a scheduled deletion can be cancelled for a month
    data_classification: str = "internal"
    owner: str = "platform-team"
    cost_center: str = "cc-0000"
    project: str = "streaming-pipelines"

    def __post_init__(self) -> None:
        validate_suffix(self.environment_suffix)  # the other limits are checked by each settings object
        if self.is_production and not self.alert_subscriptions:
            raise ConfigError(f"{self.stack_id}: production alarms must reach someone: set {ALERT_SUBSCRIPTIONS_ENV} "
                              "(e.g. email:oncall@example.com)")
        if self.is_production and self.incidents is not None and not self.incidents.subscriptions:
            raise ConfigError(f"{self.stack_id}: production incidents must reach someone: set "
                              f"{INCIDENT_SUBSCRIPTIONS_ENV} (e.g. email:line-1@example.com;line=line-1)")
        # A dead task's shards go unread until its lease expires and a heartbeat takes them over;
        # if that is as long as the lag alarms' threshold, every task death pages someone.
        unread_s = self.service.lease_duration_s + heartbeat_default(self.service.lease_duration_s)
        if unread_s * 1000 >= self.alarms.iterator_age_ms:
            raise ConfigError(f"{self.stack_id}: a lease of {self.service.lease_duration_s:g} s leaves a dead task's "
                              f"shards unread for {unread_s:g} s, at or over the lag alarms' threshold "
                              f"({self.alarms.iterator_age_ms / 1000:g} s): every task death would page; shorten "
                              "ServiceConfig.lease_duration_s or raise AlarmConfig.iterator_age_ms")

    @property
    def stack_id(self) -> str:
        return f"{self.workload}-{self.environment_suffix}"

    @property
    def is_production(self) -> bool:
        return self.environment_suffix in PRODUCTION_SUFFIXES

    @property
    def max_tasks(self) -> int:
        """More consumers than shards would sit idle (StreamConfig.max_consumers)."""
        return self.stream.max_consumers

    @property
    def redis_auth_secret_name(self) -> str:
        """The pre-existing secret holding the Redis AUTH token (created by an operator)."""
        return redis_auth_secret_name(self.workload, self.environment_suffix)

    @property
    def catalog_api_secret_names(self) -> dict[str, str]:
        """The pre-existing secrets the catalog read API reads (created by an operator): reader, tokens, tls."""
        return catalog_api_secret_names(self.workload, self.environment_suffix)

    @property
    def tags(self) -> dict[str, str]:
        return {
            "Project": self.project,
            "Workload": self.workload,
            "Environment": self.environment_suffix,
            "Owner": self.owner,
            "CostCenter": self.cost_center,
            "ManagedBy": "cdktf",
            "DataClassification": self.data_classification,
        }


def _retail(suffix: str, alerts: tuple[AlertSubscription, ...], incidents: tuple[IncidentSubscription, ...]) -> WorkloadConfig:
    return WorkloadConfig(
        workload="retail",
        environment_suffix=suffix,
        alert_subscriptions=alerts,
        region=WORKLOAD_REGIONS["retail"],
        network=NetworkConfig(cidr_block="10.40.0.0/16", availability_zones=("us-east-1a", "us-east-1b")),
        # Suppliers push bursts; 6,000/min is six times the 1,000/min requirement.
        stream=StreamConfig(peak_records_per_minute=6_000, average_record_bytes=400),
        service=ServiceConfig(),
        cache=CacheConfig(),
        database=DatabaseConfig(db_name="catalog"),
        archive=ArchiveConfig(expiration_days=1_096),  # at least 3 years
        # A request carries up to 500 records: at the 6,000/min peak, suppliers batching 100 a request
        # make about one request a second in all. Each tier is per key.
        supplier_api=SupplierApiConfig(tiers=(
            UsageTier("trial", rate_limit_per_second=1, burst_limit=2, quota_per_day=5_000),
            UsageTier("standard", rate_limit_per_second=5, burst_limit=10, quota_per_day=50_000),
            UsageTier("bulk", rate_limit_per_second=20, burst_limit=40, quota_per_day=200_000),
        )),
        # The storefront reads through an internal ALB, by a name with an ACM certificate an operator
        # issued (or imported) before the first deploy (docs/catalog-api.md).
        catalog_api=CatalogReadApiConfig(certificate_domain=f"catalog-{suffix}.retail.internal"),
        cost_center="cc-retail",
        data_classification="confidential",
    )


def _factory(suffix: str, alerts: tuple[AlertSubscription, ...], incidents: tuple[IncidentSubscription, ...]) -> WorkloadConfig:
    return WorkloadConfig(
        workload="factory",
        environment_suffix=suffix,
        alert_subscriptions=alerts,
        region=WORKLOAD_REGIONS["factory"],
        network=NetworkConfig(cidr_block="10.50.0.0/16", availability_zones=("eu-west-1a", "eu-west-1b")),
        # A few hundred sensors at one reading per second each.
        stream=StreamConfig(peak_records_per_minute=30_000, average_record_bytes=200),
        service=ServiceConfig(lag_target_ms=10_000),  # anomalies must surface fast
        cache=CacheConfig(maxmemory_policy="volatile-lru"),  # detector state has no TTL: keep it
        database=DatabaseConfig(db_name="telemetry", allocated_storage_gb=100, max_allocated_storage_gb=1_000),
        archive=ArchiveConfig(expiration_days=2_557),  # 7-year compliance period
        alarms=AlarmConfig(iterator_age_ms=30_000),
        incidents=IncidentConfig(subscriptions=incidents),
        iot=IotConfig(),  # each sensor its own certificate, 10 readings a message through Basic Ingest
        cost_center="cc-factory",
        data_classification="restricted",
    )


def _production(config: WorkloadConfig) -> WorkloadConfig:
    """Production sizes. Its safety is the settings' defaults, which it keeps."""
    return replace(
        config,
        service=replace(config.service, desired_count=max(2, config.service.desired_count)),
        database=replace(config.database, instance_class="db.r7g.large", performance_insights_retention_days=731),
        cache=replace(config.cache, node_type="cache.r7g.large"),
    )


def _destroyable(config: WorkloadConfig) -> WorkloadConfig:
    """Every opt-out from the production-safe defaults an environment meant to be destroyed
    makes, each named: what would otherwise stop `cdktf destroy` or outlive it, and what a dev
    environment does not need to pay for (`make cost`; every security control stays)."""
    return replace(
        config,
        # The smallest sizes that run the dev traffic: a quarter vCPU per task, a micro database
        # and one micro cache node (no standby: failover is production's, and staying within
        # $150 a month with the read API's load balancer needs the replica's $11.68), on-demand
        # stream capacity (billed per stream-hour, not per shard-hour with the week of retention
        # on each), and the interface endpoints in one zone.
        network=replace(config.network, endpoint_zones=1),
        stream=replace(config.stream, stream_mode="ON_DEMAND"),
        service=replace(config.service, cpu=256, memory_mib=512, min_count=1, log_retention_days=30,
                        force_delete_images=True),
        database=replace(config.database, instance_class="db.t4g.micro", allocated_storage_gb=20,
                         max_allocated_storage_gb=100, multi_az=False, deletion_protection=False,
                         skip_final_snapshot=True, backup_retention_days=7),
        cache=replace(config.cache, node_type="cache.t4g.micro", num_cache_clusters=1, snapshot_retention_limit_days=3,
                      final_snapshot=False),
        # One smallest read API task (two at most), and an ALB and access-log bucket a destroy may delete.
        catalog_api=(replace(config.catalog_api, cpu=256, memory_mib=512, min_count=1, max_count=2,
                             deletion_protection=False, log_retention_days=30,
                             access_log_retention_days=30, access_log_force_destroy=True)
                     if config.catalog_api else None),
        # No write-once archive (a locked bucket can never be emptied), no vault lock, and
        # database backups for a week, not for the compliance period.
        archive=replace(config.archive, object_lock=False, force_destroy=True, access_log_retention_days=None,
                        backup_retention_days=7, backup_vault_lock=False,
                        buffering_interval_seconds=60),  # what was just sent is in the archive within a minute
        log_retention_days=30,
        key_deletion_window_days=7,  # the shortest KMS allows
        # The account's IoT log and logging options are one per region: a destroyable environment
        # never owns them (its destroy would turn off every environment's device logs).
        iot=replace(config.iot, account_logging=False) if config.iot else None,
    )


_BUILDERS = {"retail": _retail, "factory": _factory}
if tuple(_BUILDERS) != WORKLOADS:
    raise RuntimeError("stacks/workloads.py lists the workloads: give each exactly one builder here")


def build_config(workload: str, suffix: str, alert_subscriptions: str | None = None,
                 incident_subscriptions: str | None = None, suppliers: str | None = None) -> WorkloadConfig:
    """The config of one stack. `alert_subscriptions` (`protocol:endpoint,...`),
    `incident_subscriptions` and `suppliers` default to the ALERT_SUBSCRIPTIONS,
    INCIDENT_SUBSCRIPTIONS and SUPPLIERS environment variables."""
    if workload not in _BUILDERS:
        raise ValueError(f"unknown workload {workload!r}; expected one of {sorted(_BUILDERS)}")
    text = os.environ.get(ALERT_SUBSCRIPTIONS_ENV, "") if alert_subscriptions is None else alert_subscriptions
    try:
        alerts = AlertSubscription.parse_list(text)
    except ValueError as error:
        raise ConfigError(f"{ALERT_SUBSCRIPTIONS_ENV}: {error}") from error
    text = os.environ.get(INCIDENT_SUBSCRIPTIONS_ENV, "") if incident_subscriptions is None else incident_subscriptions
    try:
        incidents = IncidentSubscription.parse_list(text)
    except ValueError as error:
        raise ConfigError(f"{INCIDENT_SUBSCRIPTIONS_ENV}: {error}") from error
    config = _BUILDERS[workload](validate_suffix(suffix), alerts, incidents)
    if config.supplier_api is not None:
        try:
            config = replace(config, supplier_api=replace(
                config.supplier_api,
                suppliers=Supplier.parse_list(os.environ.get(SUPPLIERS_ENV, "") if suppliers is None else suppliers)))
        except ValueError as error:
            raise ConfigError(f"{SUPPLIERS_ENV}: {error}") from error
    tag = os.environ.get(IMAGE_TAG_ENV, "").strip()
    if tag:
        try:
            config = replace(config, service=replace(config.service, image_tag=tag))
        except ValueError as error:
            raise ConfigError(f"{IMAGE_TAG_ENV}: {error}") from error
    strategy = os.environ.get(AUTH_UPDATE_ENV, "").strip().upper()
    if strategy:
        try:
            config = replace(config, cache=replace(config.cache, auth_token_update_strategy=strategy))
        except ValueError as error:
            raise ConfigError(f"{AUTH_UPDATE_ENV}: {error}") from error
    config = _production(config) if config.is_production else _destroyable(config)
    return _with_exec(config, os.environ.get(EXEC_ENV, ""), os.environ.get(EXEC_OPERATORS_ENV, ""))


def _with_exec(config: WorkloadConfig, setting: str, operators: str = "") -> WorkloadConfig:
    value = setting.strip().lower()
    if value in ("", "off", "false", "0"):
        return config
    if value not in ("on", "true", "1"):
        raise ConfigError(f"{EXEC_ENV}: {setting!r} is neither on nor off")
    if config.is_production:
        raise ConfigError(f"{config.stack_id}: {EXEC_ENV}=on: production tasks get no shell")
    roles = tuple(r.strip() for r in operators.split(",") if r.strip()) or DEFAULT_EXEC_OPERATOR_ROLES
    try:
        return replace(config, service=replace(config.service, enable_execute_command=True, exec_operator_roles=roles))
    except ValueError as error:
        raise ConfigError(f"{EXEC_OPERATORS_ENV}: {error}") from error
