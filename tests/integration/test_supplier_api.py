"""The deployed supplier API, called at `retail_supplier_api_url` from cfn-outputs/flat-outputs.json as a
supplier calls it (locally: the local API Gateway serving the deployed stage, localdev/gateway/)."""
from __future__ import annotations

import json
import re
import time
import uuid
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

import boto3
import pytest
import requests

from localdev.outputs import key
from tests.helpers import read_stream


@pytest.fixture(scope="module")
def api(outputs: dict, local: dict | None) -> dict[str, Any]:
    if key("retail", "supplier_api_url") not in outputs:
        pytest.skip("no supplier API in this deployment (retail_supplier_api_url)")
    region = outputs[key("retail", "stack_region")]
    extra = ({"endpoint_url": local["aws"]["AWS_ENDPOINT_URL"], "aws_access_key_id": local["aws"]["AWS_ACCESS_KEY_ID"],
              "aws_secret_access_key": local["aws"]["AWS_SECRET_ACCESS_KEY"]} if local else {})

    def aws(service: str) -> Any:
        return boto3.client(service, region_name=region, **extra)

    apigateway = aws("apigateway")
    api_id = outputs[key("retail", "supplier_api_id")]
    # the key of the roomiest plan on this API, so the test is not throttled
    plans = [p for p in apigateway.get_usage_plans()["items"] if any(s["apiId"] == api_id for s in p.get("apiStages", []))]
    plan = max(plans, key=lambda p: p.get("throttle", {}).get("rateLimit", 0))
    key_id = apigateway.get_usage_plan_keys(usagePlanId=plan["id"])["items"][0]["id"]
    found = apigateway.get_api_key(apiKey=key_id, includeValue=True)
    supplier = re.match(r"Supplier (\S+),", found["description"]).group(1)
    return {"url": outputs[key("retail", "supplier_api_url")].rstrip("/") + "/v1/updates", "key": found["value"],
            "supplier": supplier, "verify": local["workloads"]["retail"]["ca_file"] if local else True,
            "aws": aws, "stream": outputs[key("retail", "stream_name")]}


def post(api: dict[str, Any], body: object, with_key: bool = True) -> requests.Response:
    headers = {"content-type": "application/json", **({"x-api-key": api["key"]} if with_key else {})}
    for _ in range(10):  # a 429 is the plan's answer to other callers' traffic: wait, as a supplier would
        answer = requests.post(api["url"], data=json.dumps(body), headers=headers, verify=api["verify"], timeout=30)
        if answer.status_code != 429:
            return answer
        time.sleep(1)
    return answer


def update() -> dict:
    return {"event_id": str(uuid.uuid4()), "sku": f"IT-{uuid.uuid4().hex[:10]}", "quantity": 7,
            "updated_at": datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")}


def read_from(aws: Callable[[str], Any], stream: str, since: datetime, event_id: str) -> tuple[str, dict] | None:
    """The partition key and document of the record with this event id, if the stream holds it."""
    for record in read_stream(aws("kinesis"), stream, since=since):
        document = json.loads(record["Data"])
        if document.get("event_id") == event_id:
            return record["PartitionKey"], document
    return None


def test_a_request_without_an_api_key_is_refused_with_403(api: dict[str, Any]) -> None:
    answer = post(api, {"inventory_updates": [update()]}, with_key=False)
    assert answer.status_code == 403


def test_a_batch_sent_with_a_suppliers_key_lands_in_the_stream_stamped_with_that_supplier(api: dict[str, Any]) -> None:
    since = datetime.now(UTC)
    record = update()
    answer = post(api, {"inventory_updates": [record]})
    assert answer.status_code == 200, answer.text
    assert (answer.json()["accepted"], answer.json()["failed"]) == (1, [])
    deadline = time.monotonic() + 30
    found = None
    while found is None and time.monotonic() < deadline:
        found = read_from(api["aws"], api["stream"], since, record["event_id"])
        if found is None:
            time.sleep(0.5)
    assert found is not None, "the accepted record is not in the stream"
    partition_key, document = found
    assert partition_key == record["sku"]
    assert document == {"type": "inventory_update", "supplier_id": api["supplier"], **record}


def test_a_record_claiming_a_supplier_is_refused_with_400_naming_supplier_id(api: dict[str, Any]) -> None:
    answer = post(api, {"inventory_updates": [{**update(), "supplier_id": "someone-else"}]})
    assert answer.status_code == 400
    assert "supplier_id" in answer.json()["message"]
