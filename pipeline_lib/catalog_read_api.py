"""The retail catalog's read API for the storefront: `python -m processor catalog-api` (processor/catalog_api.py)
as its own Fargate service of the processor's image, behind an internal ALB, TLS at both hops.

The ALB listens on 443 with an existing ACM certificate (read by its domain: the stack creates
no certificates and no secrets) and a TLS 1.3/1.2 policy, and forwards over HTTPS to the tasks,
which serve TLS with a certificate from a secret (the ALB does not verify a target's
certificate; the connection is encrypted all the same). Health checks: HTTPS `/healthz`, which
answers 200 only while PostgreSQL and Redis answer. The tasks read PostgreSQL as the migration's
SELECT-only reader role with the password from its secret, and Redis with the AUTH token; ECS
injects the secrets (the execution role may read exactly those four); the task role has no
permission at all, since the application calls no AWS API. Target tracking on requests per task
sets the count between the config's bounds. The ALB's access logs go to a bucket of their own, which
only the region's ELB log delivery may write to, under the API's prefix: SSE-S3, a documented exception
to the stack's key, since ALB log delivery writes to no SSE-KMS bucket (pipeline_lib/log_delivery_bucket.py).
Why an internal ALB rather than an HTTP API with a VPC link, and what each costs: docs/catalog-api.md.
"""
from __future__ import annotations

import json

from cdktf import TerraformResourceLifecycle
from cdktf_cdktf_provider_aws.appautoscaling_policy import (
    AppautoscalingPolicy,
    AppautoscalingPolicyTargetTrackingScalingPolicyConfiguration,
    AppautoscalingPolicyTargetTrackingScalingPolicyConfigurationPredefinedMetricSpecification,
)
from cdktf_cdktf_provider_aws.appautoscaling_target import AppautoscalingTarget
from cdktf_cdktf_provider_aws.data_aws_acm_certificate import DataAwsAcmCertificate
from cdktf_cdktf_provider_aws.data_aws_secretsmanager_secret import DataAwsSecretsmanagerSecret
from cdktf_cdktf_provider_aws.ecs_service import (
    EcsService,
    EcsServiceDeploymentCircuitBreaker,
    EcsServiceLoadBalancer,
    EcsServiceNetworkConfiguration,
)
from cdktf_cdktf_provider_aws.ecs_task_definition import (
    EcsTaskDefinition,
    EcsTaskDefinitionRuntimePlatform,
    EcsTaskDefinitionVolume,
)
from cdktf_cdktf_provider_aws.iam_role import IamRole
from cdktf_cdktf_provider_aws.iam_role_policy import IamRolePolicy
from cdktf_cdktf_provider_aws.lb import Lb, LbAccessLogs
from cdktf_cdktf_provider_aws.lb_listener import LbListener, LbListenerDefaultAction
from cdktf_cdktf_provider_aws.lb_target_group import LbTargetGroup, LbTargetGroupHealthCheck
from cdktf_cdktf_provider_aws.vpc_security_group_egress_rule import VpcSecurityGroupEgressRule
from cdktf_cdktf_provider_aws.vpc_security_group_ingress_rule import VpcSecurityGroupIngressRule
from constructs import Construct

from pipeline_lib import iam
from pipeline_lib.alarms import AlarmSpec, MetricAlarmSpec, Widget
from pipeline_lib.cache import Cache
from pipeline_lib.context import StackContext
from pipeline_lib.database import Database
from pipeline_lib.log_delivery_bucket import LogDeliveryBucket, elb_access_logging
from pipeline_lib.log_group import EncryptedLogGroup
from pipeline_lib.network import HTTPS, Network
from pipeline_lib.private_name import PrivateName
from pipeline_lib.processor_service import ProcessorService
from pipeline_lib.settings import AlarmConfig, CatalogReadApiConfig
from policy.conventions import replacement_digest

CONTAINER_NAME = "catalog-api"
HEALTH_PATH = "/healthz"
# What the read API takes from the processor's task environment: where PostgreSQL and Redis are, and how
# they are verified; nothing of the stream's.
SHARED_ENVIRONMENT = ("AWS_REGION", "DB_HOST", "DB_PORT", "DB_NAME", "DB_SSLMODE", "REDIS_HOST", "REDIS_PORT",
                      "REDIS_TLS")
