"""ElastiCache Redis: two nodes in two AZs, encrypted at rest and in transit, AUTH required."""
from __future__ import annotations

import re

from cdktf import TerraformResourceLifecycle
from cdktf_cdktf_provider_aws.data_aws_secretsmanager_secret import DataAwsSecretsmanagerSecret
from cdktf_cdktf_provider_aws.data_aws_secretsmanager_secret_version import DataAwsSecretsmanagerSecretVersion
from cdktf_cdktf_provider_aws.elasticache_parameter_group import (
    ElasticacheParameterGroup,
    ElasticacheParameterGroupParameter,
)
from cdktf_cdktf_provider_aws.elasticache_replication_group import (
    ElasticacheReplicationGroup,
    ElasticacheReplicationGroupLogDeliveryConfiguration,
)
from cdktf_cdktf_provider_aws.elasticache_subnet_group import ElasticacheSubnetGroup
from cdktf_cdktf_provider_aws.security_group import SecurityGroup
from cdktf_cdktf_provider_aws.vpc_security_group_egress_rule import VpcSecurityGroupEgressRule
from cdktf_cdktf_provider_aws.vpc_security_group_ingress_rule import VpcSecurityGroupIngressRule
from constructs import Construct

from pipeline_lib.alarms import AlarmSpec, MetricAlarmSpec, Widget
from pipeline_lib.context import StackContext
from pipeline_lib.log_group import EncryptedLogGroup
from pipeline_lib.network import Network
from pipeline_lib.settings import AlarmConfig, CacheConfig
from policy.conventions import replacement_digest

REDIS_PORT = 6379


