"""RDS PostgreSQL 16: the system of record. Encrypted, TLS-only, private, self-rotating."""
from __future__ import annotations

from typing import Any

from cdktf import TerraformResourceLifecycle
from cdktf_cdktf_provider_aws.db_instance import DbInstance
from cdktf_cdktf_provider_aws.db_parameter_group import DbParameterGroup, DbParameterGroupParameter
from cdktf_cdktf_provider_aws.db_subnet_group import DbSubnetGroup
from cdktf_cdktf_provider_aws.iam_role import IamRole
from cdktf_cdktf_provider_aws.iam_role_policy_attachment import IamRolePolicyAttachment
from cdktf_cdktf_provider_aws.secretsmanager_secret_rotation import (
    SecretsmanagerSecretRotation,
    SecretsmanagerSecretRotationRotationRules,
)
from cdktf_cdktf_provider_aws.security_group import SecurityGroup
from cdktf_cdktf_provider_aws.vpc_security_group_egress_rule import VpcSecurityGroupEgressRule
from cdktf_cdktf_provider_aws.vpc_security_group_ingress_rule import VpcSecurityGroupIngressRule
from constructs import Construct

from pipeline_lib import iam
from pipeline_lib.alarms import AlarmSpec, MetricAlarmSpec, Widget
from pipeline_lib.context import StackContext
from pipeline_lib.encryption_key import EncryptionKey
from pipeline_lib.log_group import EncryptedLogGroup
from pipeline_lib.network import Network
from pipeline_lib.settings import AlarmConfig, DatabaseConfig, pg_max_connections
from policy.conventions import rds_log_group

POSTGRES_PORT = 5432
LOG_EXPORTS = ("postgresql", "upgrade")


