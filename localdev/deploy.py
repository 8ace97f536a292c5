"""Deploy both stacks, unchanged, into the local emulator; and take them down again.

`up()`: start (or reuse) the emulator and the per-stack PostgreSQL and Redis, create what
an operator creates before a first deploy (the Redis AUTH secrets, the alerts queue), `cdktf deploy` both stacks, write
`cfn-outputs/flat-outputs.json`, and give each local PostgreSQL the user and password of
its stack's RDS-managed secret. `down()`: `cdktf destroy` both stacks, check that nothing
of ours is left in the emulator and that the state is empty, stop everything, remove `.local/`.
"""
from __future__ import annotations

import json
import os
import re
import secrets
import shutil
import subprocess
import sys
import threading
import time
from collections import Counter
from pathlib import Path
from typing import TYPE_CHECKING

import psycopg2
from botocore.exceptions import ClientError
from psycopg2 import sql

from localdev import outputs as flat
from localdev.access import report as access
from localdev.local_endpoints import (
    LOCAL_ENDPOINTS,
    deployed_task,
    processor_environment,
    read_local_endpoints,
    write_local_endpoints,
)
from localdev.session import (
    ACCESS_LOG,
    LOCAL,
    ROOT,
    STATE_DIR,
    Session,
    alive,
    emulator_up,
    start_catalog_api,
    start_emulator,
    start_gateway,
    start_servers,
    stop_process,
    stop_servers,
)
from localdev.tls import make_named_certificate, make_tls, postgres_tls
from policy.conventions import redis_auth_token_problem
from stacks.config import build_config
from stacks.terraform_cli import automation_env
from stacks.workloads import WORKLOAD_REGIONS

if TYPE_CHECKING:
    from botocore.client import BaseClient

PROGRESS_EVERY_S = 15.0
ANSI = re.compile(r"\x1b\[[0-9;]*[A-Za-z]")
STATUS_LINE = re.compile(r"^\d+ Stacks? deploying|^\d+ Stacks? destroying")


def say(message: str) -> None:
    print(f"[local] {message}", flush=True)


def terraform_env(session: Session) -> dict[str, str]:
    """Terraform's environment for the local deployment: the emulator's endpoint and keys, the suffix,
    the subscriptions and the local state directory, on top of `automation_env()`."""
    return automation_env(**session.aws_env(), ENVIRONMENT_SUFFIX=session.suffix,
                          ALERT_SUBSCRIPTIONS=session.alert_subscriptions,
                          INCIDENT_SUBSCRIPTIONS=session.incident_subscriptions, SUPPLIERS=session.suppliers,
                          TF_LOCAL_STATE_DIR=STATE_DIR)


def state_file(session: Session, workload: str) -> Path:
    return ROOT / STATE_DIR / f"terraform.{session.stack_id(workload)}.tfstate"


# -- up -----------------------------------------------------------------------------------------------------------


def up(suffix: str) -> tuple[Session, float]:
    """The running session and how long the deploy took, in seconds."""
    session = Session.load()
    if session is not None and session.suffix == suffix and emulator_up(session.emulator_port):
        say(f"reusing the running emulator at {session.endpoint}")
    else:
        if session is not None:
            say("a previous local session is gone (emulator not running): clearing what it left")
            forget(session)
        started = time.monotonic()
        port, pid = start_emulator()
        session = Session(suffix=suffix, emulator_port=port, emulator_pid=pid)
        session.save()
        for workload in WORKLOAD_REGIONS:
            session.servers[workload] = start_servers(workload)
            session.save()
        say(f"emulator at {session.endpoint}; PostgreSQL and Redis per stack "
            f"({time.monotonic() - started:.1f} s)")
    create_operator_prerequisites(session)
    seconds = deploy(session)
    check_converged(session)
    prepare_databases(session)
    write_local_endpoints(session.aws_env(), session.servers)
    migrate(session)
    serve_supplier_api(session)
    serve_catalog_api(session)
    return session, seconds


