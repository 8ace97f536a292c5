"""The web ACL in front of the supplier API's stage, evaluated by the local gateway (localdev/gateway/) as
WAF does before API Gateway: the rate-based rule by client IP the construct declares, made in the
emulator by localdev/gateway/supplier_api.py."""
from __future__ import annotations

import json
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, replace
from typing import Any

import boto3
import pytest
import requests

from localdev import moto_extensions
from localdev.gateway.__main__ import build
from localdev.gateway.app import Gateway, create_app
from localdev.gateway.deployed import read_stage, read_web_acl, stage_arn
from localdev.gateway.supplier_api import attach_web_acl, build_supplier_api, make_integration_role
from localdev.servers import MotoServer
from localdev.tls import make_tls
from pipeline_lib.settings import Supplier, SupplierApiConfig, UsageTier
from tests.helpers import read_stream, served_in_thread

REGION = "us-east-1"
KEYS = {"aws_access_key_id": "t", "aws_secret_access_key": "t"}
LIMIT = 100  # the smallest limit the config accepts: requests a client IP may make in five minutes
SETTINGS = SupplierApiConfig(tiers=(UsageTier("roomy", 1000.0, 2000),), suppliers=(Supplier("acme", "roomy"),),
                             stage_name="live", waf_requests_per_5min_per_ip=LIMIT)


@dataclass
class Deployed:
    emulator: MotoServer
    api_id: str
    stream: str
    key: str

    def aws(self, service: str) -> Any:
        return boto3.client(service, region_name=REGION, endpoint_url=self.emulator.url, **KEYS)


@pytest.fixture(scope="module")
def deployed() -> Iterator[Deployed]:
    moto_extensions.apply_all()
    emulator = MotoServer()
    found = Deployed(emulator, "", f"updates-{uuid.uuid4().hex[:8]}", "")
    kinesis = found.aws("kinesis")
    kinesis.create_stream(StreamName=found.stream, ShardCount=1)
    stream_arn = kinesis.describe_stream_summary(StreamName=found.stream)["StreamDescriptionSummary"]["StreamARN"]
    role = make_integration_role(found.aws("iam"), stream_arn=stream_arn)
    made = build_supplier_api(found.aws("apigateway"), stream_name=found.stream, role_arn=role.arn, settings=SETTINGS)
    attach_web_acl(found.aws("wafv2"), made, SETTINGS)
    found.api_id, found.key = made.api_id, made.key_values[("acme", Supplier("acme", "roomy").keys[0])]
    yield found
    emulator.close()


def update() -> bytes:
    return json.dumps({"inventory_updates": [{"event_id": str(uuid.uuid4()), "sku": "SKU-1", "quantity": 1,
                                              "updated_at": "2026-12-03T09:00:00Z"}]}).encode()


def test_the_gateway_reads_the_rate_based_rule_of_the_web_acl_in_front_of_the_stage(deployed: Deployed) -> None:
    acl = read_web_acl(deployed.aws("wafv2"), stage_arn(REGION, deployed.api_id, "live"))
    assert acl is not None and acl.default_action == "ALLOW" and acl.not_evaluated == ()
    assert [(r.name, r.limit, r.window_s, r.action) for r in acl.rules] == [("per-ip-rate", LIMIT, 300, "BLOCK")]


def test_a_client_over_the_rate_based_rules_limit_is_refused_403_waf_filtered_and_nothing_is_written(
        deployed: Deployed, tmp_path: Any) -> None:
    tls = make_tls(tmp_path / "tls")
    gateway = build(deployed.emulator.url, REGION, deployed.api_id, "live", str(tmp_path / "gateway.jsonl"))
    with served_in_thread(create_app(gateway), ssl_certfile=str(tls.cert), ssl_keyfile=str(tls.key)) as port, \
            requests.Session() as session:  # verify per request: the environment's CA bundle would win over the session's
        url = f"https://127.0.0.1:{port}/live/v1/updates"
        # Every request counts, whatever API Gateway would answer it: WAF sees it first.
        answers = [session.post(url, data=update(), headers={"content-type": "application/json"}, timeout=30,
                                verify=str(tls.ca)) for _ in range(LIMIT)]
        assert {a.json()["error"] for a in answers} == {"INVALID_API_KEY"}
        blocked = session.post(url, data=update(), timeout=30, verify=str(tls.ca),
                               headers={"content-type": "application/json", "x-api-key": deployed.key})
    assert blocked.status_code == 403
    assert blocked.json() == {"error": "WAF_FILTERED", "message": "refused by the web application firewall",
                              "request_id": blocked.headers["x-amzn-requestid"]}
    assert read_stream(deployed.aws("kinesis"), deployed.stream) == []
    log = [json.loads(line) for line in (tmp_path / "gateway.jsonl").read_text().splitlines()]
    assert log[-1]["error"] == "WAF_FILTERED" and log[-1]["status"] == 403


