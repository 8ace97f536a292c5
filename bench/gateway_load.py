"""Supplier updates per second through the local API Gateway (localdev/gateway/), for `make bench-catalog`.

The emulator (moto's server with the project's extensions: the metered Kinesis, the access evaluator) runs
in a process of its own on the load's core; the gateway (`python -m localdev.gateway`, uvicorn over TLS)
in one on the API's core. The REST API is made in the emulator as the supplier API construct declares it,
from pipeline_lib/supplier_api_mapping.py (model, validator, request and response templates, gateway
responses), with one API key per supplier on a roomy usage plan, in front of a stream of `SHARDS` shards
(1,000 records/s each, metered as Kinesis does). Suppliers post batches of `BATCH` retail records
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
from datetime import UTC, datetime
from pathlib import Path

import aiohttp
import boto3

from bench.end_to_end import Emulator
from bench.load import percentile, proc_cpu_s
from localdev.servers import free_port, wait_for
from localdev.tls import TlsFiles
from pipeline_lib.supplier_api_mapping import (
    ACCEPTED_TEMPLATE,
    BATCH_FIELDS,
    GATEWAY_RESPONSES,
    KINESIS_FAILED_TEMPLATE,
    KINESIS_REFUSED_TEMPLATE,
    MODEL_NAME,
    STAMPED,
    gateway_response_template,
    request_model,
    request_template,
)
from processor.traffic import RetailTraffic

ROOT = Path(__file__).resolve().parent.parent
REGION = "us-east-1"
STAGE = "live"
SHARDS = 8
BATCH = 100
SUPPLIERS = 4  # each posting its next batch when the last is answered
JSON = "application/json"
FIELD_OF = {record_type: field for field, record_type in BATCH_FIELDS.items()}


def make_api(emulator: Emulator) -> tuple[str, list[str]]:
    """(api id, one key value per supplier): the supplier API in the emulator, in front of a SHARDS-shard stream."""
    def aws(service: str):  # noqa: ANN202
        return boto3.client(service, region_name=REGION, endpoint_url=emulator.url, aws_access_key_id="bench",
                            aws_secret_access_key="bench")

    stream = emulator.stream(SHARDS)
    stream_arn = aws("kinesis").describe_stream_summary(StreamName=stream)["StreamDescriptionSummary"]["StreamARN"]
    trust = {"Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Action": "sts:AssumeRole",
                                                     "Principal": {"Service": "apigateway.amazonaws.com"}}]}
    role = aws("iam").create_role(RoleName=f"api-{stream}", AssumeRolePolicyDocument=json.dumps(trust))["Role"]
    aws("iam").put_role_policy(RoleName=role["RoleName"], PolicyName="put-records", PolicyDocument=json.dumps(
        {"Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Action": "kinesis:PutRecords",
                                                 "Resource": stream_arn}]}))
    apigw = aws("apigateway")
    api = apigw.create_rest_api(name=f"suppliers-{stream}", endpointConfiguration={"types": ["REGIONAL"]},
                                apiKeySource="HEADER")["id"]
    root = next(r["id"] for r in apigw.get_resources(restApiId=api)["items"] if r["path"] == "/")
    v1 = apigw.create_resource(restApiId=api, parentId=root, pathPart="v1")["id"]
    updates = apigw.create_resource(restApiId=api, parentId=v1, pathPart="updates")["id"]
    apigw.create_model(restApiId=api, name=MODEL_NAME, contentType=JSON, schema=json.dumps(request_model(500)))
    validator = apigw.create_request_validator(restApiId=api, name="body", validateRequestBody=True,
                                               validateRequestParameters=True)["id"]
    apigw.put_method(restApiId=api, resourceId=updates, httpMethod="POST", authorizationType="NONE",
                     apiKeyRequired=True, requestValidatorId=validator, requestModels={JSON: MODEL_NAME})
    keys, suppliers_by_key_id = [], {}
    for n in range(SUPPLIERS):
        made = apigw.create_api_key(name=f"SUP-{n:02d}-{stream}", enabled=True)
        keys.append(made["value"])
        suppliers_by_key_id[made["id"]] = f"SUP-{n:02d}"
    apigw.put_integration(
        restApiId=api, resourceId=updates, httpMethod="POST", type="AWS", integrationHttpMethod="POST",
        uri=f"arn:aws:apigateway:{REGION}:kinesis:action/PutRecords", credentials=role["Arn"],
        passthroughBehavior="NEVER",
        requestParameters={"integration.request.header.Content-Type": "'application/x-amz-json-1.1'"},
        requestTemplates={JSON: request_template(stream, suppliers_by_key_id)})
    for status, pattern, template in (("200", None, ACCEPTED_TEMPLATE), ("503", r"4\d{2}", KINESIS_REFUSED_TEMPLATE),
                                      ("502", r"5\d{2}", KINESIS_FAILED_TEMPLATE)):
        apigw.put_method_response(restApiId=api, resourceId=updates, httpMethod="POST", statusCode=status)
        apigw.put_integration_response(restApiId=api, resourceId=updates, httpMethod="POST", statusCode=status,
                                       responseTemplates={JSON: template},
                                       **({"selectionPattern": pattern} if pattern else {}))
    for response_type, (status, message) in GATEWAY_RESPONSES.items():
        apigw.put_gateway_response(restApiId=api, responseType=response_type, statusCode=str(status),
                                   responseTemplates={JSON: gateway_response_template(message)})
    apigw.create_deployment(restApiId=api, stageName=STAGE)
    plan = apigw.create_usage_plan(name=f"roomy-{stream}", apiStages=[{"apiId": api, "stage": STAGE}],
                                   throttle={"rateLimit": 10000.0, "burstLimit": 20000})["id"]
    for key_id in suppliers_by_key_id:
        apigw.create_usage_plan_key(usagePlanId=plan, keyId=key_id, keyType="API_KEY")
    return api, keys


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
        wait_for(lambda: gateway.poll() is not None or _listening(port), 30, "the local API Gateway")
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
            gateway.terminate()
            gateway.wait(10)
        emulator.close()


def _listening(port: int) -> bool:
    import socket
    with socket.socket() as sock:
        return sock.connect_ex(("127.0.0.1", port)) == 0