def serve_catalog_api(session: Session) -> None:
    """Run the deployed catalog read API task as a local process (its task definition's environment, its
    secrets resolved with its execution role, the local PostgreSQL and Redis, localdev/local_endpoints.py),
    and put its local URL in the outputs as `<workload>_catalog_api_url`: the emulated ALB carries no traffic."""
    outputs = flat.read()
    for workload, region in WORKLOAD_REGIONS.items():
        family = outputs.get(flat.key(workload, "catalog_api_task_family"))
        if not family:
            continue
        started = time.monotonic()
        name = f"{session.stack_id(workload)}-catalog-api"
        checked_from = log_size()
        task_env, roles = deployed_task(session, region, str(family), name)
        env = processor_environment(task_env, read_local_endpoints()["workloads"][workload], region,  # type: ignore[index]
                                    {**session.aws_env(), **session.assume(roles.task, name, region)},
                                    base=lambda: dict(os.environ))
        fail_on_refusals(checked_from, f"{name} start")
        session.catalog_api_port, session.catalog_api_pid = start_catalog_api(session, env)
        session.save()
        url = f"https://127.0.0.1:{session.catalog_api_port}"
        flat.update({flat.key(workload, "catalog_api_url"): url})
        say(f"{session.stack_id(workload)} catalog read API served at {url} ({time.monotonic() - started:.1f} s)")


def serve_supplier_api(session: Session) -> None:
    """Serve the deployed supplier API's stage through the local API Gateway (localdev/gateway/), and
    put its local URL in the outputs as `<workload>_supplier_api_url`: moto's server does not serve
    execute-api, so the URL the emulator answers with reaches nothing here."""
    outputs = flat.read()
    for workload, region in WORKLOAD_REGIONS.items():
        api_id = outputs.get(flat.key(workload, "supplier_api_id"))
        config = build_config(workload, session.suffix).supplier_api
        if not api_id or config is None:
            continue
        started = time.monotonic()
        session.gateway_port, session.gateway_pid = start_gateway(session, region, str(api_id), config.stage_name)
        session.save()
        url = f"https://127.0.0.1:{session.gateway_port}/{config.stage_name}"
        flat.update({flat.key(workload, "supplier_api_url"): url})
        say(f"{session.stack_id(workload)} supplier API served at {url} ({time.monotonic() - started:.1f} s)")


def create_operator_prerequisites(session: Session) -> None:
    """What an operator creates before a first deploy: the Redis AUTH token the stacks read
    (a data source) and the local Redis requires, and the queues the alarms and incidents reach."""
    for workload, region in WORKLOAD_REGIONS.items():
        session.client("sqs", region).create_queue(QueueName=session.alert_queue)
        config = build_config(workload, session.suffix, session.alert_subscriptions, session.incident_subscriptions)
        if config.incidents is not None:
            session.client("sqs", region).create_queue(QueueName=session.incident_queue)
        if config.supplier_api is not None:
            set_api_gateway_logging_role(session, region)
        name = config.redis_auth_secret_name
        client = session.client("secretsmanager", region)
        token = session.servers[workload].redis_password
        problem = redis_auth_token_problem(token)  # the check `make deploy` makes (tools/release.py)
        if problem:
            raise SystemExit(f"{name}: the Redis AUTH token {problem}")
        put_secret(client, name, token, "Redis AUTH token (created by the operator before the first deploy)")
        if config.catalog_api is not None:
            catalog_api_prerequisites(session, region, config.catalog_api.certificate_domain,
                                      config.catalog_api_secret_names)


def put_secret(client: BaseClient, name: str, value: str, description: str) -> None:
    try:
        client.create_secret(Name=name, SecretString=value, Description=description)
    except ClientError as error:
        if error.response["Error"]["Code"] != "ResourceExistsException":
            raise
        client.put_secret_value(SecretId=name, SecretString=value)