ALB = "AWS/ApplicationELB"
ACCESS_LOG_PREFIX = "catalog-api"  # the ALB writes <prefix>/AWSLogs/<account id>/elasticloadbalancing/... in its bucket


class CatalogReadApi(Construct):
    def __init__(self, scope: Construct, id_: str, *, context: StackContext, network: Network,
                 service: ProcessorService, database: Database, cache: Cache, settings: CatalogReadApiConfig,
                 reader_secret_name: str, tokens_secret_name: str, tls_secret_name: str) -> None:
        """`*_secret_name`: secrets an operator creates before the first deploy (docs/catalog-api.md): the
        reader role's password, the callers' bearer tokens (comma-separated) and the tasks' serving
        certificate with its key (PEM)."""
        super().__init__(scope, id_)
        naming, account, key = context.naming, context.account, context.key
        self.settings = settings
        self.name = naming.name("catalog-api")
        # Data sources, never resources: the stacks create no secrets and no certificates.
        self.reader_secret = DataAwsSecretsmanagerSecret(self, "reader-secret", name=reader_secret_name)
        self.tokens_secret = DataAwsSecretsmanagerSecret(self, "tokens-secret", name=tokens_secret_name)
        self.tls_secret = DataAwsSecretsmanagerSecret(self, "tls-secret", name=tls_secret_name)
        self.certificate = DataAwsAcmCertificate(self, "certificate", domain=settings.certificate_domain,
                                                 statuses=["ISSUED"], most_recent=True,
                                                 key_types=["RSA_2048", "EC_prime256v1"])
        self.log_group = EncryptedLogGroup(self, "logs", name=naming.path("catalog-api"), key=key,
                                           retention_in_days=settings.log_retention_days)

        # Callers -> the ALB (443) -> the tasks (the container port) -> PostgreSQL and Redis. A caller (the
        # storefront's tasks) joins the callers' group: no CIDR is opened, not even the VPC's.
        self.callers_security_group = network.security_group(
            self, "callers-sg", purpose="catalog-callers",
            description="Callers of the catalog read API: attach to a storefront's tasks; HTTPS to its ALB only")
        self.alb_security_group = network.security_group(
            self, "alb-sg", purpose="catalog-alb",
            description="Catalog read API ALB: HTTPS from its callers' group; to the read API tasks only")
        self.security_group = network.security_group(
            self, "sg", purpose="catalog-api",
            description="Catalog read API tasks: HTTPS from their ALB; to PostgreSQL, Redis and the endpoints")
        VpcSecurityGroupIngressRule(
            self, "alb-from-callers", security_group_id=self.alb_security_group.id,
            referenced_security_group_id=self.callers_security_group.id, ip_protocol="tcp", from_port=HTTPS,
            to_port=HTTPS, description="HTTPS from the catalog API's callers")
        VpcSecurityGroupEgressRule(
            self, "callers-to-alb", security_group_id=self.callers_security_group.id,
            referenced_security_group_id=self.alb_security_group.id, ip_protocol="tcp", from_port=HTTPS,
            to_port=HTTPS, description="HTTPS to the catalog read API")
        port = settings.container_port
        VpcSecurityGroupEgressRule(
            self, "alb-to-tasks", security_group_id=self.alb_security_group.id,
            referenced_security_group_id=self.security_group.id, ip_protocol="tcp", from_port=port, to_port=port,
            description="HTTPS to the read API tasks")
        VpcSecurityGroupIngressRule(
            self, "tasks-from-alb", security_group_id=self.security_group.id,
            referenced_security_group_id=self.alb_security_group.id, ip_protocol="tcp", from_port=port,
            to_port=port, description="HTTPS from the catalog ALB")
        network.allow_endpoint_access(self.security_group, client_name="catalog-api")
        database.allow_from(self.security_group, client_name="catalog-api")
        cache.allow_from(self.security_group, client_name="catalog-api")

        secrets = {"DB_PASSWORD": self.reader_secret.arn, "REDIS_PASSWORD": cache.auth_secret.arn,
                   "CATALOG_API_TOKENS": self.tokens_secret.arn, "CATALOG_API_TLS": self.tls_secret.arn}
        self.execution_role = IamRole(
            self, "execution-role", name=naming.name("catalog-api-exec"),
            assume_role_policy=iam.assume_role_policy("ecs-tasks.amazonaws.com", account_id=account.account_id))
        execution_statements = [
            iam.statement("AuthenticateToEcr", ["ecr:GetAuthorizationToken"], ["*"]),
            iam.statement("PullTheProcessorImage",
                          ["ecr:BatchCheckLayerAvailability", "ecr:BatchGetImage", "ecr:GetDownloadUrlForLayer"],
                          [service.repository.arn]),
            iam.statement("WriteContainerLogs", ["logs:CreateLogStream", "logs:PutLogEvents"],
                          [f"{self.log_group.arn}:*"]),
            iam.statement("InjectTheReadApiSecrets", ["secretsmanager:GetSecretValue"], sorted(secrets.values())),
            iam.statement("DecryptTheImage", ["kms:Decrypt"], [key.arn],
                          condition={"StringEquals": {"kms:ViaService": key.via("ecr")}}),
        ]
        IamRolePolicy(self, "execution-policy", name=naming.name("catalog-api-start"), role=self.execution_role.id,
                      policy=iam.document(*execution_statements))
        # The application calls no AWS API (its secrets arrive in its environment): a role with no permission.
        self.task_role = IamRole(
            self, "task-role", name=naming.name("catalog-api-task"),
            assume_role_policy=iam.assume_role_policy("ecs-tasks.amazonaws.com", account_id=account.account_id))
        network.serve(execution_statements)

        environment = {
            **{name: service.environment[name] for name in SHARED_ENVIRONMENT},
            "DB_USER": settings.reader_user,
            "CATALOG_API_PORT": str(port),
            "CATALOG_API_DB_POOL": str(settings.db_pool_size),
        }
        container = service.container(environment, writable={"tmp": "/tmp"}, log_prefix=CONTAINER_NAME,
                                      secrets=secrets, command=["catalog-api"], name=CONTAINER_NAME,
                                      log_group=self.log_group, ports=(port,))
        self.task_definition = EcsTaskDefinition(
            self, "task", family=self.name, requires_compatibilities=["FARGATE"], network_mode="awsvpc",
            cpu=str(settings.cpu), memory=str(settings.memory_mib),
            runtime_platform=EcsTaskDefinitionRuntimePlatform(operating_system_family="LINUX",
                                                              cpu_architecture=service.cpu_architecture),
            execution_role_arn=self.execution_role.arn, task_role_arn=self.task_role.arn,
            volume=[EcsTaskDefinitionVolume(name="tmp")], container_definitions=json.dumps([container]),
        )

        # One line per request (caller, path, status, timings, TLS protocol and cipher) in a bucket of their own:
        # SSE-S3, since ALB log delivery writes to no SSE-KMS bucket (pipeline_lib/log_delivery_bucket.py).
        self.access_log = LogDeliveryBucket(
            self, "access-log", context=context, purpose="catalog-alb-logs",
            delivery=elb_access_logging(account.region, account.account_id, ACCESS_LOG_PREFIX),
            retention_days=settings.access_log_retention_days, force_destroy=settings.access_log_force_destroy)
        self.load_balancer = Lb(
            self, "alb", name=self.name, internal=True, load_balancer_type="application",
            security_groups=[self.alb_security_group.id], subnets=network.subnet_ids,
            drop_invalid_header_fields=True, desync_mitigation_mode="strictest",
            enable_deletion_protection=settings.deletion_protection, idle_timeout=60,
            access_logs=LbAccessLogs(bucket=self.access_log.bucket.id, prefix=ACCESS_LOG_PREFIX, enabled=True),
            # ELB checks that it may write (a test object) when logging is turned on: the policy comes first.
            depends_on=[self.access_log.policy],
        )
        # The listener and the service use the group, and AWS will not delete a group in use
        # (ResourceInUse): what forces a new one makes it under a new name, before the old one goes.
        # "cat", not "catalog-api": the digest and a 12-character suffix must fit in 32 characters.
        replaced_by = {"port": str(port), "protocol": "HTTPS", "protocol_version": "", "target_type": "ip"}
        self.target_group = LbTargetGroup(
            self, "targets", name=naming.name(f"cat-{replacement_digest(tuple(replaced_by.values()))}"),
            port=port, protocol=replaced_by["protocol"], target_type=replaced_by["target_type"],
            vpc_id=network.vpc.id, deregistration_delay="30",
            lifecycle=TerraformResourceLifecycle(create_before_destroy=True),
            health_check=LbTargetGroupHealthCheck(enabled=True, protocol="HTTPS", path=HEALTH_PATH, matcher="200",
                                                  interval=15, timeout=5, healthy_threshold=2,
                                                  unhealthy_threshold=3),
        )
        self.listener = LbListener(
            self, "https", load_balancer_arn=self.load_balancer.arn, port=HTTPS, protocol="HTTPS",
            ssl_policy=settings.tls_policy, certificate_arn=self.certificate.arn,
            default_action=[LbListenerDefaultAction(type="forward", target_group_arn=self.target_group.arn)],
        )
        # The certificate's name, resolving to the ALB inside the VPC: what callers connect to and verify.
        self.dns = PrivateName(self, "dns", context=context, network=network, name=settings.certificate_domain,
                               target=self.load_balancer, purpose="catalog-api")
        self.service = EcsService(
            self, "service", name=self.name, cluster=service.cluster.arn, task_definition=self.task_definition.arn,
            desired_count=settings.min_count, launch_type="FARGATE", platform_version="LATEST",
            network_configuration=EcsServiceNetworkConfiguration(
                subnets=network.subnet_ids, security_groups=[self.security_group.id], assign_public_ip=False),
            load_balancer=[EcsServiceLoadBalancer(target_group_arn=self.target_group.arn,
                                                  container_name=CONTAINER_NAME, container_port=port)],
            health_check_grace_period_seconds=30,
            deployment_circuit_breaker=EcsServiceDeploymentCircuitBreaker(enable=True, rollback=True),
            deployment_minimum_healthy_percent=100, deployment_maximum_percent=200,
            enable_ecs_managed_tags=True, propagate_tags="SERVICE",
            wait_for_steady_state=False,  # the first apply happens before any image is pushed
            lifecycle=TerraformResourceLifecycle(ignore_changes=["desired_count"]),  # autoscaling owns it
            depends_on=[self.listener],  # a service's target group must belong to a load balancer first
        )
        self.scaling_target: AppautoscalingTarget | None = None
        if settings.max_count > settings.min_count:
            self._scale_on_requests(context, service, settings)

    def _scale_on_requests(self, context: StackContext, service: ProcessorService,
                           settings: CatalogReadApiConfig) -> None:
        """Target tracking on the ALB's requests per task: AWS adds tasks when it stays above the target
        and removes them, slowly, when it stays well below."""
        self.scaling_target = AppautoscalingTarget(
            self, "scaling-target", service_namespace="ecs", scalable_dimension="ecs:service:DesiredCount",
            resource_id=f"service/{service.cluster.name}/{self.service.name}",
            min_capacity=settings.min_count, max_capacity=settings.max_count,
            tags={"Name": context.naming.name("catalog-api-scaling")},
        )
        AppautoscalingPolicy(
            self, "scale-on-requests", name=context.naming.name("catalog-api-requests"),
            policy_type="TargetTrackingScaling", service_namespace="ecs",
            scalable_dimension="ecs:service:DesiredCount", resource_id=self.scaling_target.resource_id,
            target_tracking_scaling_policy_configuration=AppautoscalingPolicyTargetTrackingScalingPolicyConfiguration(
                target_value=settings.requests_per_task_per_minute,
                predefined_metric_specification=(
                    AppautoscalingPolicyTargetTrackingScalingPolicyConfigurationPredefinedMetricSpecification(
                        predefined_metric_type="ALBRequestCountPerTarget",
                        resource_label=f"{self.load_balancer.arn_suffix}/{self.target_group.arn_suffix}")),
                scale_in_cooldown=300, scale_out_cooldown=60,
            ),
        )

    @property
    def url(self) -> str:
        """Where callers reach the API: the certificate's name, an alias of the ALB in the VPC's private DNS."""
        return f"https://{self.settings.certificate_domain}"

    @property
    def _dimensions(self) -> dict[str, str]:
        return {"LoadBalancer": self.load_balancer.arn_suffix, "TargetGroup": self.target_group.arn_suffix}

    def alarms(self, thresholds: AlarmConfig) -> list[AlarmSpec]:
        targets, balancer = self._dimensions, {"LoadBalancer": self.load_balancer.arn_suffix}
        return [
            MetricAlarmSpec(
                purpose="catalog-api-p99-latency",
                description=(f"The catalog read API's p99 response time is above {thresholds.catalog_api_p99_latency_ms} "
                             "ms: a cold cache, a slow database or too few tasks"),
                namespace=ALB, metric_name="TargetResponseTime", dimensions=targets, statistic="p99",
                comparison="GreaterThanThreshold", threshold=thresholds.catalog_api_p99_latency_ms / 1000,
                treat_missing_data="notBreaching"),  # no request, no latency
            MetricAlarmSpec(
                purpose="catalog-api-target-5xx", description="The catalog read API's tasks answer 5xx",
                namespace=ALB, metric_name="HTTPCode_Target_5XX_Count", dimensions=targets, statistic="Sum",
                comparison="GreaterThanOrEqualToThreshold", threshold=thresholds.catalog_api_5xx_per_5min,
                evaluation_periods=1, treat_missing_data="notBreaching"),
            MetricAlarmSpec(
                purpose="catalog-api-alb-5xx",
                description="The catalog ALB answers 5xx itself: no healthy task, or tasks refusing connections",
                namespace=ALB, metric_name="HTTPCode_ELB_5XX_Count", dimensions=balancer, statistic="Sum",
                comparison="GreaterThanOrEqualToThreshold", threshold=thresholds.catalog_api_5xx_per_5min,
                evaluation_periods=1, treat_missing_data="notBreaching"),
            MetricAlarmSpec(
                purpose="catalog-api-unhealthy-tasks",
                description="A catalog read API task fails its health check (PostgreSQL or Redis unreachable)",
                namespace=ALB, metric_name="UnHealthyHostCount", dimensions=targets, statistic="Maximum",
                comparison="GreaterThanThreshold", threshold=0, period_seconds=60, evaluation_periods=5,
                treat_missing_data="notBreaching"),
            MetricAlarmSpec(
                purpose="catalog-api-no-healthy-task", description="The catalog read API has no healthy task",
                namespace=ALB, metric_name="HealthyHostCount", dimensions=targets, statistic="Minimum",
                comparison="LessThanThreshold", threshold=1, period_seconds=60, evaluation_periods=3,
                treat_missing_data="breaching"),  # no metric at all: no target at all
        ]

    def widgets(self) -> list[Widget]:
        lb = self.load_balancer.arn_suffix
        targets = ["LoadBalancer", lb, "TargetGroup", self.target_group.arn_suffix]
        return [
            Widget("Catalog read API: requests and errors", [
                [ALB, "RequestCount", *targets], [ALB, "HTTPCode_Target_4XX_Count", *targets],
                [ALB, "HTTPCode_Target_5XX_Count", *targets], [ALB, "HTTPCode_ELB_5XX_Count", "LoadBalancer", lb]]),
            Widget("Catalog read API: response time (s) and tasks", [
                [ALB, "TargetResponseTime", *targets, {"stat": "p50"}],
                [ALB, "TargetResponseTime", *targets, {"stat": "p99"}],
                [ALB, "HealthyHostCount", *targets, {"stat": "Minimum", "yAxis": "right"}],
                [ALB, "UnHealthyHostCount", *targets, {"stat": "Maximum", "yAxis": "right"}]]),
        ]

    # -- the migration's part -----------------------------------------------------------------------------
    def migration_environment(self) -> dict[str, str]:
        """What the migrate task needs to make the reader role (processor/__main__.py, `migrate`)."""
        return {"CATALOG_READER_USER": self.settings.reader_user, "CATALOG_READER_SECRET_ARN": self.reader_secret.arn}

    def migration_statements(self) -> list[dict[str, object]]:
        """The migrate task reads the reader's password itself (its own role, not the processor's)."""
        return [iam.statement("ReadTheCatalogReaderPassword", ["secretsmanager:GetSecretValue"],
                              [self.reader_secret.arn])]
