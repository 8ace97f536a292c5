"""The Fargate service that runs `python -m processor` against the stream.

The construct owns its wiring: image repository, roles and their grants, network
access to the database, cache and endpoints, and autoscaling on stream lag.
"""
from __future__ import annotations

import json
from typing import Any

from cdktf import TerraformResourceLifecycle
from cdktf_cdktf_provider_aws.appautoscaling_policy import (
    AppautoscalingPolicy,
    AppautoscalingPolicyStepScalingPolicyConfiguration,
    AppautoscalingPolicyStepScalingPolicyConfigurationStepAdjustment,
)
from cdktf_cdktf_provider_aws.appautoscaling_target import AppautoscalingTarget
from cdktf_cdktf_provider_aws.cloudwatch_metric_alarm import CloudwatchMetricAlarm
from cdktf_cdktf_provider_aws.ecr_lifecycle_policy import EcrLifecyclePolicy
from cdktf_cdktf_provider_aws.ecr_repository import (
    EcrRepository,
    EcrRepositoryEncryptionConfiguration,
    EcrRepositoryImageScanningConfiguration,
)
from cdktf_cdktf_provider_aws.ecs_cluster import (
    EcsCluster,
    EcsClusterConfiguration,
    EcsClusterConfigurationExecuteCommandConfiguration,
    EcsClusterConfigurationExecuteCommandConfigurationLogConfiguration,
    EcsClusterSetting,
)
from cdktf_cdktf_provider_aws.ecs_service import (
    EcsService,
    EcsServiceDeploymentCircuitBreaker,
    EcsServiceNetworkConfiguration,
)
from cdktf_cdktf_provider_aws.ecs_task_definition import (
    EcsTaskDefinition,
    EcsTaskDefinitionRuntimePlatform,
    EcsTaskDefinitionVolume,
)
from cdktf_cdktf_provider_aws.iam_policy import IamPolicy
from cdktf_cdktf_provider_aws.iam_role import IamRole
from cdktf_cdktf_provider_aws.iam_role_policy import IamRolePolicy
from cdktf_cdktf_provider_aws.iam_role_policy_attachment import IamRolePolicyAttachment
from constructs import Construct

from pipeline_lib import iam
from pipeline_lib.alarms import FIVE_MINUTES, AlarmSpec, MathAlarmSpec, MetricAlarmSpec, MetricRef, Widget
from pipeline_lib.cache import Cache
from pipeline_lib.context import StackContext
from pipeline_lib.data_stream import DataStream
from pipeline_lib.database import Database
from pipeline_lib.encryption_key import SSM_SESSION_CONTEXT
from pipeline_lib.incident_topic import IncidentTopic
from pipeline_lib.log_group import EncryptedLogGroup
from pipeline_lib.network import Network
from pipeline_lib.settings import AlarmConfig, ServiceConfig
from policy.conventions import container_insights_log_group
from processor import metrics as processor_metrics  # the names the processor emits (EMITTED), no runtime deps
from processor.task_settings import INCIDENT_SETTINGS, SERVICE_SETTINGS, rendered

CONTAINER_NAME = "processor"
CONTAINER_USER = "10001:10001"  # the image's non-root user; see processor/Dockerfile
STOP_TIMEOUT_S = 30  # SIGTERM -> commit the batch in hand, hand the shards to live tasks, exit
IMAGES_KEPT = 20
# ECS Exec's SSM agent crashes on a read-only root without these (aws/containers-roadmap#1359).
EXEC_AGENT_PATHS = {"ssm-agents": "/managed-agents", "ssm-state": "/var/lib/amazon/ssm",
                    "ssm-logs": "/var/log/amazon/ssm"}


