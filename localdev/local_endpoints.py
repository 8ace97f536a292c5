"""The one place where a local run differs from the ECS task it stands in for.

The processor gets the environment of the *deployed* task definition (read back from the
emulator, with its `secrets` resolved from Secrets Manager as the ECS agent would), and
then exactly these changes:

| variable | local value | why |
|---|---|---|
| `DB_HOST`, `DB_PORT` | the stack's local PostgreSQL | the emulated RDS endpoint is a name, not a server |
| `REDIS_HOST`, `REDIS_PORT` | the stack's local Redis | the same for the ElastiCache endpoint |
| `DB_SSLMODE` | `disable` | the local servers have no certificates; on AWS the task keeps `verify-full` |
| `REDIS_TLS` | `false` | the same; on AWS the task keeps `true` |
| `AWS_REGION`, `AWS_ENDPOINT_URL`, credentials | the stack's region, the emulator, fake keys | ECS gives the task its region and role |

The database credentials are *not* overridden: the processor reads the RDS-managed
secret from the emulator, and the local PostgreSQL has that user and password.
"""
from __future__ import annotations

from collections.abc import Callable, Mapping

from localdev.session import LocalServers

TLS_OFF = {"DB_SSLMODE": "disable", "REDIS_TLS": "false"}


def task_environment(ecs, secretsmanager, task_definition: str) -> dict[str, str]:  # noqa: ANN001
    """The container's environment as ECS would set it: `environment` plus resolved `secrets`."""
    definition = ecs.describe_task_definition(taskDefinition=task_definition)["taskDefinition"]
    container = definition["containerDefinitions"][0]
    env = {item["name"]: item["value"] for item in container.get("environment", [])}
    for secret in container.get("secrets", []):
        env[secret["name"]] = secretsmanager.get_secret_value(SecretId=secret["valueFrom"])["SecretString"]
    return env


def processor_environment(task_env: Mapping[str, str], servers: LocalServers, region: str,
                          aws_env: Mapping[str, str], base: Callable[[], Mapping[str, str]] = dict) -> dict[str, str]:
    env = {**base(), **task_env, **TLS_OFF, **aws_env}
    env.update(DB_HOST="127.0.0.1", DB_PORT=str(servers.pg_port), REDIS_HOST="127.0.0.1",
               REDIS_PORT=str(servers.redis_port), AWS_REGION=region, AWS_DEFAULT_REGION=region)
    return env