def catalog_api_prerequisites(session: Session, region: str, domain: str, names: dict[str, str]) -> None:
    """What an operator creates before the catalog read API's first deploy (docs/catalog-api.md): the
    reader's password, the storefront's bearer token, the tasks' serving certificate (here the local CA's
    server certificate, for 127.0.0.1, where the local task listens) and the ALB's certificate in ACM
    for the API's name (signed by the local CA)."""
    tls = make_tls(LOCAL / "tls")
    client = session.client("secretsmanager", region)
    put_secret(client, names["reader"], secrets.token_urlsafe(24), "Catalog read API: the reader role's password")
    put_secret(client, names["tokens"], f"storefront-{secrets.token_hex(16)}",
               "Catalog read API: the callers' bearer tokens, comma-separated")
    put_secret(client, names["tls"], tls.key.read_text() + tls.cert.read_text(),
               "Catalog read API: the tasks' serving key and certificate (PEM)")
    acm = session.client("acm", region)
    listed = acm.list_certificates(CertificateStatuses=["ISSUED"])["CertificateSummaryList"]
    if not any(c["DomainName"] == domain for c in listed):
        cert, key = make_named_certificate(tls, domain)
        acm.import_certificate(Certificate=cert.read_bytes(), PrivateKey=key.read_bytes(),
                               CertificateChain=tls.ca.read_bytes())


API_GATEWAY_LOGS_ROLE = "apigateway-cloudwatch-logs"


def set_api_gateway_logging_role(session: Session, region: str) -> None:
    """The account's API Gateway CloudWatch role, which a stage's access logs need: a per-region
    setting an operator makes once (docs/aws.md), not a stack's, since every stack of the region shares it."""
    iam = session.client("iam", region)
    trust = {"Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Action": "sts:AssumeRole",
                                                     "Principal": {"Service": "apigateway.amazonaws.com"}}]}
    try:
        arn = iam.create_role(RoleName=API_GATEWAY_LOGS_ROLE, AssumeRolePolicyDocument=json.dumps(trust))["Role"]["Arn"]
        iam.attach_role_policy(RoleName=API_GATEWAY_LOGS_ROLE, PolicyArn="arn:aws:iam::aws:policy/service-role/"
                                                                         "AmazonAPIGatewayPushToCloudWatchLogs")
    except ClientError as error:
        if error.response["Error"]["Code"] != "EntityAlreadyExists":
            raise
        arn = iam.get_role(RoleName=API_GATEWAY_LOGS_ROLE)["Role"]["Arn"]
    session.client("apigateway", region).update_account(
        patchOperations=[{"op": "replace", "path": "/cloudwatchRoleArn", "value": arn}])


def deploy(session: Session) -> float:
    stacks = [session.stack_id(w) for w in WORKLOAD_REGIONS]
    raw = LOCAL / "cdktf-outputs.json"
    say(f"cdktf deploy {' '.join(stacks)} (log: .local/logs/deploy.log)")
    started = time.monotonic()
    run_cdktf(session, ["deploy", *stacks, "--auto-approve", "--skip-provider-lock", "--outputs-file", str(raw),
                        "--outputs-file-include-sensitive-outputs"], "deploy.log", stacks)
    seconds = time.monotonic() - started
    written = flat.write(json.loads(raw.read_text()))
    say(f"deployed both stacks in {seconds:.0f} s; outputs in {written.relative_to(ROOT)}")
    return seconds


def run_cdktf(session: Session, args: list[str], log_name: str, stacks: list[str]) -> None:
    """Run the cdktf CLI, log everything, print a progress line per stack now and then."""
    log_path = LOCAL / "logs" / log_name
    log_path.parent.mkdir(parents=True, exist_ok=True)
    done: Counter[str] = Counter()
    pattern = re.compile(r"^(\S+)\s+.*(Creation|Destruction|Modifications) complete")
    for stack in stacks:  # an init from an earlier run with another backend path would refuse to start
        shutil.rmtree(ROOT / "cdktf.out" / "stacks" / stack / ".terraform", ignore_errors=True)
    command = ["npx", "--no-install", "cdktf", *args]
    with open(log_path, "w", encoding="utf-8") as log:
        process = subprocess.Popen(command, cwd=ROOT, env=terraform_env(session), stdout=subprocess.PIPE,
                                   stderr=subprocess.STDOUT, text=True, bufsize=1)
        stop = threading.Event()

        def report() -> None:
            while not stop.wait(PROGRESS_EVERY_S):
                say("  " + ", ".join(f"{s}: {done[s]} resources" for s in stacks))

        ticker = threading.Thread(target=report, daemon=True)
        ticker.start()
        assert process.stdout is not None
        for raw_line in process.stdout:
            line = ANSI.sub("", raw_line)
            if not line.strip() or STATUS_LINE.match(line):
                continue
            log.write(line)
            match = pattern.match(line.strip())
            if match and match.group(1) in stacks:
                done[match.group(1)] += 1
        code = process.wait()
        stop.set()
    if code != 0:
        tail = log_path.read_text().splitlines()[-25:]
        raise SystemExit(f"cdktf {args[0]} failed (exit {code}); last lines of {log_path}:\n" + "\n".join(tail))


