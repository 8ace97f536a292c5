"""The local deployment's moving parts: where they live, how to start, find and stop them.

Everything sits under `.local/` (git-ignored): the emulator's log and pid, one
PostgreSQL and one Redis per stack (each stack has its own RDS instance and Redis group
in AWS), Terraform state, and `session.json`, which lets `make destroy-local` find all of
it from another shell.
"""
from __future__ import annotations

import json
import os
import secrets
import shutil
import signal
import subprocess
import sys
import time
import urllib.request
from collections.abc import Mapping
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

from localdev.access import ACCESS_LOG_ENV
from localdev.access.trust import ECS_TASKS, assume_as
from localdev.moto_extensions.iot import IOT_CA_ENV
from localdev.servers import PostgresServer, RedisServer, as_postgres_user, free_port, listening, pg_bin, wait_for
from localdev.tls import make_ca, make_tls

if TYPE_CHECKING:
    from botocore.client import BaseClient

ROOT = Path(__file__).resolve().parent.parent
LOCAL = ROOT / ".local"
SESSION_FILE = LOCAL / "session.json"
STATE_DIR = ".local/state"  # relative to ROOT, for TF_LOCAL_STATE_DIR
FAKE_CREDENTIALS = {"AWS_ACCESS_KEY_ID": "localdev", "AWS_SECRET_ACCESS_KEY": "localdev"}
# Every decision the emulator takes on a call made with a deployed role (localdev/access/).
ACCESS_LOG = LOCAL / "logs" / "access.jsonl"
# One JSON line per request the local API Gateway answered (what a stage's access log holds).
GATEWAY_ACCESS_LOG = LOCAL / "logs" / "supplier-api-access.jsonl"


@dataclass
class LocalServers:
    """One stack's stand-ins for RDS and ElastiCache."""

    pg_dir: str
    pg_port: int
    pg_admin_password: str
    redis_dir: str
    redis_port: int
    redis_pid: int
    redis_password: str
    ca_file: str = ""  # the local CA both servers' certificates chain to (TLS only)


@dataclass
class Session:
    suffix: str
    emulator_port: int
    emulator_pid: int
    servers: dict[str, LocalServers] = field(default_factory=dict)  # by workload
    gateway_pid: int = 0  # the local API Gateway serving the supplier API's stage (localdev/gateway/)
    gateway_port: int = 0
    catalog_api_pid: int = 0  # the retail catalog read API (python -m processor catalog-api) as its task runs it
    catalog_api_port: int = 0

    @property
    def endpoint(self) -> str:
        return f"http://127.0.0.1:{self.emulator_port}"

    def stack_id(self, workload: str) -> str:
        return f"{workload}-{self.suffix}"

    @property
    def alert_queue(self) -> str:
        """The SQS queue (one per region) the local stacks' alarms reach, as an operator's would."""
        return f"alerts-{self.suffix}"

    @property
    def alert_subscriptions(self) -> str:
        """ALERT_SUBSCRIPTIONS for the local stacks (stacks/config.py)."""
        return f"sqs:{self.alert_queue}"

    @property
    def incident_queue(self) -> str:
        """The SQS queue the factory's incidents topic reaches locally, as a plant operator's would."""
        return f"incidents-{self.suffix}"

    @property
    def incident_subscriptions(self) -> str:
        """INCIDENT_SUBSCRIPTIONS for the local stacks (stacks/config.py)."""
        return f"sqs:{self.incident_queue}"

    @property
    def suppliers(self) -> str:
        """SUPPLIERS for the local retail stack (stacks/config.py): a supplier per tier, one of them
        rotating its key (two generations), so the demo can call as each, and over the trial plan."""
        return "acme:standard,globex:bulk:1|2,initech:trial"

    def aws_env(self) -> dict[str, str]:
        """What Terraform, boto3 and the processor need to talk to the emulator."""
        return {**FAKE_CREDENTIALS, "AWS_ENDPOINT_URL": self.endpoint,
                # moto answers an unknown operation at once (see moto_extensions); cap retries anyway
                "AWS_MAX_ATTEMPTS": "2"}

    def client(self, service: str, region: str, credentials: Mapping[str, str] | None = None) -> BaseClient:
        """A boto3 client for the emulator in `region`: with the emulator's plain keys (not
        checked), or with `credentials` (`assume()`'s, checked against the role's policies)."""
        import boto3

        keys = credentials or FAKE_CREDENTIALS
        return boto3.client(service, region_name=region, endpoint_url=self.endpoint,
                            aws_access_key_id=keys["AWS_ACCESS_KEY_ID"],
                            aws_secret_access_key=keys["AWS_SECRET_ACCESS_KEY"],
                            aws_session_token=keys.get("AWS_SESSION_TOKEN"))

    def assume(self, role_arn: str, session_name: str, region: str) -> dict[str, str]:
        """Temporary credentials of a deployed role, as ECS gets them for a task (its agent
        assumes the task role and the execution role through STS, which evaluates the role's
        trust policy for ecs-tasks.amazonaws.com): the three variables."""
        return assume_as(self.client("sts", region), ECS_TASKS, role_arn, session_name)

    def save(self) -> None:
        LOCAL.mkdir(exist_ok=True)
        SESSION_FILE.write_text(json.dumps(asdict(self), indent=2) + "\n")

    @classmethod
    def load(cls) -> Session | None:
        if not SESSION_FILE.exists():
            return None
        data = json.loads(SESSION_FILE.read_text())
        data["servers"] = {w: LocalServers(**s) for w, s in data.get("servers", {}).items()}
        return cls(**data)


def alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except (ProcessLookupError, PermissionError):
        return False
    return True