class Database(Construct):
    """The master password is RDS-managed (a secret RDS owns, encrypted with our key)
    and rotated by Secrets Manager every `rotation_days`, without a rotation lambda."""

    def __init__(
        self,
        scope: Construct,
        id_: str,
        *,
        context: StackContext,
        network: Network,
        settings: DatabaseConfig,
    ) -> None:
        super().__init__(scope, id_)
        naming, account, key = context.naming, context.account, context.key
        self._account = account
        self.settings = settings
        identifier = naming.name("db")
        self.security_group = network.security_group(self, "sg", purpose="db",
                                                     description="PostgreSQL: TLS from the processor only")
        subnet_group = DbSubnetGroup(
            self, "subnets", name=naming.name("db"), subnet_ids=network.subnet_ids,
            description=f"Private subnets of {naming.name('vpc')}",
            lifecycle=TerraformResourceLifecycle(create_before_destroy=True),
        )
        parameters = DbParameterGroup(
            self,
            "parameters",
            # A prefix (with the family in it, for the reader): a major upgrade or a new
            # description creates the next group beside the old one (create_before_destroy),
            # which RDS will not delete while the instance uses it.
            name_prefix=naming.prefix(f"db-{settings.parameter_group_family}"),
            family=settings.parameter_group_family,
            description=f"TLS-only PostgreSQL for {naming.workload}",
            parameter=[
                DbParameterGroupParameter(name="rds.force_ssl", value="1", apply_method="pending-reboot"),
                DbParameterGroupParameter(name="log_min_duration_statement", value="1000"),  # slow > 1 s
                DbParameterGroupParameter(name="log_statement", value="ddl"),
                DbParameterGroupParameter(name="log_connections", value="1"),
                DbParameterGroupParameter(name="log_disconnections", value="1"),
            ],
            lifecycle=TerraformResourceLifecycle(create_before_destroy=True),
        )
        # RDS would create these itself, unencrypted and kept forever; creating them
        # first gives them our key and a retention, and lets destroy remove them.
        self.log_groups = [
            EncryptedLogGroup(
                self, f"log-{export}", name=rds_log_group(identifier, export), key=key,
                retention_in_days=context.log_retention_days,
            )
            for export in LOG_EXPORTS
        ]
        monitoring_role = IamRole(
            self,
            "monitoring-role",
            name=naming.name("db-monitoring"),
            assume_role_policy=iam.assume_role_policy("monitoring.rds.amazonaws.com", account_id=account.account_id),
        )
        IamRolePolicyAttachment(
            self, "monitoring-policy", role=monitoring_role.name,
            policy_arn=f"arn:{account.partition}:iam::aws:policy/service-role/AmazonRDSEnhancedMonitoringRole",
        )
        self.instance = DbInstance(
            self,
            "postgres",
            identifier=identifier,
            engine="postgres",
            engine_version=settings.engine_version,
            instance_class=settings.instance_class,
            db_name=settings.db_name,
            username=settings.master_username,
            manage_master_user_password=True,
            master_user_secret_kms_key_id=key.arn,
            port=POSTGRES_PORT,
            allocated_storage=settings.allocated_storage_gb,
            max_allocated_storage=settings.max_allocated_storage_gb,
            storage_type="gp3",
            storage_encrypted=True,
            kms_key_id=key.arn,
            db_subnet_group_name=subnet_group.name,
            vpc_security_group_ids=[self.security_group.id],
            parameter_group_name=parameters.name,
            publicly_accessible=False,
            multi_az=settings.multi_az,
            ca_cert_identifier=settings.ca_cert_identifier,
            iam_database_authentication_enabled=True,
            enabled_cloudwatch_logs_exports=list(LOG_EXPORTS),
            performance_insights_enabled=True,
            performance_insights_kms_key_id=key.arn,
            performance_insights_retention_period=settings.performance_insights_retention_days,
            monitoring_interval=settings.monitoring_interval_seconds,
            monitoring_role_arn=monitoring_role.arn,
            backup_retention_period=settings.backup_retention_days,
            backup_window="02:00-03:00",
            maintenance_window="sun:04:00-sun:05:00",
            copy_tags_to_snapshot=True,
            auto_minor_version_upgrade=True,
            deletion_protection=settings.deletion_protection,
            skip_final_snapshot=settings.skip_final_snapshot,
            # Snapshots outlive their instance: a fixed name would fail the next teardown of a
            # re-created instance ("already exists"). One per creation, kept for its lifetime.
            final_snapshot_identifier=None if settings.skip_final_snapshot else naming.per_creation("db-final"),
            delete_automated_backups=settings.skip_final_snapshot,
            apply_immediately=not settings.deletion_protection,
            depends_on=[group.log_group for group in self.log_groups],
            lifecycle=TerraformResourceLifecycle(ignore_changes=["final_snapshot_identifier"]),
        )
        self.rotation = SecretsmanagerSecretRotation(
            self,
            "rotation",
            secret_id=self.secret_arn,
            rotation_rules=SecretsmanagerSecretRotationRotationRules(
                automatically_after_days=settings.rotation_days
            ),
        )

    @property
    def secret_arn(self) -> str:
        """The RDS-managed master secret (JSON with `username` and `password`)."""
        return self.instance.master_user_secret.get(0).secret_arn

    @property
    def endpoint(self) -> str:
        return self.instance.address

    @property
    def port(self) -> int:
        return POSTGRES_PORT

    @property
    def name(self) -> str:
        return self.settings.db_name

    def alarms(self, thresholds: AlarmConfig) -> list[AlarmSpec]:
        dims = {"DBInstanceIdentifier": self.instance.identifier}
        return [
            MetricAlarmSpec(purpose="db-cpu", description="PostgreSQL CPU is high", namespace="AWS/RDS",
                            metric_name="CPUUtilization", dimensions=dims, statistic="Average",
                            comparison="GreaterThanThreshold", threshold=thresholds.db_cpu_percent),
            MetricAlarmSpec(purpose="db-free-storage", description="PostgreSQL is running out of storage",
                            namespace="AWS/RDS", metric_name="FreeStorageSpace", dimensions=dims, statistic="Minimum",
                            comparison="LessThanThreshold", threshold=thresholds.db_free_storage_bytes,
                            evaluation_periods=1),
            MetricAlarmSpec(purpose="db-connections",
                            description=f"PostgreSQL connections near the limit ({self.max_connections} for a "
                                        f"{self.settings.instance_class})",
                            namespace="AWS/RDS", metric_name="DatabaseConnections", dimensions=dims,
                            statistic="Maximum", comparison="GreaterThanThreshold",
                            threshold=self.max_connections * thresholds.db_connections_percent // 100),
        ]

    def widgets(self) -> list[Widget]:
        instance = ["DBInstanceIdentifier", self.instance.identifier]
        return [Widget("PostgreSQL", [
            ["AWS/RDS", "CPUUtilization", *instance, {"stat": "Average"}],
            ["AWS/RDS", "DatabaseConnections", *instance, {"stat": "Maximum", "yAxis": "right"}]])]

    @property
    def max_connections(self) -> int:
        """RDS's default max_connections for this instance class (the parameter group leaves it alone)."""
        return pg_max_connections(self.settings.instance_class)

    @property
    def app_username(self) -> str:
        """The role the service signs in as (created by the migration, not by the stack)."""
        return self.settings.app_username

    def connect_statements(self) -> list[dict[str, Any]]:
        """IAM database authentication as the application role, on this instance only."""
        user = self._account.arn("rds-db", f"dbuser:{self.instance.resource_id}/{self.settings.app_username}")
        return [iam.statement("SignInAsTheApplicationRole", ["rds-db:connect"], [user])]

    def read_secret_statements(self, key: EncryptionKey) -> list[dict[str, Any]]:
        return [
            iam.statement(
                "ReadTheDatabaseSecret", ["secretsmanager:GetSecretValue"],  # all the migrate task calls
                [self.secret_arn],
            ),
            iam.statement("DecryptTheDatabaseSecret", ["kms:Decrypt"], [key.arn],
                          condition={"StringEquals": {"kms:ViaService": key.via("secretsmanager")}}),
        ]

    def allow_from(self, client: SecurityGroup, *, client_name: str) -> None:
        VpcSecurityGroupIngressRule(
            self, f"from-{client_name}", security_group_id=self.security_group.id,
            referenced_security_group_id=client.id, ip_protocol="tcp", from_port=POSTGRES_PORT,
            to_port=POSTGRES_PORT, description=f"PostgreSQL TLS from {client_name}",
        )
        VpcSecurityGroupEgressRule(
            self, f"{client_name}-to-db", security_group_id=client.id,
            referenced_security_group_id=self.security_group.id, ip_protocol="tcp", from_port=POSTGRES_PORT,
            to_port=POSTGRES_PORT, description="PostgreSQL TLS to the database",
        )

