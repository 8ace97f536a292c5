"""Run both workloads end to end against the local deployment and summarise.

Per stack, at the same time: as many processor tasks as the deployed service's desired
count (`python -m processor --exit-when-idle`, sharing the shards), each with the deployed
task's environment (localdev/local_endpoints.py), and the producer sending seeded traffic
with faults: retail's suppliers with `python -m processor.produce` into the deployed stream; the
factory's sensors, registered with `python -m tools.sensors`, as MQTT clients
(`python -m localdev.iot.devices`) through the local IoT broker and the deployed topic rule
(localdev/iot/). A progress line every few seconds; then a summary read from the processors'
metrics, the broker's figures, PostgreSQL and Redis.
"""
from __future__ import annotations

import json
import os
import random
import subprocess
import sys
import threading
import time
from collections import Counter
from dataclasses import dataclass, field
from decimal import Decimal
from pathlib import Path
from typing import Any

import psycopg2
import redis
from botocore.client import BaseClient

from localdev import outputs as flat
from localdev.access import report as access
from localdev.access.policy import Policy
from localdev.deploy import (
    DEMO_DEVICES,
    fail_on_refusals,
    log_size,
    revoke_demo_sensors,
    say,
    sensors_tool,
    state_file,
)
from localdev.iot.local_broker import LocalBroker
from localdev.iot.rules import SETTLED
from localdev.kinesis_usage import shard_usage
from localdev.local_endpoints import (
    TaskRoles,
    deployed_task,
    processor_environment,
    read_local_endpoints,
)
from localdev.session import ACCESS_LOG, GATEWAY_ACCESS_LOG, LOCAL, ROOT, Session
from localdev.tls import make_tls, postgres_tls, redis_tls
from pipeline_lib.settings import Supplier
from processor.anomaly.detector import alarm_history
from processor.task_settings import INCIDENT_WINDOW_S
from processor.traffic import FactoryTraffic
from stacks.config import build_config
from stacks.workloads import WORKLOAD_REGIONS

PROGRESS_EVERY_S = 5.0
IDLE_EXIT_S = 8


@dataclass(frozen=True)
class Traffic:
    """What the demo sends. Retail: 300 updates/s (18,000 a minute, the target is 1,000)."""

    rate: float
    duration_s: float
    flags: tuple[str, ...]


TRAFFIC = {
    "retail": Traffic(300, 20, ("--duplicates", "0.02", "--reorder", "0.02", "--poison", "0.005", "--seed", "7")),
    # 12 sensors on one line, ~500 readings each: a sensor's detector cannot claim an alarm's rarity
    # before it has `alarm_history()` readings (~200) of its own, so fewer sensors with more history
    # show the detector at work; spikes are rare (0.3 %), as anomalies are.
    "factory": Traffic(300, 20, ("--sensors", "12", "--anomalies", "0.003", "--poison", "0.003",
                                 "--duplicates", "0.01", "--step", "0.0033", "--seed", "11")),
}


@dataclass
class Progress:
    processed: int = 0
    dead_letters: int = 0
    anomalies: int = 0
    batches: int = 0
    first_at: float | None = None
    last_at: float | None = None
    lock: threading.Lock = field(default_factory=threading.Lock)

    def add(self, line: dict) -> None:
        with self.lock:
            if "RecordsProcessed" not in line:
                return
            now = time.monotonic()
            self.first_at = self.first_at or now
            self.last_at = now
            self.processed += int(line.get("RecordsProcessed", 0))
            self.dead_letters += int(line.get("DeadLetters", 0))
            self.anomalies += int(line.get("Anomalies", 0))
            self.batches += 1


@dataclass
class WorkloadRun:
    workload: str
    stack_id: str
    region: str
    env: dict[str, str]  # the task's environment, with the emulator's plain keys (what the producer uses)
    roles: TaskRoles
    progress: Progress = field(default_factory=Progress)
    tasks: int = 1  # the service's desired count
    started_at: float = 0.0  # time.monotonic(): the processor tasks started ...
    started_wall: float = 0.0  # ... and time.time() then
    ended_at: float = 0.0  # ... and the last one exited
    producer: subprocess.Popen | None = None
    through_api: bool = False  # the records went through the supplier API (localdev/suppliers.py)
    api_log_from: int = 0  # where the gateway's access log stood when the run started
    processors: list[subprocess.Popen] = field(default_factory=list)
    sent: dict = field(default_factory=dict)
    reads_before: int = 0  # the stream's GetRecords (every reader: the tasks, the archive's Firehose) before the run
    reads_from: float = 0.0  # time.monotonic() of that count
    broker: LocalBroker | None = None  # the factory's devices publish through it
    broker_figures: dict = field(default_factory=dict)  # its last figures, once closed

    @property
    def running(self) -> bool:
        return any(p.poll() is None for p in self.processors)


