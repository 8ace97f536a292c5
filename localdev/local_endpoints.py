"""The one place where a local run differs from the ECS task it stands in for.

The processor gets the environment of the *deployed* task definition (read back from the
emulator, with its `secrets` resolved from Secrets Manager as the ECS agent would), and
then exactly these changes:

| variable | local value | why |
|---|---|---|
| `DB_HOST`, `DB_PORT` | the stack's local PostgreSQL | the emulated RDS endpoint is a name, not a server |
| `REDIS_HOST`, `REDIS_PORT` | the stack's local Redis | the same for the ElastiCache endpoint |
| `DB_SSLROOTCERT`, `REDIS_SSL_CA_CERTS` | the local CA | the local certificates chain to it, not to RDS's or Amazon's CAs |
| `AWS_REGION`, `AWS_ENDPOINT_URL` | the stack's region, the emulator | ECS gives the task its region |
| AWS keys, session token | a session of the *deployed* task role | as ECS gives a task; checked (localdev/access/) |

The container's `secrets` are resolved with a session of the deployed *execution* role, as
the ECS agent resolves them: a secret that role may not read fails the local start as it
would fail the task's.

`DB_SSLMODE=verify-full` and `REDIS_TLS=true` stay as deployed: both local servers speak TLS only
(localdev/tls.py), with certificates for 127.0.0.1, and the processor verifies them, names included.

The database credentials are *not* overridden. The service signs in as the application
role with an IAM token, made by the same code as on AWS; only RDS can check one, so the
local PostgreSQL lets that role in unchecked (localdev/deploy.py `accept_iam_tokens`) and
its privileges are what is real. The migrate task reads the RDS-managed master secret from
the emulator, and the local PostgreSQL has that user and password.
"""
from __future__ import annotations

import json
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from botocore.client import BaseClient

if TYPE_CHECKING:
    from localdev.session import Session

ROOT = Path(__file__).resolve().parent.parent
# Written next to flat-outputs.json by a local deployment only; the integration tests use
# it to reach the emulator and the local servers. Without it they talk to AWS.
LOCAL_ENDPOINTS = ROOT / "cfn-outputs" / "local-endpoints.json"
def write_local_endpoints(aws_env: Mapping[str, str], servers: Mapping[str, object]) -> Path:
    """`servers`: workload → LocalServers (pg_port, redis_port, ca_file)."""
    document = {"aws": dict(aws_env), "workloads": {
        workload: {"db_host": "127.0.0.1", "db_port": s.pg_port, "redis_host": "127.0.0.1",  # type: ignore[attr-defined]
                   "redis_port": s.redis_port, "ca_file": s.ca_file}  # type: ignore[attr-defined]
        for workload, s in servers.items()}}
    LOCAL_ENDPOINTS.parent.mkdir(parents=True, exist_ok=True)
    LOCAL_ENDPOINTS.write_text(json.dumps(document, indent=2) + "\n")
    return LOCAL_ENDPOINTS


def read_local_endpoints() -> dict | None:
    return json.loads(LOCAL_ENDPOINTS.read_text()) if LOCAL_ENDPOINTS.exists() else None


@dataclass(frozen=True)
class TaskRoles:
    task: str  # the role the container's own calls use
    execution: str  # the role the ECS agent uses to start it (image, logs, secrets)


def deployed_task(session: Session, region: str, task_definition: str, name: str) -> tuple[dict[str, str], TaskRoles]:
    """The container environment ECS would set for `task_definition` (its `secrets` resolved
    with the execution role, as the ECS agent resolves them) and the task's roles."""
    ecs = session.client("ecs", region)
    definition = ecs.describe_task_definition(taskDefinition=task_definition)["taskDefinition"]
    roles = TaskRoles(definition["taskRoleArn"], definition["executionRoleArn"])
    agent = session.client("secretsmanager", region, session.assume(roles.execution, f"{name}-ecs-agent", region))
    return task_environment(ecs, agent, task_definition), roles


def task_environment(ecs: BaseClient, secretsmanager: BaseClient, task_definition: str) -> dict[str, str]:
    """The container's environment as ECS would set it: `environment` plus resolved `secrets`."""
    definition = ecs.describe_task_definition(taskDefinition=task_definition)["taskDefinition"]
    container = definition["containerDefinitions"][0]
    env = {item["name"]: item["value"] for item in container.get("environment", [])}
    for secret in container.get("secrets", []):
        env[secret["name"]] = secretsmanager.get_secret_value(SecretId=secret["valueFrom"])["SecretString"]
    return env


def processor_environment(task_env: Mapping[str, str], endpoints: Mapping[str, object], region: str,
                          aws_env: Mapping[str, str], base: Callable[[], Mapping[str, str]] = dict) -> dict[str, str]:
    """`endpoints`: one workload's entry of local-endpoints.json."""
    env = {**base(), **task_env, **aws_env}
    env.update(DB_HOST=str(endpoints["db_host"]), DB_PORT=str(endpoints["db_port"]),
               REDIS_HOST=str(endpoints["redis_host"]), REDIS_PORT=str(endpoints["redis_port"]),
               DB_SSLROOTCERT=str(endpoints["ca_file"]), REDIS_SSL_CA_CERTS=str(endpoints["ca_file"]),
               AWS_REGION=region, AWS_DEFAULT_REGION=region)
    return env
