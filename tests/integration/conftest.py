"""The deployed system, found through cfn-outputs/flat-outputs.json.

Against AWS: deploy, write the outputs file (docs/testing.md, "Integration tests"),
run from somewhere that reaches the VPC's database and cache; the ECS service is the
processor. Against the local deployment (`make demo`), cfn-outputs/local-endpoints.json
points boto3 at the emulator and the data-plane checks at the local PostgreSQL and Redis,
and a local processor stands in for the ECS service while the tests run.

Without an outputs file every test here skips with one reason, except under CI=true,
where `.ci/run` deploys first and a missing file is an error.
"""
from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import boto3
import psycopg2
import pytest
import redis

from localdev.local_endpoints import (
    processor_environment,
    read_local_endpoints,
    task_environment,
)
from localdev.outputs import FLAT_OUTPUTS, key
from localdev.tls import postgres_tls, redis_tls
from stacks.workloads import WORKLOADS
from tests.helpers import skip_unless_available

ROOT = Path(__file__).resolve().parents[2]
NO_OUTPUTS = ("no cfn-outputs/flat-outputs.json: deploy first (`make demo` for the local emulator, "
              "or see docs/testing.md, 'Integration tests')")


def _outputs() -> dict | None:
    return json.loads(FLAT_OUTPUTS.read_text()) if FLAT_OUTPUTS.exists() else None


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    skip_unless_available(items, Path(__file__).parent, _outputs() is not None, NO_OUTPUTS)


def pytest_generate_tests(metafunc: pytest.Metafunc) -> None:
    """A test that takes `workload` runs once per deployed workload, or per one of those its
    `workloads` mark names (`pytestmark = pytest.mark.workloads("retail")`)."""
    if "workload" in metafunc.fixturenames:
        outputs = _outputs() or {}
        only = metafunc.definition.get_closest_marker("workloads")
        wanted = list(only.args) if only else list(WORKLOADS)
        unknown = sorted(set(wanted) - set(WORKLOADS))
        if unknown:
            raise pytest.UsageError(f"{metafunc.definition.nodeid}: no workload {unknown} (workloads: {list(WORKLOADS)})")
        deployed = [w for w in wanted if key(w, "stack_id") in outputs] or wanted
        metafunc.parametrize("workload", deployed, scope="session")


@pytest.fixture(scope="session")
def outputs() -> dict:
    found = _outputs()
    if found is None:
        pytest.fail(f"CI=true and {NO_OUTPUTS}")
    return found


@pytest.fixture(scope="session")
def local() -> dict | None:
    return read_local_endpoints()


@pytest.fixture(scope="session")
def out(outputs: dict, workload: str) -> Callable[[str], object]:
    def get(name: str) -> object:
        return outputs[key(workload, name)]

    return get


@pytest.fixture(scope="session")
def aws(out: Callable[[str], object], local: dict | None) -> Callable[[str], object]:
    """boto3 clients in the stack's region (the emulator's when deployed locally)."""
    region = str(out("stack_region"))
    extra: dict[str, str] = {}
    if local:
        extra = {"endpoint_url": local["aws"]["AWS_ENDPOINT_URL"], "aws_access_key_id": local["aws"]["AWS_ACCESS_KEY_ID"],
                 "aws_secret_access_key": local["aws"]["AWS_SECRET_ACCESS_KEY"]}
    return lambda service: boto3.client(service, region_name=region, **extra)


def _secret(aws: Callable[[str], Any], arn: str) -> str:
    return aws("secretsmanager").get_secret_value(SecretId=arn)["SecretString"]


@pytest.fixture(scope="session")
def db(out: Callable[[str], Any], aws: Callable[[str], Any], local: dict | None, workload: str) -> Iterator:
    credentials = json.loads(_secret(aws, str(out("db_secret_arn"))))
    if local:
        where = local["workloads"][workload]
        params = {"host": where["db_host"], "port": where["db_port"], **postgres_tls(where["ca_file"])}
    else:
        params = {"host": out("db_endpoint"), "port": out("db_port"), "sslmode": "require"}
    conn = psycopg2.connect(dbname=out("db_name"), user=credentials["username"], password=credentials["password"],
                            connect_timeout=10, **params)
    conn.autocommit = True
    yield conn
    conn.close()


def _service_environment(
        out: Callable[[str], Any], aws: Callable[[str], Any], local: dict | None, workload: str) -> dict[str, str]:
    """The ECS service's task environment (mapped to the local servers when deployed locally)."""
    ecs = aws("ecs")
    service = ecs.describe_services(cluster=out("cluster_name"), services=[out("service_name")])["services"][0]
    env = task_environment(ecs, aws("secretsmanager"), service["taskDefinition"])
    if local:
        env = processor_environment(env, local["workloads"][workload], str(out("stack_region")), local["aws"],
                                    base=lambda: dict(os.environ))
    return env


@pytest.fixture(scope="session")
def app_db(
        out: Callable[[str], Any], aws: Callable[[str], Any], local: dict | None, workload: str,
        monkeypatch_session: pytest.MonkeyPatch) -> Iterator:
    """PostgreSQL exactly as the service connects: the application role, an IAM token.
    (Against AWS the credentials running the tests need rds-db:connect as that role.)"""
    from processor.config import ProcessorConfig
    from processor.connections import connect_postgres

    env = _service_environment(out, aws, local, workload)
    for name in ("AWS_ENDPOINT_URL", "AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY"):
        if name in env:
            monkeypatch_session.setenv(name, env[name])
    conn = connect_postgres(ProcessorConfig.from_env(env))
    yield conn
    conn.close()


@pytest.fixture(scope="session")
def monkeypatch_session() -> Iterator[pytest.MonkeyPatch]:
    patch = pytest.MonkeyPatch()
    yield patch
    patch.undo()


@pytest.fixture(scope="session")
def cache(out: Callable[[str], Any], aws: Callable[[str], Any], local: dict | None, workload: str) -> Iterator[redis.Redis]:
    password = _secret(aws, str(out("redis_auth_secret_arn")))
    if local:
        where = local["workloads"][workload]
        client = redis.Redis(host=where["redis_host"], port=where["redis_port"], password=password,
                             **redis_tls(where["ca_file"]))
    else:
        client = redis.Redis(host=str(out("redis_endpoint")), port=int(out("redis_port")), password=password,
                             ssl=True)
    yield client
    client.close()


@pytest.fixture(scope="session")
def processor(out: Callable[[str], Any], aws: Callable[[str], Any], local: dict | None, workload: str) -> Iterator[None]:
    """On AWS the ECS service processes the stream. Locally a processor with the deployed
    task's environment stands in for it while the tests run."""
    if not local:
        yield
        return
    env = _service_environment(out, aws, local, workload)
    env["PYTHONPATH"] = str(ROOT)
    logs = ROOT / ".local" / "logs"  # removed with the rest by make destroy-local
    logs.mkdir(parents=True, exist_ok=True)
    log = open(logs / f"integration-{workload}-processor.log", "w")
    process = subprocess.Popen([sys.executable, "-m", "processor"], cwd=ROOT, env=env, stdout=log,
                               stderr=subprocess.STDOUT)
    yield
    process.terminate()
    process.wait(30)
    log.close()
