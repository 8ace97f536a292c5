"""Supplier updates per second through the local API Gateway (localdev/gateway/), for `make bench-catalog`.

The emulator (moto's server with the project's extensions: the metered Kinesis, the access evaluator) runs
in a process of its own on the load's core; the gateway (`python -m localdev.gateway`, uvicorn over TLS)
in one on the API's core. The REST API is made in the emulator as the supplier API construct declares it
(localdev/gateway/supplier_api.py), with one API key per supplier on a roomy usage plan and a stage
ceiling above it, in front of a stream of `SHARDS` shards (1,000 records/s each, metered as Kinesis
does). Suppliers post batches of `BATCH` retail records
(processor/traffic.py) back to back; updates/s = records the API answered as accepted, per second.
"""
from __future__ import annotations

import asyncio
import json
import os
import random
import ssl
import subprocess
import sys
import tempfile
from datetime import UTC, datetime
from pathlib import Path

import aiohttp
import boto3

from bench.end_to_end import Emulator
from bench.load import percentile, proc_cpu_s
from localdev.gateway.supplier_api import build_supplier_api, make_integration_role
from localdev.servers import free_port, listening, terminate, wait_for
from localdev.tls import TlsFiles, make_tls
from pipeline_lib.settings import Supplier, SupplierApiConfig, UsageTier
from pipeline_lib.supplier_api_mapping import BATCH_FIELDS, STAMPED
from processor.traffic import RetailTraffic

ROOT = Path(__file__).resolve().parent.parent
REGION = "us-east-1"
STAGE = "live"
SHARDS = 8
BATCH = 100
SUPPLIERS = 4  # each posting its next batch when the last is answered
JSON = "application/json"
FIELD_OF = {record_type: field for field, record_type in BATCH_FIELDS.items()}


# One roomy plan for every supplier, and a stage ceiling above it: the figure is the gateway's, not a plan's.
SETTINGS = SupplierApiConfig(
    tiers=(UsageTier("roomy", 10_000.0, 20_000),),
    suppliers=tuple(Supplier(f"SUP-{n:02d}", "roomy") for n in range(SUPPLIERS)),
    stage_name=STAGE, stage_rate_limit_per_second=10_000.0, stage_burst_limit=20_000)


def make_api(emulator: Emulator) -> tuple[str, list[str]]:
    """(api id, one key value per supplier): the supplier API in the emulator, in front of a SHARDS-shard stream."""
    def aws(service: str):  # noqa: ANN202
        return boto3.client(service, region_name=REGION, endpoint_url=emulator.url, aws_access_key_id="bench",
                            aws_secret_access_key="bench")

    stream = emulator.stream(SHARDS)
    stream_arn = aws("kinesis").describe_stream_summary(StreamName=stream)["StreamDescriptionSummary"]["StreamARN"]
    role = make_integration_role(aws("iam"), stream_arn=stream_arn)
    made = build_supplier_api(aws("apigateway"), stream_name=stream, role_arn=role.arn, settings=SETTINGS)
    return made.api_id, list(made.key_values.values())


def batches(seed: int, count: int = 20) -> list[bytes]:
    """`count` bodies of BATCH retail records each, as a supplier sends them (no type, no supplier id)."""
    traffic = RetailTraffic(random.Random(seed))
    bodies = []
    for _ in range(count):
        body: dict[str, list] = {}
        for _ in range(BATCH):
            _, record, _ = traffic.record(datetime.now(UTC))
            body.setdefault(FIELD_OF[record["type"]], []).append(
                {k: v for k, v in record.items() if k not in STAMPED})
        bodies.append(json.dumps(body).encode())
    return bodies


