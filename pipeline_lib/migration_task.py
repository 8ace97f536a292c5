"""The schema migration as its own ECS task: the processor image with `migrate`, run with
the master credentials before (or beside) a deployment, by `make migrate` and the deploy
workflow (`python -m tools.release migrate`). It creates the tables and the application role the
service signs in as, with exactly its workload's DML. The service itself cannot read the
master secret, so only this task can change the schema. In the retail stack it also makes the catalog
read API's reader role (SELECT on the catalog), with the password it reads from the reader's secret."""
from __future__ import annotations

import json

from cdktf_cdktf_provider_aws.ecs_task_definition import (
    EcsTaskDefinition,
    EcsTaskDefinitionRuntimePlatform,
    EcsTaskDefinitionVolume,
)
from cdktf_cdktf_provider_aws.iam_role import IamRole
from cdktf_cdktf_provider_aws.iam_role_policy import IamRolePolicy
from constructs import Construct

from pipeline_lib import iam
from pipeline_lib.catalog_read_api import CatalogReadApi
from pipeline_lib.context import StackContext
from pipeline_lib.database import Database
from pipeline_lib.processor_service import ProcessorService
from pipeline_lib.settings import ServiceConfig

# A migration is short and small: the smallest Fargate size that runs the image.
MIGRATION_CPU, MIGRATION_MEMORY_MIB = 256, 512


class MigrationTask(Construct):
    def __init__(
        self,
        scope: Construct,
        id_: str,
        *,
        context: StackContext,
        service: ProcessorService,
        database: Database,
        settings: ServiceConfig,
        catalog_api: CatalogReadApi | None = None,
    ) -> None:
        """With `catalog_api` (retail), the migration also makes the read API's SELECT-only reader role,
        with the password from the reader's secret."""
        super().__init__(scope, id_)
        naming, account, key = context.naming, context.account, context.key
        self.task_role = IamRole(
            self, "task-role", name=naming.name("migrate-task"),
            assume_role_policy=iam.assume_role_policy("ecs-tasks.amazonaws.com", account_id=account.account_id),
        )
        statements = database.read_secret_statements(key)
        if catalog_api is not None:
            statements += catalog_api.migration_statements()
        IamRolePolicy(self, "task-policy", name=naming.name("migrate-run"), role=self.task_role.id,
                      policy=iam.document(*statements))
        service.network.serve(statements)  # it runs in the service's subnets
        environment = {
            **service.environment,
            "DB_SECRET_ARN": database.secret_arn,  # the RDS-managed master secret, re-read on every connect
            "APP_DB_USER": database.app_username,
            **(catalog_api.migration_environment() if catalog_api is not None else {}),
        }
        container = service.container(environment, writable={"tmp": "/tmp"}, log_prefix="migrate",
                                      command=["migrate"])
        self.task_definition = EcsTaskDefinition(
            self,
            "task",
            family=naming.name("migrate"),
            requires_compatibilities=["FARGATE"],
            network_mode="awsvpc",
            cpu=str(MIGRATION_CPU),
            memory=str(MIGRATION_MEMORY_MIB),
            runtime_platform=EcsTaskDefinitionRuntimePlatform(
                operating_system_family="LINUX", cpu_architecture=settings.cpu_architecture
            ),
            execution_role_arn=service.execution_role.arn,
            task_role_arn=self.task_role.arn,
            volume=[EcsTaskDefinitionVolume(name="tmp")],
            container_definitions=json.dumps([container]),
        )

    @property
    def family(self) -> str:
        return self.task_definition.family