def running_session() -> Session | None:
    """The local deployment, if its emulator answers; None otherwise."""
    session = Session.load()
    return session if session is not None and emulator_up(session.emulator_port) else None


def emulator_up(port: int) -> bool:
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/moto-api/", timeout=5) as response:
            return response.status == 200
    except OSError:
        return False


def start_emulator() -> tuple[int, int]:
    (LOCAL / "logs").mkdir(parents=True, exist_ok=True)
    port = free_port()
    log = open(LOCAL / "logs" / "emulator.log", "ab")
    ACCESS_LOG.write_text("")  # one emulator, one access log
    iot_ca = LOCAL / "tls" / "iot"  # signs device certificates made from a CSR, as AWS IoT's CA does
    if not (iot_ca / "ca.pem").exists():
        make_ca(iot_ca, "localdev IoT CA")
    process = subprocess.Popen([sys.executable, "-m", "localdev.emulator", "--port", str(port)], cwd=ROOT,
                               stdout=log, stderr=subprocess.STDOUT, start_new_session=True,
                               env={**os.environ, ACCESS_LOG_ENV: str(ACCESS_LOG), IOT_CA_ENV: str(iot_ca)})
    try:
        wait_for(lambda: emulator_up(port), 30, "the AWS emulator (moto)")
    except TimeoutError:
        process.kill()
        raise
    return port, process.pid


def start_gateway(session: Session, region: str, api_id: str, stage: str) -> tuple[int, int]:
    """The deployed REST API's stage served on https://127.0.0.1:port/<stage> (localdev/gateway/), with
    the local CA's server certificate; (port, pid). It reads the API when it starts: start it after a deploy."""
    if session.gateway_pid:
        stop_process(session.gateway_pid)
    tls = make_tls(LOCAL / "tls")
    port = free_port()
    log = open(LOCAL / "logs" / "gateway.log", "ab")
    process = subprocess.Popen(
        [sys.executable, "-m", "localdev.gateway", "--endpoint", session.endpoint, "--region", region,
         "--api-id", api_id, "--stage", stage, "--port", str(port), "--cert", str(tls.cert), "--key", str(tls.key),
         "--access-log", str(GATEWAY_ACCESS_LOG)],
        cwd=ROOT, stdout=log, stderr=subprocess.STDOUT, start_new_session=True,
        env={**os.environ, **session.aws_env(), ACCESS_LOG_ENV: str(ACCESS_LOG)})
    try:
        wait_for(lambda: process.poll() is not None or listening(port), 30, "the local API Gateway")
    except TimeoutError:
        process.kill()
        raise
    if process.poll() is not None:
        raise SystemExit("the local API Gateway exited: see .local/logs/gateway.log")
    return port, process.pid


def start_catalog_api(session: Session, env: dict[str, str]) -> tuple[int, int]:
    """`python -m processor catalog-api` with `env` (its deployed task's, localdev/local_endpoints.py) on a
    free loopback port, serving TLS with the certificate of its deployed secret; (port, pid)."""
    if session.catalog_api_pid:
        stop_process(session.catalog_api_pid)
    port = free_port()
    log = open(LOCAL / "logs" / "catalog-api.log", "ab")
    process = subprocess.Popen([sys.executable, "-m", "processor", "catalog-api"], cwd=ROOT, stdout=log,
                               stderr=subprocess.STDOUT, start_new_session=True,
                               env={**env, "CATALOG_API_HOST": "127.0.0.1", "CATALOG_API_PORT": str(port)})
    try:
        wait_for(lambda: process.poll() is not None or listening(port), 30, "the catalog read API")
    except TimeoutError:
        process.kill()
        raise
    if process.poll() is not None:
        raise SystemExit("the catalog read API exited: see .local/logs/catalog-api.log")
    return port, process.pid


def start_servers(workload: str) -> LocalServers:
    base = LOCAL / workload
    admin_password = secrets.token_urlsafe(18)
    # As root, PostgreSQL runs as the `postgres` user, which may not be able to reach a
    # checkout under a private directory (mktemp -d is 0700): its data then goes to /tmp.
    pg_root = None if as_postgres_user() else base / "pg"
    tls = make_tls(LOCAL / "tls")  # TLS only on both, as RDS (rds.force_ssl) and ElastiCache (transit encryption)
    postgres = PostgresServer(durable=True, password_auth=True, root=pg_root, password=admin_password, tls=tls)
    redis_password = secrets.token_hex(32)  # ElastiCache's AUTH charset (no "_" as token_urlsafe makes)
    redis = RedisServer(password=redis_password, persistent=False, root=base / "redis", tls=tls)
    return LocalServers(pg_dir=str(postgres.dir), pg_port=postgres.port, pg_admin_password=admin_password,
                        redis_dir=str(redis.dir), redis_port=redis.port, redis_pid=redis.process.pid,
                        redis_password=redis_password, ca_file=str(tls.ca))


def stop_servers(servers: LocalServers) -> None:
    data = Path(servers.pg_dir) / "data"
    if data.exists():
        subprocess.run([*as_postgres_user(), pg_bin("pg_ctl"), "-D", str(data), "-m", "fast", "-w", "stop"],
                       capture_output=True)
    stop_process(servers.redis_pid)
    shutil.rmtree(servers.pg_dir, ignore_errors=True)  # under .local/, or /tmp when run as root


def stop_process(pid: int, timeout_s: float = 10) -> None:
    if not alive(pid):
        return
    os.kill(pid, signal.SIGTERM)
    deadline = time.monotonic() + timeout_s
    while alive(pid) and time.monotonic() < deadline:
        time.sleep(0.1)
    if alive(pid):
        os.kill(pid, signal.SIGKILL)