async def post_for(seconds: float, url: str, ca: Path, keys: list[str]) -> tuple[int, int, list[float], dict, float]:
    """(records accepted, records failed, latencies in s, statuses, wall seconds) of SUPPLIERS posting back to
    back for `seconds`, after a second of warm-up that is not counted."""
    loop = asyncio.get_running_loop()
    accepted = failed = 0
    latencies: list[float] = []
    statuses: dict[int, int] = {}
    context = ssl.create_default_context(cafile=str(ca))
    bodies = batches(7)  # made before the clock starts; each supplier sends them in turn
    async with aiohttp.ClientSession(connector=aiohttp.TCPConnector(ssl=context)) as session:
        async def supplier(n: int, end: float) -> None:
            nonlocal accepted, failed
            i = n
            while loop.time() < end:
                sent = loop.time()
                async with session.post(url, data=bodies[i % len(bodies)],
                                        headers={"x-api-key": keys[n], "content-type": JSON}) as answer:
                    reply = await answer.json(content_type=None)
                latencies.append(loop.time() - sent)
                statuses[answer.status] = statuses.get(answer.status, 0) + 1
                if answer.status == 200:
                    accepted += reply["accepted"]
                    failed += len(reply["failed"])
                i += 1

        await asyncio.gather(*(supplier(n, loop.time() + 1.0) for n in range(SUPPLIERS)))  # warm-up
        accepted = failed = 0
        latencies.clear()
        statuses.clear()
        start = loop.time()
        await asyncio.gather(*(supplier(n, start + seconds) for n in range(SUPPLIERS)))
        wall = loop.time() - start
    return accepted, failed, latencies, statuses, wall


def run(api_cpus: set[int], rest_cpus: set[int], tls: TlsFiles, seconds: float) -> None:
    emulator = Emulator(rest_cpus)
    gateway = None
    try:
        api_id, keys = make_api(emulator)
        port = free_port()
        gateway = subprocess.Popen(
            [sys.executable, "-m", "localdev.gateway", "--endpoint", emulator.url, "--region", REGION,
             "--api-id", api_id, "--stage", STAGE, "--port", str(port), "--cert", str(tls.cert), "--key", str(tls.key)],
            cwd=ROOT, stdout=subprocess.DEVNULL,
            preexec_fn=lambda: os.sched_setaffinity(0, api_cpus))
        wait_for(lambda: gateway.poll() is not None or listening(port), 30, "the local API Gateway")
        cpu = (proc_cpu_s(gateway.pid), proc_cpu_s(emulator.process.pid))
        accepted, failed, latencies, statuses, wall = asyncio.run(
            post_for(seconds, f"https://127.0.0.1:{port}/{STAGE}/v1/updates", tls.ca, keys))
        gateway_cpu, emulator_cpu = proc_cpu_s(gateway.pid) - cpu[0], proc_cpu_s(emulator.process.pid) - cpu[1]
        print(f"\nupdates through the local API Gateway (gateway on core {sorted(api_cpus)}, the emulator and this "
              f"client on core {sorted(rest_cpus)}; {SUPPLIERS} suppliers posting {BATCH}-record batches back to back "
              f"for {seconds:.0f} s; a {SHARDS}-shard stream, {SHARDS * 1000:,} records/s by Kinesis' write limit)")
        batches_sent = max(1, len(latencies))
        print(f"{'updates/s':>10} {'batches/s':>10} {'p50 ms':>8} {'p99 ms':>8} {'gateway CPU':>12} {'emulator CPU':>13} "
              f"{'records failed':>15}  statuses")
        print(f"{accepted / wall:>10,.0f} {len(latencies) / wall:>10,.1f} {percentile(latencies, 50) * 1e3:>8.1f} "
              f"{percentile(latencies, 99) * 1e3:>8.1f} {gateway_cpu / batches_sent * 1e3:>6.1f} ms/b "
              f"{emulator_cpu / batches_sent * 1e3:>7.1f} ms/b {failed:>15,}  {dict(sorted(statuses.items()))}")
        print(f"  ({len(latencies)} batches in the window: the p99 of so few is close to their maximum; CPU per batch "
              f"of {BATCH} records, over the window)")
    finally:
        if gateway is not None:
            terminate(gateway)
        emulator.close()


def main() -> int:
    """The gateway's part of `make bench-catalog` alone (no PostgreSQL or Redis): `python -m bench.gateway_load`,
    on the same cores and for the same BENCH_GATEWAY_SECONDS."""
    from bench.bench_catalog import GATEWAY_SECONDS, layout  # here: bench_catalog imports this module

    where = layout()
    os.sched_setaffinity(0, where.rest)
    with tempfile.TemporaryDirectory(prefix="bench-gateway-") as directory:
        run(where.api, where.rest, make_tls(Path(directory) / "tls"), GATEWAY_SECONDS)
    return 0


if __name__ == "__main__":
    sys.exit(main())