def prepare(session: Session, workload: str) -> WorkloadRun:
    outputs = flat.read()
    region = WORKLOAD_REGIONS[workload]
    ecs = session.client("ecs", region)
    service = ecs.describe_services(cluster=outputs[flat.key(workload, "cluster_name")],
                                    services=[outputs[flat.key(workload, "service_name")]])["services"][0]
    task_env, roles = deployed_task(session, region, service["taskDefinition"], session.stack_id(workload))
    endpoints = read_local_endpoints()["workloads"][workload]  # type: ignore[index]
    env = processor_environment(task_env, endpoints, region, session.aws_env(), base=lambda: dict(os.environ))
    env["PYTHONPATH"] = str(ROOT)
    usage = shard_usage(session.endpoint, env["STREAM_NAME"], region)
    return WorkloadRun(workload, session.stack_id(workload), region, env, roles, tasks=max(1, service["desiredCount"]),
                       reads_before=sum(u["get_records"] for u in usage.values()), reads_from=time.monotonic())


ALARM_HISTORY = alarm_history()  # a sensor's readings before any of its readings can be an alarm


def against_labels(cur: psycopg2.extensions.cursor, labels_file: Path) -> str:
    """The flagged readings against the injected ones: how many injected were found, how many fell in
    a sensor's first readings (too few to claim an alarm's rarity), and how many flagged readings were not injected."""
    injected = json.loads(labels_file.read_text())["anomalies"] if labels_file.exists() else []
    cur.execute("""
        WITH injected AS (SELECT DISTINCT r.event_id, r.sensor_id, r.ts FROM sensor_readings r
                          WHERE r.event_id = ANY(%s::uuid[]))
        SELECT count(*) FILTER (WHERE a.event_id IS NOT NULL),
               count(*) FILTER (WHERE a.event_id IS NULL AND (SELECT count(*) FROM sensor_readings s
                                WHERE s.sensor_id = i.sensor_id AND s.ts < i.ts) < %s),
               (SELECT count(*) FROM anomalies WHERE NOT event_id = ANY(%s::uuid[]))
        FROM injected i LEFT JOIN anomalies a ON a.event_id = i.event_id""",
                (injected, ALARM_HISTORY, injected))
    hit, young, other = cur.fetchone()
    return (f"{hit} of the {len(injected)} injected anomalies flagged ({young} more fell in a sensor's first "
            f"{ALARM_HISTORY} readings, too few for any reading to be one in 10,000 by its own history); "
            f"{other} flagged readings were not injected")


DEVICES = LOCAL / DEMO_DEVICES


def demo_sensors(sensors: int) -> dict[str, list[str]]:
    """The sensors the factory traffic names (processor/traffic.py), by line."""
    lines: dict[str, list[str]] = {}
    for sensor, line, _kind, _base in FactoryTraffic(random.Random(0), sensors).sensors:
        lines.setdefault(line, []).append(sensor)
    return lines


def start_devices_broker(session: Session, run: WorkloadRun) -> None:
    """The demo's sensors registered as a plant engineer would (`python -m tools.sensors register`,
    a key made here and only its CSR sent to IoT), and the local IoT broker reading the deployed
    policy and topic rule."""
    tls = make_tls(LOCAL / "tls")
    run.broker = LocalBroker(emulator=session.endpoint, region=run.region, client_ca=LOCAL / "tls" / "iot" / "ca.pem",
                             cert=tls.cert, key=tls.key, root=LOCAL / "iot", env={**run.env, **session.aws_env()},
                             wait=False)  # it starts while the sensors are registered
    flags = TRAFFIC[run.workload].flags
    revoke_demo_sensors(session)  # a run before this one on the same deployment registered them
    for line, sensors in demo_sensors(int(flags[flags.index("--sensors") + 1])).items():
        sensors_tool(session, "register", line, *sensors, "--out", str(DEVICES))
    run.broker.wait_ready()


def close_broker(run: WorkloadRun, timeout_s: float = 30.0) -> None:
    """The broker stopped once its rules engine has applied every message it accepted."""
    if run.broker is None:
        return

    def applied() -> bool:
        figures = run.broker.stats()  # type: ignore[union-attr]
        rules = figures.get("rules", {})
        return rules.get("matched", 0) >= run.sent.get("acknowledged", 0) and rules.get("matched", 0) == sum(
            rules.get(k, 0) for k in SETTLED)

    deadline = time.monotonic() + timeout_s
    while not applied() and time.monotonic() < deadline:
        time.sleep(0.2)
    run.broker_figures = run.broker.close()