class ProcessorService(Construct):
    def __init__(
        self,
        scope: Construct,
        id_: str,
        *,
        context: StackContext,
        network: Network,
        stream: DataStream,
        database: Database,
        cache: Cache,
        settings: ServiceConfig,
        incidents: IncidentTopic | None = None,
    ) -> None:
        super().__init__(scope, id_)
        naming, account, key = context.naming, context.account, context.key
        self.incidents = incidents
        self.network = network
        max_tasks = stream.max_consumers  # a task without a shard lease would idle
        if not 1 <= settings.min_count <= settings.desired_count <= max_tasks:
            raise ValueError(
                f"task counts must satisfy 1 <= min ({settings.min_count}) <= desired "
                f"({settings.desired_count}) <= shards ({max_tasks})"
            )
        self.metric_namespace = processor_metrics.namespace_for(naming.workload, naming.suffix)

        self.repository = EcrRepository(
            self,
            "images",
            name=naming.name("processor"),
            image_tag_mutability="IMMUTABLE",
            image_scanning_configuration=EcrRepositoryImageScanningConfiguration(scan_on_push=True),
            encryption_configuration=[EcrRepositoryEncryptionConfiguration(encryption_type="KMS", kms_key=key.arn)],
            force_delete=settings.force_delete_images,
        )
        EcrLifecyclePolicy(
            self, "images-lifecycle", repository=self.repository.name,
            policy=json.dumps({"rules": [{
                "rulePriority": 1,
                "description": f"keep the newest {IMAGES_KEPT} images",
                "selection": {"tagStatus": "any", "countType": "imageCountMoreThan", "countNumber": IMAGES_KEPT},
                "action": {"type": "expire"},
            }]}),
        )

        self.log_group = EncryptedLogGroup(
            self, "logs", name=naming.path("processor"), key=key, retention_in_days=settings.log_retention_days
        )
        self.exec_log_group = EncryptedLogGroup(
            self, "exec-logs", name=naming.path("ecs-exec"), key=key, retention_in_days=settings.log_retention_days
        )
        # Container Insights writes its performance events to a log group it would otherwise
        # create itself, unencrypted, kept for ever and left behind by destroy: created first
        # here, with the stack's key and a retention (policy rule aws_created_log_groups_are_owned).
        cluster_name = naming.name("cluster")
        self.insights_log_group = EncryptedLogGroup(
            self, "insights-logs", name=container_insights_log_group(cluster_name), key=key,
            retention_in_days=settings.log_retention_days,
        )
        self.cluster = EcsCluster(
            self,
            "cluster",
            name=cluster_name,
            depends_on=[self.insights_log_group.log_group],
            setting=[EcsClusterSetting(name="containerInsights", value="enhanced")],
            configuration=EcsClusterConfiguration(
                execute_command_configuration=EcsClusterConfigurationExecuteCommandConfiguration(
                    kms_key_id=key.arn,
                    logging="OVERRIDE",
                    log_configuration=EcsClusterConfigurationExecuteCommandConfigurationLogConfiguration(
                        cloud_watch_log_group_name=self.exec_log_group.name,
                        cloud_watch_encryption_enabled=True,
                    ),
                )
            ),
        )

        self.security_group = network.security_group(
            self, "sg", purpose="processor",
            description="Processor tasks: no ingress; egress only to the endpoints, S3, PostgreSQL and Redis")
        network.allow_endpoint_access(self.security_group, client_name="processor")
        database.allow_from(self.security_group, client_name="processor")
        cache.allow_from(self.security_group, client_name="processor")

        self.execution_role = IamRole(
            self, "execution-role", name=naming.name("processor-exec"),
            assume_role_policy=iam.assume_role_policy("ecs-tasks.amazonaws.com", account_id=account.account_id),
        )
        execution_statements = [
            iam.statement("AuthenticateToEcr", ["ecr:GetAuthorizationToken"], ["*"]),
            iam.statement(
                "PullTheProcessorImage",
                ["ecr:BatchCheckLayerAvailability", "ecr:BatchGetImage", "ecr:GetDownloadUrlForLayer"],
                [self.repository.arn],
            ),
            iam.statement("WriteContainerLogs", ["logs:CreateLogStream", "logs:PutLogEvents"],
                          [f"{self.log_group.arn}:*"]),
            iam.statement("InjectTheRedisAuthToken", ["secretsmanager:GetSecretValue"], [cache.auth_secret.arn]),
            iam.statement("DecryptTheImage", ["kms:Decrypt"], [key.arn],
                          condition={"StringEquals": {"kms:ViaService": key.via("ecr")}}),
        ]
        IamRolePolicy(self, "execution-policy", name=naming.name("processor-start"), role=self.execution_role.id,
                      policy=iam.document(*execution_statements))

        self.task_role = IamRole(
            self, "task-role", name=naming.name("processor-task"),
            assume_role_policy=iam.assume_role_policy("ecs-tasks.amazonaws.com", account_id=account.account_id),
        )
        # The service signs in to PostgreSQL as the application role with an IAM token: it
        # never reads the master secret (the migrate task does, migration_task.py).
        task_statements = [*stream.read_statements(), *database.connect_statements()]
        if incidents is not None:
            task_statements += incidents.publish_statements()
        if settings.enable_execute_command:
            task_statements += [
                iam.statement(
                    "EcsExecSessions",
                    ["ssmmessages:CreateControlChannel", "ssmmessages:CreateDataChannel",
                     "ssmmessages:OpenControlChannel", "ssmmessages:OpenDataChannel"],
                    ["*"],
                ),
                iam.statement("EcsExecAuditLog", ["logs:CreateLogStream", "logs:PutLogEvents",
                                                  "logs:DescribeLogStreams"],
                              [self.exec_log_group.arn, f"{self.exec_log_group.arn}:*"]),
                iam.statement("EcsExecFindLogGroup", ["logs:DescribeLogGroups"], ["*"]),
                iam.statement("EcsExecSessionKey", ["kms:Decrypt", "kms:GenerateDataKey"], [key.arn]),
            ]
            # ECS Exec encrypts each session with the cluster's key, and both ends call KMS
            # themselves: the task's SSM agent (the task role) decrypts the session key, the
            # operator's client makes it (kms:GenerateDataKey, ECS guide). The only direct uses of
            # the key, each for Session Manager sessions only, and only where Exec is on (never in
            # production).
            key.allow_direct_use("EcsExecSessionsUseTheKey", self.task_role.arn, ["kms:Decrypt", "kms:GenerateDataKey"],
                                 SSM_SESSION_CONTEXT)
            self._exec_operators(context, settings.exec_operator_roles)
        IamRolePolicy(self, "task-policy", name=naming.name("processor-run"), role=self.task_role.id,
                      policy=iam.document(*task_statements))
        # No NAT: every call the tasks and the ECS agent are granted goes through its endpoint.
        network.serve([*execution_statements, *task_statements])

        # What every task of the image needs, the service's and the migrate task's alike.
        self.environment = {
            "WORKLOAD": naming.workload,
            "STREAM_NAME": stream.name,
            "AWS_REGION": account.region,
            "CONSUMER_GROUP": naming.name("processor"),
            "DB_HOST": database.endpoint,
            "DB_PORT": str(database.port),
            "DB_NAME": database.name,
            "DB_SSLMODE": "verify-full",
            "REDIS_HOST": cache.endpoint,
            "REDIS_PORT": str(cache.port),
            "REDIS_TLS": "true",
            "METRICS_NAMESPACE": self.metric_namespace,
        }
        self._image = f"{self.repository.repository_url}:{settings.image_tag}"
        self.cpu_architecture = settings.cpu_architecture
        self._region = account.region
        environment = {
            **self.environment,
            "DB_USER": database.app_username,
            "DB_IAM_AUTH": "true",  # a fresh 15-minute token for every connection
            **rendered(settings, SERVICE_SETTINGS),
        }
        if incidents is not None:
            environment |= {"INCIDENT_TOPIC_ARN": incidents.arn, **rendered(incidents.settings, INCIDENT_SETTINGS)}
        # The root filesystem stays read-only; what must be written gets a task volume: /tmp,
        # and with ECS Exec the paths its SSM agent (bind-mounted by ECS) writes to.
        writable = {"tmp": "/tmp", **(EXEC_AGENT_PATHS if settings.enable_execute_command else {})}
        # The AUTH token is injected by ECS from Secrets Manager, never a plain value.
        container = self.container(environment, writable=writable, log_prefix=CONTAINER_NAME,
                                   secrets={"REDIS_PASSWORD": cache.auth_secret.arn})
        self.task_definition = EcsTaskDefinition(
            self,
            "task",
            family=naming.name("processor"),
            requires_compatibilities=["FARGATE"],
            network_mode="awsvpc",
            cpu=str(settings.cpu),
            memory=str(settings.memory_mib),
            runtime_platform=EcsTaskDefinitionRuntimePlatform(
                operating_system_family="LINUX", cpu_architecture=settings.cpu_architecture
            ),
            execution_role_arn=self.execution_role.arn,
            task_role_arn=self.task_role.arn,
            volume=[EcsTaskDefinitionVolume(name=name) for name in writable],
            container_definitions=json.dumps([container]),
        )
        self.service = EcsService(
            self,
            "service",
            name=naming.name("processor"),
            cluster=self.cluster.arn,
            task_definition=self.task_definition.arn,
            desired_count=settings.desired_count,
            launch_type="FARGATE",
            platform_version="LATEST",
            network_configuration=EcsServiceNetworkConfiguration(
                subnets=network.subnet_ids, security_groups=[self.security_group.id], assign_public_ip=False
            ),
            deployment_circuit_breaker=EcsServiceDeploymentCircuitBreaker(enable=True, rollback=True),
            deployment_minimum_healthy_percent=100,
            deployment_maximum_percent=200,
            enable_execute_command=settings.enable_execute_command,
            enable_ecs_managed_tags=True,
            propagate_tags="SERVICE",  # default_tags do not reach tasks; the service's tags do
            wait_for_steady_state=False,  # the first apply happens before any image is pushed
            lifecycle=TerraformResourceLifecycle(ignore_changes=["desired_count"]),  # autoscaling owns it
        )

        self.max_tasks = max_tasks
        self.scaling_target: AppautoscalingTarget | None = None
        if max_tasks > settings.min_count:
            self._scale_on_lag(context, settings, max_tasks)
        # min == max (production's two tasks on two shards): a policy could never act, so there
        # is none; resharding is the lever, and the `processor-lag` alarm says so.

    def _exec_operators(self, context: StackContext, roles: tuple[str, ...]) -> None:
        """What the ECS guide asks of whoever runs `aws ecs execute-command` on these tasks, given
        to the roles the config names (ServiceConfig.exec_operator_roles) and nobody else: the
        key policy names them for the session key, and a policy of this stack, attached to each,
        grants the command on this cluster's processor container and the key use, and denies
        `ssm:StartSession` on the tasks, which would go around ecs:ExecuteCommand's conditions."""
        naming, key = context.naming, context.key
        tasks = context.account.arn("ecs", f"task/{self.cluster.name}/*")
        key.allow_direct_use("EcsExecOperatorsOpenSessions", [key.role_arn(role) for role in roles],
                             ["kms:GenerateDataKey"], SSM_SESSION_CONTEXT)
        self.exec_operator_policy = IamPolicy(
            self, "exec-operators", name=naming.name("processor-exec-operators"),
            description=f"ECS Exec into {naming.name('processor')} tasks (docs/operations.md)",
            policy=iam.document(
                iam.statement("ExecIntoTheProcessor", ["ecs:ExecuteCommand"], [self.cluster.arn, tasks],
                              condition={"StringEquals": {"ecs:container-name": CONTAINER_NAME}}),
                iam.statement("FindTheTasks", ["ecs:DescribeTasks"], [tasks]),
                iam.statement("MakeTheSessionKey", ["kms:GenerateDataKey"], [key.arn], condition=SSM_SESSION_CONTEXT),
                iam.statement("NoSessionAroundExecuteCommand", ["ssm:StartSession"], [tasks], effect="Deny"),
            ),
        )
        for role in roles:  # by name: removing one operator leaves the others' attachments alone
            IamRolePolicyAttachment(self, f"exec-operator-{role}", role=role, policy_arn=self.exec_operator_policy.arn)

    def _scale_on_lag(self, context: StackContext, settings: ServiceConfig, max_tasks: int) -> None:
        """Step scaling on the processor's own lag (MillisBehindLatest, the most any task reports):
        it falls as tasks are added, up to one task per shard, and only the processor's reads
        are in it (the stream's iterator age also carries Firehose's, and does not fall with
        more tasks). Steps never add more than the room up to the shard count."""
        naming = context.naming
        resource_id = f"service/{self.cluster.name}/{self.service.name}"
        self.scaling_target = AppautoscalingTarget(
            self,
            "scaling-target",
            service_namespace="ecs",
            scalable_dimension="ecs:service:DesiredCount",
            resource_id=resource_id,
            min_capacity=settings.min_count,
            max_capacity=max_tasks,
            tags={"Name": naming.name("processor-scaling")},
        )
        target = settings.lag_target_ms
        room = max_tasks - settings.min_count
        # +1 task from the target, every shard its own task from three times it (a backlog).
        bands = [(0, 2 * target, 1), (2 * target, None, room)] if room > 1 else [(0, None, 1)]
        directions = {
            "out": (bands, "GreaterThanOrEqualToThreshold", target, 60, 3, 60,
                    f"Processor lag at or above {target} ms: add tasks (at most one per shard, {max_tasks})"),
            "in": ([(None, 0, -1)], "LessThanThreshold", target // 10, 300, 3, 300,
                   f"Processor lag under {target // 10} ms for 15 minutes: remove a task (down to {settings.min_count})"),
        }
        for direction, (steps, comparison, threshold, period, periods, cooldown, why) in directions.items():
            policy = AppautoscalingPolicy(
                self,
                f"scale-{direction}-on-lag",
                name=naming.name(f"processor-lag-{direction}"),
                policy_type="StepScaling",
                service_namespace="ecs",
                scalable_dimension="ecs:service:DesiredCount",
                resource_id=self.scaling_target.resource_id,
                step_scaling_policy_configuration=AppautoscalingPolicyStepScalingPolicyConfiguration(
                    adjustment_type="ChangeInCapacity",
                    metric_aggregation_type="Maximum",
                    cooldown=cooldown,
                    step_adjustment=[
                        AppautoscalingPolicyStepScalingPolicyConfigurationStepAdjustment(
                            scaling_adjustment=change,
                            metric_interval_lower_bound=None if lower is None else str(lower),
                            metric_interval_upper_bound=None if upper is None else str(upper),
                        )
                        for lower, upper, change in steps
                    ],
                ),
            )
            # The scaling policy's own alarm: it acts, it does not page (the alerts topic gets
            # `processor-lag`, below).
            CloudwatchMetricAlarm(
                self,
                f"lag-scale-{direction}",
                alarm_name=naming.name(f"processor-lag-scale-{direction}"),
                alarm_description=why,
                namespace=self.metric_namespace,
                metric_name=processor_metrics.MILLIS_BEHIND_LATEST,
                statistic="Maximum",
                period=period,
                evaluation_periods=periods,
                threshold=threshold,
                comparison_operator=comparison,
                treat_missing_data="notBreaching",  # no task reporting: the missing-task alarm speaks
                alarm_actions=[policy.arn],
            )

    def container(self, environment: dict[str, str], *, writable: dict[str, str], log_prefix: str,
                  secrets: dict[str, str] | None = None, command: list[str] | None = None,
                  name: str = CONTAINER_NAME, log_group: EncryptedLogGroup | None = None,
                  ports: tuple[int, ...] = ()) -> dict[str, Any]:
        """A container definition of the processor image: non-root, read-only root filesystem
        (`writable`: volume -> path), logs to the encrypted processor log group (or `log_group`),
        listening on `ports` (TCP) if it serves."""
        definition: dict[str, Any] = {
            "name": name,
            "image": self._image,
            "essential": True,
            "user": CONTAINER_USER,
            "readonlyRootFilesystem": True,
            "stopTimeout": STOP_TIMEOUT_S,
            "environment": [{"name": k, "value": v} for k, v in sorted(environment.items())],
            "secrets": [{"name": k, "valueFrom": v} for k, v in sorted((secrets or {}).items())],
            "mountPoints": [{"sourceVolume": volume, "containerPath": path, "readOnly": False}
                            for volume, path in writable.items()],
            "linuxParameters": {"initProcessEnabled": True},
            "logConfiguration": {
                "logDriver": "awslogs",
                "options": {
                    "awslogs-group": (log_group or self.log_group).name,
                    "awslogs-region": self._region,
                    "awslogs-stream-prefix": log_prefix,
                    "mode": "non-blocking",
                    "max-buffer-size": "4m",
                },
            },
        }
        if command:
            definition["command"] = command
        if ports:
            definition["portMappings"] = [{"containerPort": port, "protocol": "tcp"} for port in ports]
        return definition

    def alarms(self, thresholds: AlarmConfig) -> list[AlarmSpec]:
        """What the processor reports (EMF metrics in its own namespace), and missing tasks."""
        tasks = {"ClusterName": self.cluster.name, "ServiceName": self.service.name}
        return [
            MetricAlarmSpec(purpose="processor-errors", description="The processor reports failed batches",
                            namespace=self.metric_namespace, metric_name=processor_metrics.PROCESSING_ERRORS, statistic="Sum",
                            comparison="GreaterThanThreshold", threshold=thresholds.processor_errors_per_5min,
                            evaluation_periods=1, treat_missing_data="notBreaching"),
            MetricAlarmSpec(purpose="processor-dead-letters", description="Poison records were dead-lettered",
                            namespace=self.metric_namespace, metric_name=processor_metrics.DEAD_LETTERS, statistic="Sum",
                            comparison="GreaterThanOrEqualToThreshold", threshold=thresholds.dead_letters_per_5min,
                            evaluation_periods=1, treat_missing_data="notBreaching"),
            MetricAlarmSpec(
                purpose="processor-lag",
                description=(f"The processor stays behind the stream with up to {self.max_tasks} tasks, one per "
                             "shard: more tasks cannot help; add shards (docs/operations.md, 'Scaling and "
                             "resharding')"),
                namespace=self.metric_namespace, metric_name=processor_metrics.MILLIS_BEHIND_LATEST,
                statistic="Maximum", comparison="GreaterThanThreshold", threshold=thresholds.iterator_age_ms,
                evaluation_periods=3, treat_missing_data="notBreaching"),
            MathAlarmSpec(
                purpose="processor-tasks-below-desired",
                description="Fewer processor tasks run than the service wants (crash loop or no image)",
                metrics={"desired": MetricRef(namespace="ECS/ContainerInsights", metric_name="DesiredTaskCount",
                                              dimensions=tasks),
                         "running": MetricRef(namespace="ECS/ContainerInsights", metric_name="RunningTaskCount",
                                              dimensions=tasks)},
                expression="desired - running", label="tasks missing", comparison="GreaterThanThreshold",
                threshold=0, evaluation_periods=5,
                treat_missing_data="breaching",  # no metrics at all means no tasks at all
            ),
            *self._incident_alarms(thresholds),
        ]

    def widgets(self) -> list[Widget]:
        ns, m = self.metric_namespace, processor_metrics
        tasks = ["ClusterName", self.cluster.name, "ServiceName", self.service.name]
        return [
            Widget("Processor: records, errors, dead letters", [
                [ns, m.RECORDS_PROCESSED], [ns, m.PROCESSING_ERRORS], [ns, m.DEAD_LETTERS], [ns, m.ANOMALIES]]),
            Widget("Processor: batch latency and lag (ms)", [
                [ns, m.BATCH_LATENCY_MS, {"stat": "p99"}], [ns, m.MILLIS_BEHIND_LATEST, {"stat": "Maximum"}]]),
            Widget("Tasks", [
                ["ECS/ContainerInsights", "RunningTaskCount", *tasks, {"stat": "Average"}],
                ["ECS/ContainerInsights", "DesiredTaskCount", *tasks, {"stat": "Average"}]]),
        ]

    def _incident_alarms(self, thresholds: AlarmConfig) -> list[AlarmSpec]:
        if self.incidents is None:
            return []
        return [MetricAlarmSpec(
            purpose="incident-outbox-backlog",
            description="Incident messages wait in the outbox: SNS refuses them or no task publishes",
            namespace=self.metric_namespace, metric_name=processor_metrics.INCIDENT_OUTBOX_OLDEST_AGE_S, statistic="Maximum",
            comparison="GreaterThanThreshold", threshold=thresholds.incident_outbox_age_seconds,
            evaluation_periods=1, period_seconds=FIVE_MINUTES, treat_missing_data="notBreaching",
        )]