def test_the_rule_counts_each_client_ip_apart_and_lets_a_client_in_again_once_its_window_holds_the_limit(
        deployed: Deployed) -> None:
    now = [0.0]
    stage = read_stage(deployed.aws("apigateway"), deployed.api_id, "live", deployed.aws("wafv2"))
    gateway = Gateway(stage, endpoint=deployed.emulator.url, assume=lambda role: {}, clock=lambda: now[0])

    def error(ip: str) -> str:  # a request without a key: refused before any integration, by WAF or API Gateway
        status, _, body = gateway.handle("POST", "/live/v1/updates", {"content-type": "application/json"}, {},
                                         update(), ip)
        return json.loads(body)["error"]

    for _ in range(LIMIT):
        assert error("198.51.100.7") == "INVALID_API_KEY"
        now[0] += 1.0  # one a second: 100 within the five minutes
    assert error("198.51.100.7") == "WAF_FILTERED"
    assert error("203.0.113.9") == "INVALID_API_KEY"  # another client is counted on its own
    now[0] += 300.0  # the window moves past the burst
    assert error("198.51.100.7") == "INVALID_API_KEY"


def test_rules_the_gateway_does_not_evaluate_are_named_and_not_mistaken_for_the_ones_it_does(
        deployed: Deployed, caplog: pytest.LogCaptureFixture) -> None:
    wafv2 = deployed.aws("wafv2")
    visibility = {"SampledRequestsEnabled": False, "CloudWatchMetricsEnabled": False, "MetricName": "m"}
    acl = wafv2.create_web_acl(Name=f"mixed-{uuid.uuid4().hex[:6]}", Scope="REGIONAL", DefaultAction={"Block": {}},
                               VisibilityConfig=visibility, Rules=[
        {"Name": "geo", "Priority": 2, "Action": {"Allow": {}}, "VisibilityConfig": visibility,
         "Statement": {"GeoMatchStatement": {"CountryCodes": ["DE"]}}},
        {"Name": "by-header", "Priority": 1, "Action": {"Block": {}}, "VisibilityConfig": visibility,
         "Statement": {"RateBasedStatement": {"Limit": 100, "AggregateKeyType": "CUSTOM_KEYS"}}},
        {"Name": "counted", "Priority": 0, "Action": {"Count": {}}, "VisibilityConfig": visibility,
         "Statement": {"RateBasedStatement": {"Limit": 200, "AggregateKeyType": "IP", "EvaluationWindowSec": 60}}}])
    other_stage = stage_arn(REGION, deployed.api_id, "other")
    wafv2.associate_web_acl(WebACLArn=acl["Summary"]["ARN"], ResourceArn=other_stage)
    read = read_web_acl(wafv2, other_stage)
    assert read is not None and read.default_action == "BLOCK"
    assert [(r.name, r.limit, r.window_s, r.action) for r in read.rules] == [("counted", 200, 60, "COUNT")]
    assert read.not_evaluated == ("by-header", "geo")
    stage = read_stage(deployed.aws("apigateway"), deployed.api_id, "live")
    with caplog.at_level("WARNING"):
        gateway = Gateway(replace(stage, web_acl=read), endpoint=deployed.emulator.url, assume=lambda role: {})
    assert "rules not evaluated locally (only rate-based rules by IP are): by-header, geo" in caplog.text
    status, _, body = gateway.handle("POST", "/live/v1/updates", {}, {}, update(), "198.51.100.7")
    assert (status, json.loads(body)["error"]) == (403, "WAF_FILTERED")  # counted, then the default action blocks