def start(session: Session, run: WorkloadRun) -> None:
    """The tasks, each with its own session of the deployed task role (every call it makes is
    checked against the role's policies), and the producer with the emulator's plain keys (it
    stands for the suppliers and plants, outside the stack; the factory's sensors hold only
    their own certificates)."""
    logs = LOCAL / "logs"
    if run.workload == "factory":
        start_devices_broker(session, run)
    run.started_at, run.started_wall = time.monotonic(), time.time()
    run.api_log_from = GATEWAY_ACCESS_LOG.stat().st_size if GATEWAY_ACCESS_LOG.exists() else 0
    for task in range(1, run.tasks + 1):
        credentials = session.assume(run.roles.task, f"{run.stack_id}-task-{task}", run.region)
        processor = subprocess.Popen([sys.executable, "-m", "processor", "--exit-when-idle", str(IDLE_EXIT_S)],
                                     cwd=ROOT, env={**run.env, **credentials}, stdout=subprocess.PIPE,
                                     stderr=subprocess.STDOUT,
                                     text=True, bufsize=1)
        run.processors.append(processor)
        log = logs / f"{run.stack_id}-processor-{task}.log"
        threading.Thread(target=_follow, args=(processor, log, run.progress), daemon=True).start()
    traffic = TRAFFIC[run.workload]
    api = supplier_api(session, run.workload)
    if api is not None:  # the suppliers send through their API, each with its own key
        run.through_api = True
        run.producer = subprocess.Popen(
            [sys.executable, "-m", "localdev.suppliers", "--url", api["url"], "--ca", api["ca"],
             "--suppliers", json.dumps(api["suppliers"]), "--rate", str(traffic.rate),
             "--duration", str(traffic.duration_s), *traffic.flags],
            cwd=ROOT, env=run.env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        return
    producer = ([sys.executable, "-m", "localdev.iot.devices", str(DEVICES), "--port", str(run.broker.port),
                 "--ca", str(LOCAL / "tls" / "ca.pem")] if run.broker else
                [sys.executable, "-m", "processor.produce", run.workload, "--stream", run.env["STREAM_NAME"]])
    run.producer = subprocess.Popen(
        [*producer, "--rate", str(traffic.rate), "--duration", str(traffic.duration_s), *traffic.flags,
         "--labels", str(logs / f"{run.stack_id}-labels.json")],
        cwd=ROOT, env=run.env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def supplier_api(session: Session, workload: str) -> dict[str, Any] | None:
    """The workload's supplier API as its suppliers know it: the URL, the CA its certificate chains to
    here, and each supplier's keys (read back with the operator's keys, as they are handed out) with how
    often it sends. Each sends at half its plan's rate, except the supplier of the lowest-rate tier,
    which sends at four times its rate and so meets 429s; None without an API."""
    outputs = flat.read()
    url = outputs.get(flat.key(workload, "supplier_api_url"))
    config = build_config(workload, session.suffix).supplier_api
    if not url or config is None or not session.gateway_pid:
        return None
    suppliers = Supplier.parse_list(session.suppliers)
    keys = {k["name"]: k["value"] for k in session.client("apigateway", WORKLOAD_REGIONS[workload]).get_api_keys(
        includeValues=True, limit=500)["items"]}
    slowest = min(suppliers, key=lambda s: config.tier(s.tier).rate_limit_per_second)
    found = []
    for supplier in suppliers:
        rate = config.tier(supplier.tier).rate_limit_per_second
        over = supplier is slowest
        found.append({"supplier_id": supplier.supplier_id, "share": 0.1 if over else 1.0,
                      "interval_s": round(1 / (4 * rate) if over else 2 / rate, 3),
                      "keys": [keys[f"{workload}-supplier-{supplier.supplier_id}-{g}-{session.suffix}"]
                               for g in supplier.keys]})
    return {"url": str(url), "ca": session.servers[workload].ca_file, "suppliers": found,
            "over_plan": slowest.supplier_id}


def _follow(processor: subprocess.Popen, log: Path, progress: Progress) -> None:
    """Copy a processor task's output to its log, counting its metrics lines."""
    assert processor.stdout is not None
    with open(log, "w", encoding="utf-8") as out:
        for line in processor.stdout:
            out.write(line)
            if line.startswith("{"):
                try:
                    progress.add(json.loads(line))
                except json.JSONDecodeError:
                    pass


def run_all(session: Session) -> list[WorkloadRun]:
    checked_from = log_size()
    runs = [prepare(session, w) for w in WORKLOAD_REGIONS]
    for run in runs:
        start(session, run)
    say("processors and producers running: " + ", ".join(
        f"{r.stack_id} {r.tasks} tasks, {TRAFFIC[r.workload].rate:.0f} records/s for "
        f"{TRAFFIC[r.workload].duration_s:.0f} s" for r in runs))
    started = time.monotonic()
    while any(r.running for r in runs):
        for run in runs:
            if not run.ended_at and not run.running:
                run.ended_at = time.monotonic()
        time.sleep(0.5)
        if time.monotonic() - started >= PROGRESS_EVERY_S:
            started = time.monotonic()
            say("  " + " | ".join(
                f"{r.stack_id}: {r.progress.processed} processed, {r.progress.dead_letters} dead-lettered"
                + (f", {r.progress.anomalies} anomalies" if r.workload == "factory" else "")
                + ("" if r.producer.poll() is None else " (sending done)")  # type: ignore[union-attr]
                for r in runs))
    for run in runs:
        run.ended_at = run.ended_at or time.monotonic()
        out, err = run.producer.communicate()  # type: ignore[union-attr]
        run.sent = json.loads(out.strip().splitlines()[-1]) if out.strip() else {}
        close_broker(run)
        if run.producer.returncode != 0:  # type: ignore[union-attr]
            raise SystemExit(f"{run.stack_id} producer failed ({run.producer.returncode}): {err.strip()} "  # type: ignore[union-attr]
                             f"{run.sent or ''}; see .local/iot/broker.log")
    fail_on_refusals(checked_from, "the pipeline run")
    for run in runs:
        for task, processor in enumerate(run.processors, 1):
            if processor.returncode != 0:
                raise SystemExit(f"{run.stack_id} processor task {task} exited {processor.returncode}; "
                                 f"see .local/logs/{run.stack_id}-processor-{task}.log")
    return runs


def summarise(session: Session, runs: list[WorkloadRun], timings: dict[str, float]) -> str:
    started = time.monotonic()
    lines = ["", "Local deployment summary", "========================"]
    archive_at: dict[str, int] = {}  # where each stack's archive line goes, filled once the Kinesis figures are read
    for run in runs:
        servers = session.servers[run.workload]
        state = json.loads(state_file(session, run.workload).read_text())
        managed = [r for r in state["resources"] if r["mode"] == "managed"]
        types = {r["type"] for r in managed}
        conn = psycopg2.connect(host="127.0.0.1", port=servers.pg_port, dbname=run.env["DB_NAME"],
                                user="test", password=servers.pg_admin_password, **postgres_tls(servers.ca_file))
        cache = redis.Redis(host="127.0.0.1", port=servers.redis_port, password=servers.redis_password,
                            **redis_tls(servers.ca_file))
        with conn, conn.cursor() as cur:
            cur.execute("SELECT count(*) FROM dead_letters")
            stored_dead = cur.fetchone()[0]
            if run.workload == "retail":
                cur.execute("SELECT count(*), COALESCE(sum(quantity), 0) FROM inventory")
                rows, units = cur.fetchone()
                cur.execute("SELECT count(*) FROM products")
                stored = f"{cur.fetchone()[0]} products, {rows} inventory rows ({units} units)"
            elif run.workload == "factory":
                cur.execute("SELECT count(*), count(DISTINCT sensor_id) FROM sensor_readings")
                readings, sensors = cur.fetchone()
                cur.execute("SELECT count(*) FROM anomalies")
                stored = f"{readings} readings from {sensors} sensors, {cur.fetchone()[0]} anomalies"
                found = against_labels(cur, LOCAL / "logs" / f"{run.stack_id}-labels.json")
            else:  # a new workload says here what it stores (and gets its TRAFFIC above)
                raise SystemExit(f"the demo summary does not know workload {run.workload}: teach localdev/pipeline_run.py")
        reads = catalog_reads(session, run, conn, cache) if run.workload == "retail" else None
        info = cache.info("stats")
        hits, misses = info.get("keyspace_hits", 0), info.get("keyspace_misses", 0)
        p = run.progress
        seconds = (p.last_at - p.first_at) if p.first_at and p.last_at and p.last_at > p.first_at else None
        sent = (f"  sent        {run.sent['sent']} records through the supplier API at {run.sent['records_per_s']}/s "
                f"({run.sent['duplicates']} duplicates; {run.sent['poison']} poison refused at the edge)"
                if run.through_api else
                f"  sent        {run.sent['sent']} records at {run.sent['records_per_s']}/s "
                f"({run.sent['duplicates']} duplicates, {run.sent['poison']} poison"
                + (f", {run.sent['anomalies']} injected anomalies)" if run.workload == "factory" else ")"))
        lines += [
            f"{run.stack_id} ({run.region}): {len(managed)} resources of {len(types)} types deployed",
            *(api_lines(run) if run.through_api else []),
            sent,
            f"  processed   {p.processed} records in {p.batches} batches; dead-lettered {p.dead_letters} "
            f"(table: {stored_dead})" + (f"; anomalies found {p.anomalies}" if run.workload == "factory" else ""),
            *([f"  detector    {found}"] if run.workload == "factory" else []),
            *([f"  mqtt        {broker_line(run)}"] if run.broker_figures else []),
            f"  stored      {stored}",
            f"  throughput  {p.processed / seconds:,.0f} records/s while records flowed" if seconds else
            "  throughput  n/a",
            f"  cache       Redis keyspace hit rate {hits / (hits + misses):.0%} ({hits} hits, {misses} misses)"
            if hits + misses else "  cache       no Redis reads",
        ]
        if reads:
            lines.append(f"  read API    {reads.line()}")
        lines.append(f"  alerts      {alert_delivery(session, run, stored_dead)}")
        if run.workload == "factory":
            lines.append(f"  incidents   {incident_delivery(session, run, conn)}")
        usage = shard_usage(session.endpoint, run.env["STREAM_NAME"], run.region)
        calls = sum(u["get_records"] for u in usage.values()) - run.reads_before
        ran = time.monotonic() - run.reads_from
        lines.append(f"  kinesis     {run.tasks} tasks sharing {len(usage)} shards and the archive's Firehose: {calls} "
                     f"GetRecords in {ran:.0f} s ({calls / len(usage) / ran:.1f}/s per shard, peak "
                     f"{max(u['peak_reads_per_second'] for u in usage.values())}/s; Kinesis allows 5), "
                     f"{sum(u['read_throttled'] for u in usage.values())} throttled")
        archive_at[run.workload] = len(lines)
        conn.close()
        cache.close()
    checked_from = log_size()
    for run in reversed(runs):  # the archive flushes on its interval: waited for last, not inside a measurement
        lines.insert(archive_at[run.workload], f"  archive     {archive_delivery(session, run, checked_from)}")
    lines += ["", "IAM: every call a deployed role made (the tasks with their task role, the ECS agent's secret reads "
              "with the execution role, the migrate tasks, the archives' Firehose) was checked against that role's "
              "policies and the KMS key policy (localdev/access/, decisions in .local/logs/access.jsonl)",
              *access_summary(session, runs)]
    spent = time.monotonic() - started
    lines += ["", f"alerts: the local stacks subscribe SQS {session.alert_queue} (ALERT_SUBSCRIPTIONS); a dev "
              "environment may have no subscription, production refuses to synthesize without one",
              "timings: " + ", ".join(f"{k} {v:.0f} s" for k, v in {
                  **{k: v for k, v in timings.items() if k != "total"}, "summary": spent,
                  "total": timings.get("total", 0.0) + spent}.items()),
              "outputs: cfn-outputs/flat-outputs.json; logs: .local/logs/",
              "tear down: make destroy-local"]
    return "\n".join(lines)


def api_lines(run: WorkloadRun) -> list[str]:
    """The supplier API's figures for the run: from the gateway's access log (every request it
    answered, with its latency) and the suppliers' own count of accepted records."""
    with open(GATEWAY_ACCESS_LOG, encoding="utf-8") as log:
        log.seek(run.api_log_from)
        entries = [json.loads(line) for line in log if line.strip()]
    statuses = Counter(e["status"] for e in entries)
    latencies = sorted(e["latency_ms"] for e in entries)

    def percentile(p: float) -> float:
        return latencies[min(len(latencies) - 1, int(p * len(latencies)))] if latencies else 0.0

    by_supplier = ", ".join(
        f"{supplier} {figures['accepted']}" + (f" ({figures['statuses'].get('429', 0)} requests 429, resent later)"
                                               if figures["statuses"].get("429") else "")
        for supplier, figures in run.sent["suppliers"].items())
    refused = "; ".join(f"{r['what']}: {r['status']} \"{r['message'][:90]}\"" for r in run.sent["refused"])
    return [
        f"  api         {len(entries)} requests to the supplier API (local API Gateway): "
        + ", ".join(f"{count} × {status}" for status, count in sorted(statuses.items()))
        + f"; latency p50 {percentile(0.5):.0f} ms, p99 {percentile(0.99):.0f} ms",
        f"  suppliers   records accepted by supplier: {by_supplier}",
        f"  refused     {refused}",
    ]


def broker_line(run: WorkloadRun) -> str:
    """The local IoT broker's figures: what it admitted and refused, what the deployed rule put."""
    counts, rules, refusals = (run.broker_figures.get(k, {}) for k in ("counts", "rules", "refusals"))
    why = "; ".join(f"{reason} ×{n}" for reason, n in sorted(refusals.items()))
    return (f"{run.sent.get('devices', 0)} devices sent {run.sent.get('messages', 0)} messages (QoS 1, up to "
            f"{run.sent.get('readings_per_message')} readings each) through the local IoT broker: connections "
            f"{counts.get('connect admitted', 0)} admitted, {counts.get('connect refused', 0)} refused; publishes "
            f"{counts.get('publish accepted', 0)} accepted, {counts.get('publish refused', 0)} refused, "
            f"{counts.get('publish throttled', 0)} throttled{f' ({why})' if why else ''}; the deployed rule put "
            f"{rules.get('put', 0)} records into the stream as its role, {rules.get('failed', 0)} failed "
            f"({rules.get('errors_logged', 0)} to its error log), {rules.get('dropped_by_where', 0)} dropped by its "
            "WHERE (a client id that is not the thing its topic names)")


def archive_delivery(session: Session, run: WorkloadRun, checked_from: int, timeout_s: float = 120.0) -> str:
    """The compliance archive's first objects, written by the stack's Firehose from the stream. Its
    buffer flushes on an interval (60 s in dev), so the summary may wait for it; a write the
    Firehose role may not make stops the wait at once, named (access log from `checked_from`)."""
    outputs = flat.read()
    bucket = str(outputs[flat.key(run.workload, "archive_bucket_name")])
    s3 = session.client("s3", run.region)
    started = time.monotonic()
    while not (objects := s3.list_objects_v2(Bucket=bucket, Prefix="records/").get("Contents", [])):
        fail_on_refusals(checked_from, f"{run.stack_id} archive delivery")
        if time.monotonic() - started > timeout_s:
            raise SystemExit(f"{run.stack_id}: nothing reached the archive bucket {bucket} within {timeout_s:.0f} s")
        time.sleep(1.0)
    head = s3.head_object(Bucket=bucket, Key=objects[0]["Key"])
    encrypted = "SSE-KMS with the stack's key" if head.get("SSEKMSKeyId") == outputs[
        flat.key(run.workload, "kms_key_arn")] else f"encryption {head.get('ServerSideEncryption')}"
    plural = "s" if len(objects) > 1 else ""
    size = sum(o["Size"] for o in objects)
    return (f"{len(objects)} GZIP object{plural} ({size:,} bytes) in s3://{bucket}/records/, {encrypted}, "
            "delivered by the stack's Firehose from the stream")


def access_summary(session: Session, runs: list[WorkloadRun]) -> list[str]:
    """Per deployed role that made calls in this emulator's life: requests checked, denied, and
    the grants no call used (least privilege)."""
    entries = access.read(ACCESS_LOG)
    principals = {e.principal for e in entries} | {arn for r in runs for arn in (r.roles.task, r.roles.execution)}
    iam = session.client("iam", "us-east-1")  # IAM is global
    return access.summary_lines(entries, {arn.rsplit("/", 1)[-1]: role_policies(iam, arn) for arn in principals})


def role_policies(iam: BaseClient, role_arn: str) -> list[Policy]:
    """A role's inline and attached managed policies, read back from the emulator."""
    name = role_arn.rsplit("/", 1)[-1]
    found = [Policy.parse(f"inline policy {p}", iam.get_role_policy(RoleName=name, PolicyName=p)["PolicyDocument"])
             for p in iam.list_role_policies(RoleName=name)["PolicyNames"]]
    for attached in iam.list_attached_role_policies(RoleName=name)["AttachedPolicies"]:
        version = iam.get_policy(PolicyArn=attached["PolicyArn"])["Policy"]["DefaultVersionId"]
        document = iam.get_policy_version(PolicyArn=attached["PolicyArn"], VersionId=version)["PolicyVersion"]
        found.append(Policy.parse(f"managed policy {attached['PolicyArn']}", document["Document"]))
    return found


def alert_delivery(session: Session, run: WorkloadRun, dead_letters: int, timeout_s: float = 10.0) -> str:
    """Put the dead-letter alarm in ALARM, as CloudWatch would after this run's poison records
    (the emulator evaluates no metrics), and wait for its notification in the alerts queue,
    through the stack's topic and subscription."""
    cloudwatch, sqs = session.client("cloudwatch", run.region), session.client("sqs", run.region)
    alarm = f"{run.workload}-processor-dead-letters-{session.suffix}"
    queue = sqs.get_queue_url(QueueName=session.alert_queue)["QueueUrl"]
    started = time.monotonic()
    cloudwatch.set_alarm_state(AlarmName=alarm, StateValue="ALARM",
                               StateReason=f"{dead_letters} records dead-lettered in the demo run")
    try:
        while time.monotonic() - started < timeout_s:
            for message in sqs.receive_message(QueueUrl=queue, MaxNumberOfMessages=10,
                                               WaitTimeSeconds=1).get("Messages", []):
                sqs.delete_message(QueueUrl=queue, ReceiptHandle=message["ReceiptHandle"])
                body = json.loads(json.loads(message["Body"])["Message"])
                if (body.get("AlarmName"), body.get("NewStateValue")) == (alarm, "ALARM"):
                    return (f'ALARM "{alarm}" reached SQS {session.alert_queue} through the alerts topic in '
                            f"{time.monotonic() - started:.1f} s")
        raise SystemExit(f"{run.stack_id}: the ALARM notification of {alarm} did not reach {session.alert_queue} "
                         f"within {timeout_s:.0f} s")
    finally:
        cloudwatch.set_alarm_state(AlarmName=alarm, StateValue="OK", StateReason="demo: shown, reset")


def incident_delivery(session: Session, run: WorkloadRun, conn: psycopg2.extensions.connection,
                      timeout_s: float = 15.0) -> str:
    """The line incidents PostgreSQL holds, and the messages that reached the incidents queue
    through the stack's topic (the processor publishes them from its outbox after each batch)."""
    with conn, conn.cursor() as cur:
        cur.execute("SELECT count(*), count(*) FILTER (WHERE closed_at IS NULL), count(DISTINCT line_id), "
                    "count(*) FILTER (WHERE severity = 'critical') FROM incidents")
        stored, still_open, lines, critical = cur.fetchone()
        # this run's messages (a second `run` on one deployment replays the same seeded traffic: no new incidents)
        cur.execute("SELECT count(*) FROM incident_outbox WHERE created_at >= to_timestamp(%s)", (run.started_wall,))
        queued = cur.fetchone()[0]
    sqs = session.client("sqs", run.region)
    queue = sqs.get_queue_url(QueueName=session.incident_queue)["QueueUrl"]
    seen: dict[str, str] = {}
    started = time.monotonic()
    while len(seen) < queued and time.monotonic() - started < timeout_s:
        for message in sqs.receive_message(QueueUrl=queue, MaxNumberOfMessages=10,
                                           WaitTimeSeconds=1).get("Messages", []):
            sqs.delete_message(QueueUrl=queue, ReceiptHandle=message["ReceiptHandle"])
            body = json.loads(json.loads(message["Body"])["Message"])
            seen[body["message_id"]] = body["event"]
    if len(seen) < queued:
        raise SystemExit(f"{run.stack_id}: {queued - len(seen)} of {queued} incident messages did not reach "
                         f"{session.incident_queue} within {timeout_s:.0f} s")
    events = [seen[m] for m in seen]
    window_s = INCIDENT_WINDOW_S.read(run.env)
    return (f"{stored} on {lines} lines ({critical} critical, {still_open} still open: a line's incident closes "
            f"{window_s:g} s of event time after its last firing) from {run.progress.anomalies} anomalies; "
            f"{events.count('opened')} opened and {events.count('closed')} closed messages reached SQS "
            f"{session.incident_queue} through the incidents topic")


@dataclass(frozen=True)
class CatalogReads:
    reads: int  # single-product GETs
    found: int
    missing: int
    batch: int  # SKUs asked in the one batch request
    mismatches: list[str]  # each answer that is not what PostgreSQL holds
    redis_share: float  # of the reads' Redis lookups, those that found the entry (keyspace hits)
    p50_ms: float
    p99_ms: float

    def line(self) -> str:
        return (f"{self.reads} product reads through the read API over TLS (hot products first), a batch of "
                f"{self.batch} and an unknown SKU (404): {self.found} found, {self.missing} not found, "
                f"{len(self.mismatches)} mismatches with PostgreSQL; {self.redis_share:.0%} served from Redis; "
                f"p50 {self.p50_ms:.1f} ms, p99 {self.p99_ms:.1f} ms")


def catalog_reads(session: Session, run: WorkloadRun, conn: psycopg2.extensions.connection, client: redis.Redis,
                  count: int = 500, batch: int = 50) -> CatalogReads:
    """What the storefront does: product reads through the served catalog read API (its URL from the outputs,
    its token from the secret an operator made), most of them of hot products (the producer's Zipf mix),
    each answer checked against PostgreSQL. A mismatch stops the demo."""
    import requests

    from processor.traffic import RetailTraffic

    url = str(flat.read()[flat.key(run.workload, "catalog_api_url")])
    names = build_config(run.workload, session.suffix).catalog_api_secret_names
    token = session.client("secretsmanager", run.region).get_secret_value(
        SecretId=names["tokens"])["SecretString"].split(",")[0].strip()
    ca = session.servers[run.workload].ca_file
    traffic = RetailTraffic(random.Random(3))
    skus = traffic.rng.choices(traffic.skus, traffic.weights, k=count)
    before = client.info("stats")
    answers: dict[str, dict[str, Any] | None] = {}
    latencies: list[float] = []
    with requests.Session() as api:
        api.headers["authorization"] = f"Bearer {token}"
        for sku in skus:
            started = time.perf_counter()
            response = api.get(f"{url}/v1/products/{sku}", verify=ca, timeout=10)
            latencies.append((time.perf_counter() - started) * 1000)
            if response.status_code not in (200, 404):
                raise SystemExit(f"the catalog read API answered {response.status_code} for {sku}: {response.text[:200]}")
            answers[sku] = response.json() if response.status_code == 200 else None
        asked = list(dict.fromkeys(skus))[:batch]
        many = api.get(f"{url}/v1/products", params={"sku": asked}, verify=ca, timeout=10)
        unknown = api.get(f"{url}/v1/products/NO-SUCH-SKU-demo", verify=ca, timeout=10)
    after = client.info("stats")
    truth = catalog_in_postgres(conn, set(answers) | set(asked))
    mismatches = [f"{sku}: API {answer} != PostgreSQL {truth.get(sku)}" for sku, answer in answers.items()
                  if comparable(answer) != truth.get(sku)]
    if many.status_code != 200:
        mismatches.append(f"the batch answered {many.status_code}")
    else:
        body = many.json()
        mismatches += [f"batch {sku}: {comparable(body['products'].get(sku))} != {truth.get(sku)}" for sku in asked
                       if comparable(body["products"].get(sku)) != truth.get(sku)]
        if sorted(body["missing"]) != sorted(sku for sku in asked if truth.get(sku) is None):
            mismatches.append(f"the batch's missing {body['missing']} are not PostgreSQL's")
    if unknown.status_code != 404:
        mismatches.append(f"an unknown SKU answered {unknown.status_code}, not 404")
    if mismatches:
        raise SystemExit("the catalog read API disagrees with PostgreSQL:\n  " + "\n  ".join(mismatches[:10]))
    hits = after.get("keyspace_hits", 0) - before.get("keyspace_hits", 0)
    misses = after.get("keyspace_misses", 0) - before.get("keyspace_misses", 0)
    ordered = sorted(latencies)
    return CatalogReads(
        reads=count, found=sum(1 for sku in skus if answers[sku] is not None),
        missing=sum(1 for sku in skus if answers[sku] is None), batch=len(asked), mismatches=mismatches,
        redis_share=hits / (hits + misses) if hits + misses else 0.0,
        p50_ms=ordered[len(ordered) // 2], p99_ms=ordered[min(len(ordered) - 1, int(len(ordered) * 0.99))])


def comparable(product: dict[str, Any] | None) -> tuple[str, str, str, Decimal, str, int] | None:
    """A product as the API serves it, in the terms PostgreSQL's row is compared in."""
    if product is None:
        return None
    return (product["sku"], product["name"], product["category"], Decimal(str(product["price"])), product["currency"],
            int(product["total_quantity"]))


def catalog_in_postgres(conn: psycopg2.extensions.connection,
                        skus: set[str]) -> dict[str, tuple[str, str, str, Decimal, str, int]]:
    """Each known SKU's product and total quantity across suppliers, straight from the tables."""
    with conn, conn.cursor() as cur:
        cur.execute("""
            SELECT p.sku, p.name, p.category, p.price, p.currency,
                   (SELECT COALESCE(sum(i.quantity), 0) FROM inventory i WHERE i.sku = p.sku)
              FROM products p WHERE p.sku = ANY(%s)
        """, (sorted(skus),))
        return {row[0]: (row[0], row[1], row[2], Decimal(row[3]), row[4].strip(), int(row[5]))
                for row in cur.fetchall()}


def write_summary(text: str) -> Path:
    path = LOCAL / "summary.txt"
    path.write_text(text + "\n")
    return path