class Cache(Construct):
    """The replication group reads its AUTH token from a secret an operator created."""

    def __init__(
        self,
        scope: Construct,
        id_: str,
        *,
        context: StackContext,
        network: Network,
        settings: CacheConfig,
        auth_secret_name: str,
    ) -> None:
        super().__init__(scope, id_)
        naming, key, log_retention_days = context.naming, context.key, context.log_retention_days
        self.settings = settings
        # A data source, never a resource: the stacks create no secrets.
        self.auth_secret = DataAwsSecretsmanagerSecret(self, "auth-secret", name=auth_secret_name)
        auth_token = DataAwsSecretsmanagerSecretVersion(self, "auth-token", secret_id=self.auth_secret.id)

        self.security_group = network.security_group(self, "sg", purpose="cache",
                                                     description="Redis: TLS from the processor only")
        subnet_group = ElasticacheSubnetGroup(
            self, "subnets", name=naming.name("cache"), subnet_ids=network.subnet_ids,
            description=f"Private subnets of {naming.name('vpc')}",
            lifecycle=TerraformResourceLifecycle(create_before_destroy=True),
        )
        # ElastiCache will not delete a group in use, and a new family (a Redis major upgrade) or
        # description replaces it. Its type has no name_prefix: the name carries the family and a
        # digest of both, so the replacement is created under a new name first, then the group
        # switches to it, then the old one goes.
        description = f"Redis settings for {naming.workload}"
        family = settings.parameter_group_family
        parameters = ElasticacheParameterGroup(
            self,
            "parameters",
            # (a family such as "redis6.x" has a dot, which a group name may not)
            name=naming.name(f"cache-{re.sub('[^a-z0-9]+', '-', family)}-{replacement_digest((family, description))}"),
            family=family,
            description=description,
            lifecycle=TerraformResourceLifecycle(create_before_destroy=True),
            parameter=[
                ElasticacheParameterGroupParameter(name="maxmemory-policy", value=settings.maxmemory_policy),
                ElasticacheParameterGroupParameter(name="slowlog-log-slower-than", value="10000"),  # 10 ms
            ],
        )
        self.slow_log = EncryptedLogGroup(
            self, "slow-log", name=naming.vended_log_path("redis/slow-log"), key=key, retention_in_days=log_retention_days
        )
        self.engine_log = EncryptedLogGroup(
            self, "engine-log", name=naming.vended_log_path("redis/engine-log"), key=key, retention_in_days=log_retention_days
        )
        self.replication_group = ElasticacheReplicationGroup(
            self,
            "redis",
            replication_group_id=naming.name("cache"),
            description=f"Hot state for the {naming.workload} processor",
            engine="redis",
            engine_version=settings.engine_version,
            node_type=settings.node_type,
            num_cache_clusters=settings.num_cache_clusters,
            port=REDIS_PORT,
            parameter_group_name=parameters.name,
            subnet_group_name=subnet_group.name,
            security_group_ids=[self.security_group.id],
            automatic_failover_enabled=settings.failover,
            multi_az_enabled=settings.failover,
            at_rest_encryption_enabled="true",
            kms_key_id=key.arn,
            transit_encryption_enabled=True,
            transit_encryption_mode="required",
            auth_token=auth_token.secret_string,
            auth_token_update_strategy=settings.auth_token_update_strategy,
            snapshot_retention_limit=settings.snapshot_retention_limit_days,
            snapshot_window="03:00-04:00",
            maintenance_window="sun:05:00-sun:06:00",
            auto_minor_version_upgrade="true",
            apply_immediately=True,
            # One per creation of the group (a fixed one fails the next teardown of a re-created group).
            final_snapshot_identifier=naming.per_creation("cache-final") if settings.final_snapshot else None,
            lifecycle=TerraformResourceLifecycle(ignore_changes=["final_snapshot_identifier"]),
            log_delivery_configuration=[
                ElasticacheReplicationGroupLogDeliveryConfiguration(
                    destination=log.name, destination_type="cloudwatch-logs", log_format="json", log_type=log_type
                )
                for log, log_type in ((self.slow_log, "slow-log"), (self.engine_log, "engine-log"))
            ],
        )

    @property
    def endpoint(self) -> str:
        return self.replication_group.primary_endpoint_address

    @property
    def node_ids(self) -> list[str]:
        """The member clusters' ids: ElastiCache names them `<group>-001`, `-002`, ... in order."""
        group = self.replication_group.replication_group_id
        return [f"{group}-{node:03d}" for node in range(1, self.settings.num_cache_clusters + 1)]

    def alarms(self, thresholds: AlarmConfig) -> list[AlarmSpec]:
        """Per node: a replica can be full or hot while the primary is fine."""
        specs: list[AlarmSpec] = []
        for number, node in enumerate(self.node_ids, 1):
            dims = {"CacheClusterId": node}
            specs += [
                MetricAlarmSpec(purpose=f"cache-{number}-cpu", description=f"Redis node {number}: engine CPU is high",
                                namespace="AWS/ElastiCache", metric_name="EngineCPUUtilization", dimensions=dims,
                                statistic="Average", comparison="GreaterThanThreshold",
                                threshold=thresholds.cache_cpu_percent),
                MetricAlarmSpec(purpose=f"cache-{number}-memory", description=f"Redis node {number}: memory nearly full",
                                namespace="AWS/ElastiCache", metric_name="DatabaseMemoryUsagePercentage",
                                dimensions=dims, statistic="Maximum", comparison="GreaterThanThreshold",
                                threshold=thresholds.cache_memory_percent),
                MetricAlarmSpec(purpose=f"cache-{number}-evictions",
                                description=f"Redis node {number}: keys are being evicted", namespace="AWS/ElastiCache",
                                metric_name="Evictions", dimensions=dims, statistic="Sum",
                                comparison="GreaterThanThreshold", threshold=thresholds.cache_evictions_per_5min,
                                evaluation_periods=1, treat_missing_data="notBreaching"),
            ]
        return specs

    def widgets(self) -> list[Widget]:
        primary = ["CacheClusterId", self.node_ids[0]]
        return [Widget("Redis", [
            ["AWS/ElastiCache", "EngineCPUUtilization", *primary, {"stat": "Average"}],
            ["AWS/ElastiCache", "CacheHitRate", *primary, {"stat": "Average"}]])]

    @property
    def port(self) -> int:
        return REDIS_PORT

    def allow_from(self, client: SecurityGroup, *, client_name: str) -> None:
        VpcSecurityGroupIngressRule(
            self, f"from-{client_name}", security_group_id=self.security_group.id,
            referenced_security_group_id=client.id, ip_protocol="tcp", from_port=REDIS_PORT, to_port=REDIS_PORT,
            description=f"Redis TLS from {client_name}",
        )
        VpcSecurityGroupEgressRule(
            self, f"{client_name}-to-cache", security_group_id=client.id,
            referenced_security_group_id=self.security_group.id, ip_protocol="tcp", from_port=REDIS_PORT,
            to_port=REDIS_PORT, description="Redis TLS to the cache",
        )
