"""Session fixtures: synthesize the app once per environment and share the JSON; one real Redis."""
from __future__ import annotations

import os
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
import redis

os.environ.setdefault("JSII_SILENCE_WARNING_END_OF_LIFE_NODE_VERSION", "20")
PROJECT_ROOT = Path(__file__).resolve().parent.parent
if str(PROJECT_ROOT) not in sys.path:
    sys.path.insert(0, str(PROJECT_ROOT))

from localdev.servers import PostgresServer, RedisServer  # noqa: E402
from localdev.tls import TlsFiles, make_tls  # noqa: E402
from main import build_app  # noqa: E402
from policy.stack_json import StackJson, load_app  # noqa: E402

# Production must name who its alarms reach; the test synth names an on-call address, dev none.
PROD_ALERTS = "email:platform-oncall@example.com,sqs:ops-alerts-prod"
PROD_INCIDENTS = "email:line-1-team@example.com;line=line-1,sqs:plant-incidents-prod;severity=critical"
# Production state must be remote (stacks/state.py): the test synth names a bucket, dev none.
PROD_STATE_BUCKET = "acme-terraform-state-prod"


def _synth(tmp_path_factory: pytest.TempPathFactory, suffix: str) -> Path:
    outdir = tmp_path_factory.mktemp(f"cdktf-{suffix}")
    prod = suffix == "prod"
    build_app(outdir=str(outdir), suffix=suffix, alert_subscriptions=PROD_ALERTS if prod else "",
              incident_subscriptions=PROD_INCIDENTS if prod else "",
              state_bucket=PROD_STATE_BUCKET if prod else "").synth()
    return outdir


@pytest.fixture(scope="session")
def dev_outdir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return _synth(tmp_path_factory, "dev")


@pytest.fixture(scope="session")
def exec_stacks(tmp_path_factory: pytest.TempPathFactory) -> dict[str, StackJson]:
    """The dev stacks of a deployment that opted into ECS Exec (ECS_EXEC=on) for a debugging session."""
    previous = os.environ.get("ECS_EXEC")
    os.environ["ECS_EXEC"] = "on"
    try:
        outdir = _synth(tmp_path_factory, "dev")
    finally:
        if previous is None:
            os.environ.pop("ECS_EXEC")
        else:
            os.environ["ECS_EXEC"] = previous
    return _by_id(outdir)


@pytest.fixture(scope="session")
def prod_outdir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return _synth(tmp_path_factory, "prod")


def _by_id(outdir: Path) -> dict[str, StackJson]:
    return {stack.stack_id: stack for stack in load_app(outdir)}


@pytest.fixture(scope="session")
def dev_stacks(dev_outdir: Path) -> dict[str, StackJson]:
    return _by_id(dev_outdir)


@pytest.fixture(scope="session")
def prod_stacks(prod_outdir: Path) -> dict[str, StackJson]:
    return _by_id(prod_outdir)


@pytest.fixture(scope="session")
def retail(dev_stacks: dict[str, StackJson]) -> StackJson:
    return dev_stacks["retail-dev"]


@pytest.fixture(scope="session")
def factory(dev_stacks: dict[str, StackJson]) -> StackJson:
    return dev_stacks["factory-dev"]


@pytest.fixture(scope="session", params=["retail-dev", "factory-dev"])
def stack(request: pytest.FixtureRequest, dev_stacks: dict[str, StackJson]) -> StackJson:
    return dev_stacks[request.param]


@pytest.fixture(scope="module")
def tls(tmp_path_factory: pytest.TempPathFactory) -> TlsFiles:
    """A local CA and a server certificate for 127.0.0.1 and localhost (localdev/tls.py)."""
    return make_tls(tmp_path_factory.mktemp("tls"))


@pytest.fixture(scope="module")
def secure_postgres(tls: TlsFiles) -> Iterator[PostgresServer]:
    """PostgreSQL as RDS runs it: TLS only (a plaintext connection is refused), passwords checked."""
    server = PostgresServer(password_auth=True, password="master-pw", tls=tls)
    yield server
    server.close()


@pytest.fixture(scope="module")
def secure_redis(tls: TlsFiles) -> Iterator[RedisServer]:
    """Redis as ElastiCache runs it with transit encryption: TLS only, an AUTH token."""
    server = RedisServer(password="redis-auth-token", tls=tls)
    yield server
    server.close()


@pytest.fixture(scope="session")
def redis_server() -> Iterator[RedisServer]:
    """A real Redis with AUTH on a free loopback port, for every test package that needs one."""
    server = RedisServer(password="test-auth-token")
    yield server
    server.close()


@pytest.fixture()
def redis_client(redis_server: RedisServer) -> Iterator[redis.Redis]:
    client = redis.Redis(port=redis_server.port, password=redis_server.password)
    client.flushall()
    yield client
    client.close()