def check_converged(session: Session) -> None:
    """`terraform plan` right after the deploy must show no changes: the stacks converge."""
    started = time.monotonic()
    env = terraform_env(session)
    plans = {stack: subprocess.Popen(["terraform", "plan", "-detailed-exitcode", "-input=false", "-no-color",
                                      "-lock=false"], cwd=ROOT / "cdktf.out" / "stacks" / stack, env=env,
                                     stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
             for stack in (session.stack_id(w) for w in WORKLOAD_REGIONS)}
    for stack, process in plans.items():
        output, _ = process.communicate()
        (LOCAL / "logs" / f"{stack}-plan.log").write_text(output)
        if process.returncode == 2:
            changes = [line.strip() for line in output.splitlines() if line.strip().startswith("# ")]
            raise SystemExit(f"{stack} does not converge: plan after deploy wants changes:\n  " + "\n  ".join(changes))
        if process.returncode != 0:
            raise SystemExit(f"terraform plan failed for {stack}; see .local/logs/{stack}-plan.log")
    say(f"terraform plan after deploy: no changes in either stack ({time.monotonic() - started:.0f} s)")


def prepare_databases(session: Session) -> None:
    """Give each local PostgreSQL its stack's RDS master user: the name and password in
    the RDS-managed secret, read from the emulator exactly as the processor reads it."""
    outputs = flat.read()
    for workload, region in WORKLOAD_REGIONS.items():
        servers = session.servers[workload]
        client = session.client("secretsmanager", region)
        secret = json.loads(client.get_secret_value(
            SecretId=outputs[flat.key(workload, "db_secret_arn")])["SecretString"])
        database = outputs[flat.key(workload, "db_name")]
        admin = psycopg2.connect(host="127.0.0.1", port=servers.pg_port, user="test",
                                 password=servers.pg_admin_password, dbname="postgres", **postgres_tls(servers.ca_file))
        admin.autocommit = True
        with admin.cursor() as cur:
            user = sql.Identifier(secret["username"])
            cur.execute("SELECT 1 FROM pg_roles WHERE rolname = %s", (secret["username"],))
            verb = sql.SQL("ALTER") if cur.fetchone() else sql.SQL("CREATE")
            # CREATEROLE, as RDS gives its master user: the migration creates the application role.
            cur.execute(sql.SQL("{} ROLE {} LOGIN CREATEROLE PASSWORD %s").format(verb, user), (secret["password"],))
            cur.execute("SELECT 1 FROM pg_database WHERE datname = %s", (database,))
            if not cur.fetchone():
                cur.execute(sql.SQL("CREATE DATABASE {} OWNER {}").format(sql.Identifier(database), user))
            accept_iam_tokens(cur, Path(servers.pg_dir) / "data", database,
                              build_config(workload, session.suffix).database.app_username)
        admin.close()


def accept_iam_tokens(cur: psycopg2.extensions.cursor, data_dir: Path, database: str, app_user: str) -> None:
    """The service signs in as the application role with an IAM token, which only RDS can
    check. The local PostgreSQL lets that role in without checking its token (the token is
    still made, by the same code as on AWS); every other role keeps its password."""
    hba = data_dir / "pg_hba.conf"
    line = f"hostssl {database} {app_user} 127.0.0.1/32 trust  # an IAM token (RDS checks it; locally nothing can)\n"
    text = hba.read_text()
    if line not in text:
        stat = hba.stat()
        hba.write_text(line + text)
        os.chown(hba, stat.st_uid, stat.st_gid)
        cur.execute("SELECT pg_reload_conf()")


def migrate(session: Session) -> None:
    """The deploy's migration step, as `make migrate` runs the migrate task on AWS: the
    processor image's `migrate` with the migrate task definition's environment (the master
    secret), which creates the schema and the application role."""
    outputs = flat.read()
    started = time.monotonic()
    for workload, region in WORKLOAD_REGIONS.items():
        name = f"{session.stack_id(workload)}-migrate"
        task_env, roles = deployed_task(session, region, str(outputs[flat.key(workload, "migrate_task_family")]), name)
        env = processor_environment(task_env, read_local_endpoints()["workloads"][workload], region,  # type: ignore[index]
                                    {**session.aws_env(), **session.assume(roles.task, name, region)},
                                    base=lambda: dict(os.environ))
        checked_from = log_size()
        result = subprocess.run([sys.executable, "-m", "processor", "migrate"], cwd=ROOT, env=env,
                                capture_output=True, text=True, timeout=120)
        (LOCAL / "logs" / f"{session.stack_id(workload)}-migrate.log").write_text(result.stdout + result.stderr)
        fail_on_refusals(checked_from, f"{session.stack_id(workload)} migration")
        if result.returncode != 0:
            raise SystemExit(f"{session.stack_id(workload)} migration failed: {result.stderr.strip()[-500:]}")
    say(f"migrated both databases as their master users ({time.monotonic() - started:.1f} s)")


def log_size() -> int:
    """Where the access log ends now: a run's own decisions are those after it."""
    return ACCESS_LOG.stat().st_size if ACCESS_LOG.exists() else 0


def fail_on_refusals(offset: int, what: str) -> None:
    """Stop the run if the emulator refused a deployed role anything since `offset`: on AWS the
    same call would fail the same way."""
    refused = access.refusals(access.read(ACCESS_LOG, offset))
    if refused:
        raise SystemExit(f"{what}: AWS would refuse what the deployed roles asked for "
                         f"(.local/logs/access.jsonl):\n  " + "\n  ".join(refused))


# -- down ---------------------------------------------------------------------------------------------------------


DEMO_DEVICES = "devices"  # under .local/: what `python -m tools.sensors register` wrote for the demo's sensors


def sensors_tool(session: Session, *args: str) -> None:
    """`python -m tools.sensors ARGS --suffix <local>` against the emulator, as a plant engineer runs it."""
    done = subprocess.run([sys.executable, "-m", "tools.sensors", *args, "--suffix", session.suffix], cwd=ROOT,
                          env={**os.environ, **session.aws_env()}, capture_output=True, text=True)
    if done.returncode != 0:
        raise SystemExit(f"tools.sensors {' '.join(args[:2])} failed: {done.stderr.strip()[-2000:]}")


def revoke_demo_sensors(session: Session) -> None:
    """Revoke the sensors the demo registered (their things deleted, certificates REVOKED and detached
    from the device policy), as a plant must before the stack's policy and thing type can go."""
    devices = LOCAL / DEMO_DEVICES
    by_line: dict[str, list[str]] = {}
    for config in sorted(devices.glob("*/device.json")):
        device = json.loads(config.read_text())
        by_line.setdefault(device["line_id"], []).append(device["sensor_id"])
    for line, sensors in by_line.items():
        sensors_tool(session, "revoke", line, *sensors)
    shutil.rmtree(devices, ignore_errors=True)


def down() -> None:
    session = Session.load()
    if session is None:
        say("no local deployment (.local/session.json): nothing to destroy")
        leftovers = [p for p in (ROOT / STATE_DIR).glob("*.tfstate*")] if (ROOT / STATE_DIR).exists() else []
        for path in leftovers:
            path.unlink()
        flat.remove()
        LOCAL_ENDPOINTS.unlink(missing_ok=True)
        return
    if emulator_up(session.emulator_port):
        revoke_demo_sensors(session)
        stacks = [session.stack_id(w) for w in WORKLOAD_REGIONS]
        say(f"cdktf destroy {' '.join(stacks)} (log: .local/logs/destroy.log)")
        started = time.monotonic()
        run_cdktf(session, ["destroy", *stacks, "--auto-approve", "--skip-provider-lock"], "destroy.log", stacks)
        say(f"destroyed both stacks in {time.monotonic() - started:.0f} s")
        check_nothing_left(session)
    else:
        say("the emulator is not running: its resources went with it; clearing local state")
    forget(session)
    say("local deployment removed (.local/, cfn-outputs/flat-outputs.json)")


def check_nothing_left(session: Session) -> None:
    """State empty and no resource named for our stacks left in the emulator."""
    for workload in WORKLOAD_REGIONS:
        path = state_file(session, workload)
        if path.exists():
            resources = json.loads(path.read_text()).get("resources", [])
            managed = [r for r in resources if r.get("mode") == "managed"]
            if managed:
                raise SystemExit(f"{path.name} still lists {len(managed)} resources after destroy")
    left = leftovers(session)
    if left:
        # Not in the state (e.g. a create that failed half way), so Terraform cannot remove
        # them; stopping the emulator does. Say so, and fail, so the gap is seen.
        forget(session)
        raise SystemExit("destroy left resources outside the Terraform state; they went with the emulator:\n  "
                         + "\n  ".join(left))


def leftovers(session: Session) -> list[str]:
    """Resources of our stacks still in the emulator, found by name (every name carries the suffix)."""
    found: list[str] = []
    for workload, region in WORKLOAD_REGIONS.items():
        def client(service: str, region: str = region) -> BaseClient:
            return session.client(service, region)

        mark = f"-{session.suffix}"
        checks = {
            "kinesis stream": lambda: client("kinesis").list_streams()["StreamNames"],
            "db instance": lambda: [d["DBInstanceIdentifier"] for d in client("rds").describe_db_instances()["DBInstances"]],
            "cache group": lambda: [g["ReplicationGroupId"]
                                    for g in client("elasticache").describe_replication_groups()["ReplicationGroups"]],
            # a deleted cluster stays describable as INACTIVE for a while, on AWS too
            "ecs cluster": lambda: [c["clusterArn"] for arns in [client("ecs").list_clusters()["clusterArns"]] if arns
                                    for c in client("ecs").describe_clusters(clusters=arns)["clusters"]
                                    if c["status"] != "INACTIVE"],
            "s3 bucket": lambda: [b["Name"] for b in client("s3").list_buckets()["Buckets"]],
            "kms alias": lambda: [a["AliasName"] for a in client("kms").list_aliases()["Aliases"]],
            "log group": lambda: [g["logGroupName"] for g in client("logs").describe_log_groups()["logGroups"]],
            "alarm": lambda: [a["AlarmName"] for a in client("cloudwatch").describe_alarms()["MetricAlarms"]],
            "vpc": lambda current=workload: [v["VpcId"] for v in client("ec2").describe_vpcs(
                Filters=[{"Name": "tag:Workload", "Values": [current]}])["Vpcs"]],
            "iam role": lambda: [r["RoleName"] for r in client("iam").list_roles()["Roles"]],
        }
        for kind, list_names in checks.items():
            for name in list_names():
                if kind == "vpc" or (workload in name and mark in name):
                    found.append(f"{region} {kind}: {name}")
    return sorted(set(found))


def forget(session: Session) -> None:
    if session.gateway_pid:
        stop_process(session.gateway_pid)
    if session.catalog_api_pid:
        stop_process(session.catalog_api_pid)
    for servers in session.servers.values():
        stop_servers(servers)
    stop_process(session.emulator_pid)
    for workload in WORKLOAD_REGIONS:
        for path in state_file(session, workload).parent.glob(f"terraform.{session.stack_id(workload)}.tfstate*"):
            path.unlink()
    shutil.rmtree(LOCAL, ignore_errors=True)
    flat.remove()
    LOCAL_ENDPOINTS.unlink(missing_ok=True)


def status() -> int:
    session = Session.load()
    if session is None:
        say("no local deployment")
        return 1
    state = "running" if emulator_up(session.emulator_port) else "not running"
    say(f"emulator {session.endpoint}: {state} (pid {session.emulator_pid}, alive={alive(session.emulator_pid)})")
    if session.gateway_pid:
        say(f"API Gateway https://127.0.0.1:{session.gateway_port}: pid {session.gateway_pid}, "
            f"alive={alive(session.gateway_pid)}")
    if session.catalog_api_pid:
        say(f"catalog read API https://127.0.0.1:{session.catalog_api_port}: pid {session.catalog_api_pid}, "
            f"alive={alive(session.catalog_api_pid)}")
    for workload, servers in session.servers.items():
        say(f"{session.stack_id(workload)}: PostgreSQL 127.0.0.1:{servers.pg_port}, "
            f"Redis 127.0.0.1:{servers.redis_port}")
    return 0 if state == "running" else 1
