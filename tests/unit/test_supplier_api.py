"""The retail stack's supplier API, over the synthesized JSON (suppliers named as SUPPLIERS names them)."""
from __future__ import annotations

import base64
import json
import os
import re
from collections.abc import Iterator
from pathlib import Path

import pytest
from jsonschema import Draft4Validator

from main import build_app
from policy.stack_json import StackJson
from processor.samples import product, stock
from tests.helpers import by_path, only, paging_alarm_purposes, policy_statements, ref

SUPPLIERS = "acme:standard,globex:bulk:3|4,initech:trial"


def _synth(outdir: Path, suffix: str) -> StackJson:
    previous = os.environ.get("SUPPLIERS")
    os.environ["SUPPLIERS"] = SUPPLIERS
    try:
        prod = suffix == "prod"
        build_app(outdir=str(outdir), suffix=suffix, alert_subscriptions="email:a@example.com" if prod else "",
                  incident_subscriptions="email:b@example.com" if prod else "",
                  state_bucket="state-bucket" if prod else "").synth()
    finally:
        if previous is None:
            os.environ.pop("SUPPLIERS")
        else:
            os.environ["SUPPLIERS"] = previous
    return StackJson.load(outdir / "stacks" / f"retail-{suffix}" / "cdk.tf.json")


@pytest.fixture(scope="module")
def retail(tmp_path_factory: pytest.TempPathFactory) -> Iterator[StackJson]:
    yield _synth(tmp_path_factory.mktemp("suppliers-dev"), "dev")


@pytest.fixture(scope="module")
def retail_prod(tmp_path_factory: pytest.TempPathFactory) -> Iterator[StackJson]:
    yield _synth(tmp_path_factory.mktemp("suppliers-prod"), "prod")


@pytest.fixture(scope="module")
def model(retail: StackJson) -> Draft4Validator:
    return Draft4Validator(json.loads(only(retail, "aws_api_gateway_model").config["schema"]))


def body(**arrays: list[dict]) -> dict:
    return arrays


def sent(record: dict) -> dict:
    """A contract record as a supplier sends it: the API sets `type` and `supplier_id`."""
    return {k: v for k, v in record.items() if k not in ("type", "supplier_id")}


def test_the_api_is_regional_and_its_one_route_is_post_v1_updates_with_an_api_key(retail: StackJson) -> None:
    api = only(retail, "aws_api_gateway_rest_api").config
    assert api["endpoint_configuration"]["types"] == ["REGIONAL"] and api["name"] == "retail-supplier-api-dev"
    paths = sorted(r.config["path_part"] for r in retail.resources("aws_api_gateway_resource"))
    assert paths == ["updates", "v1"]
    method = only(retail, "aws_api_gateway_method").config
    assert method["http_method"] == "POST" and method["api_key_required"] is True
    assert method["request_validator_id"] == ref(only(retail, "aws_api_gateway_request_validator"), "id")
    assert only(retail, "aws_api_gateway_request_validator").config["validate_request_body"] is True


def test_the_model_accepts_a_batch_of_contract_records_without_type_or_supplier(model: Draft4Validator) -> None:
    assert model.is_valid(body(inventory_updates=[sent(stock())], product_upserts=[sent(product())]))
    assert model.is_valid(body(inventory_updates=[sent(stock())] * 500))


@pytest.mark.parametrize(("batch", "field"), [
    (body(inventory_updates=[{**sent(stock()), "supplier_id": "globex"}]), "supplier_id"),
    (body(product_upserts=[{**sent(product()), "type": "product_upsert"}]), "type"),
    (body(inventory_updates=[{**sent(stock()), "colour": "red"}]), "colour"),
    (body(inventory_updates=[{**sent(stock()), "quantity": "5"}]), "quantity"),
    (body(inventory_updates=[{**sent(stock()), "sku": "SKU 1"}]), "sku"),
    (body(inventory_updates=[sent(stock())] * 501), "inventory_updates"),
    (body(inventory_updates=[]), "inventory_updates"),
    ({}, "minProperties"),
    (body(orders=[sent(stock())]), "orders"),
])
def test_the_model_refuses_what_the_edge_must_refuse_naming_the_field(model: Draft4Validator, batch: dict,
                                                                      field: str) -> None:
    errors = list(model.iter_errors(batch))
    assert errors
    assert any(field in "/".join(map(str, e.absolute_path)) or field in e.message or field == e.validator
               for e in errors)


def test_the_integration_puts_records_on_the_stream_as_a_role_allowed_nothing_else(retail: StackJson) -> None:
    integration = only(retail, "aws_api_gateway_integration").config
    assert integration["type"] == "AWS" and integration["passthrough_behavior"] == "NEVER"
    assert integration["uri"].endswith(":kinesis:action/PutRecords")
    role = by_path(retail, "aws_iam_role", "supplier-api/role")
    assert integration["credentials"] == ref(role, "arn")
    assert json.loads(role.config["assume_role_policy"])["Statement"][0]["Principal"] == {
        "Service": "apigateway.amazonaws.com"}
    statements = policy_statements(by_path(retail, "aws_iam_role_policy", "supplier-api/role-policy"))
    stream, key = only(retail, "aws_kinesis_stream"), only(retail, "aws_kms_key")
    assert [(s["Action"], s["Resource"]) for s in statements] == [
        (["kinesis:PutRecords"], [ref(stream, "arn")]), (["kms:GenerateDataKey"], [ref(key, "arn")])]
    assert statements[1]["Condition"] == {"StringEquals": {"kms:ViaService": "kinesis.us-east-1.amazonaws.com"}}


def test_the_mapping_template_stamps_the_supplier_of_the_calling_key_and_partitions_by_sku(retail: StackJson) -> None:
    template = only(retail, "aws_api_gateway_integration").config["request_templates"]["application/json"]
    keys = {r.config["name"]: ref(r, "id") for r in retail.resources("aws_api_gateway_api_key")}
    suppliers = json.loads(re.search(r"#set\(\$suppliers = (\{.*\})\)", template).group(1))
    assert suppliers == {keys["retail-supplier-acme-1-dev"]: "acme", keys["retail-supplier-globex-3-dev"]: "globex",
                         keys["retail-supplier-globex-4-dev"]: "globex", keys["retail-supplier-initech-1-dev"]: "initech"}
    assert "$suppliers.get($context.identity.apiKeyId)" in template
    assert template.count('"PartitionKey": "$record.sku"') == 2
    assert "${" not in template.replace("${aws_", "")  # nothing else Terraform would interpolate


def test_the_synthesized_template_renders_each_record_stamped_as_valid_json_with_velocity(retail: StackJson) -> None:
    from localdev.gateway.velocity import render

    template = only(retail, "aws_api_gateway_integration").config["request_templates"]["application/json"]
    keys = {r.config["name"]: ref(r, "id") for r in retail.resources("aws_api_gateway_api_key")}
    for number, reference in enumerate(keys.values()):  # what Terraform puts in: each key's id
        template = template.replace(reference, f"key{number}")
    batch = body(inventory_updates=[sent(stock()), sent(stock())], product_upserts=[sent(product())])
    caller = f"key{list(keys).index('retail-supplier-globex-4-dev')}"
    put = json.loads(render(template, body=json.dumps(batch), context={"identity": {"apiKeyId": caller}}))
    records = [json.loads(base64.b64decode(r["Data"])) for r in put["Records"]]
    expected = [{"type": "inventory_update", "supplier_id": "globex", **r} for r in batch["inventory_updates"]] + [
        {"type": "product_upsert", "supplier_id": "globex", **r} for r in batch["product_upserts"]]
    assert records == expected
    assert [r["PartitionKey"] for r in put["Records"]] == [r["sku"] for r in expected]


def test_each_suppliers_keys_belong_to_its_tiers_usage_plan_two_while_a_key_rotates(retail: StackJson) -> None:
    plans = {r.config["name"]: r for r in retail.resources("aws_api_gateway_usage_plan")}
    standard = plans["retail-suppliers-standard-dev"].config
    assert standard["throttle_settings"] == {"rate_limit": 5, "burst_limit": 10}
    assert standard["quota_settings"] == {"limit": 50_000, "period": "DAY"}
    keys = {ref(r, "id"): r.config["name"] for r in retail.resources("aws_api_gateway_api_key")}
    members = {keys[k.config["key_id"]]: next(n for n, p in plans.items() if ref(p, "id") == k.config["usage_plan_id"])
               for k in retail.resources("aws_api_gateway_usage_plan_key")}
    assert members == {"retail-supplier-acme-1-dev": "retail-suppliers-standard-dev",
                       "retail-supplier-globex-3-dev": "retail-suppliers-bulk-dev",
                       "retail-supplier-globex-4-dev": "retail-suppliers-bulk-dev",
                       "retail-supplier-initech-1-dev": "retail-suppliers-trial-dev"}


def test_kinesis_refusals_and_failures_are_mapped_not_passed_on_as_200(retail: StackJson) -> None:
    responses = {r.config["status_code"]: r.config for r in retail.resources("aws_api_gateway_integration_response")}
    assert responses["503"]["selection_pattern"] == r"4\d{2}" and responses["502"]["selection_pattern"] == r"5\d{2}"
    assert "selection_pattern" not in responses["200"]
    refused = responses["503"]["response_templates"]["application/json"]
    assert "ValidationException" in refused and "$context.responseOverride.status = 400" in refused
    assert "failed" in responses["200"]["response_templates"]["application/json"]


def test_the_answer_lists_each_refused_record_as_json_whatever_kinesis_message_holds(retail: StackJson) -> None:
    from localdev.gateway.velocity import render

    (accepted,) = [r.config["response_templates"]["application/json"]
                   for r in retail.resources("aws_api_gateway_integration_response") if r.config["status_code"] == "200"]
    message = "Rate exceeded for shard 'shardId-000000000000' in stream \"s\" \\ try again"
    put_records = {"FailedRecordCount": 1, "Records": [
        {"SequenceNumber": "1", "ShardId": "shardId-000000000000"},
        {"ErrorCode": "ProvisionedThroughputExceededException", "ErrorMessage": message}]}
    answer = json.loads(render(accepted, body=json.dumps(put_records), context={"requestId": "r-1"}))
    assert answer == {"request_id": "r-1", "accepted": 1, "failed_record_count": 1, "failed": [
        {"index": 1, "error_code": "ProvisionedThroughputExceededException", "error_message": message}]}


def test_every_gateway_refusal_answers_json_that_says_why(retail: StackJson) -> None:
    responses = {r.config["response_type"]: r.config for r in retail.resources("aws_api_gateway_gateway_response")}
    assert {t: r["status_code"] for t, r in responses.items() if t in (
        "BAD_REQUEST_BODY", "INVALID_API_KEY", "THROTTLED", "QUOTA_EXCEEDED")} == {
        "BAD_REQUEST_BODY": "400", "INVALID_API_KEY": "403", "THROTTLED": "429", "QUOTA_EXCEEDED": "429"}
    assert "$context.error.validationErrorString" in responses["BAD_REQUEST_BODY"]["response_templates"]["application/json"]


def test_access_logs_go_to_a_log_group_encrypted_with_the_stack_key(retail: StackJson) -> None:
    stage = only(retail, "aws_api_gateway_stage").config
    group = retail.by_reference(stage["access_log_settings"]["destination_arn"]).config
    assert group["kms_key_id"] == ref(only(retail, "aws_kms_key"), "arn") and group["name"].endswith("/access")
    assert json.loads(stage["access_log_settings"]["format"])["api_key_id"] == "$context.identity.apiKeyId"
    settings = only(retail, "aws_api_gateway_method_settings").config["settings"]
    assert settings["metrics_enabled"] is True and settings["data_trace_enabled"] is False


def test_a_web_acl_with_a_rate_based_rule_guards_the_stage(retail_prod: StackJson) -> None:
    acl = only(retail_prod, "aws_wafv2_web_acl").config
    (rule,) = acl["rule"]
    assert rule["statement"]["rate_based_statement"] == {"limit": 3_000, "aggregate_key_type": "IP"}
    assert rule["action"] == {"block": {}}
    association = only(retail_prod, "aws_wafv2_web_acl_association").config
    assert association["resource_arn"] == ref(only(retail_prod, "aws_api_gateway_stage"), "arn")


def test_the_api_pages_on_refusals_failures_latency_and_throttling(retail: StackJson) -> None:
    assert paging_alarm_purposes(retail, "supplier-api") == {
        "supplier-api-4xx", "supplier-api-5xx", "supplier-api-latency", "supplier-api-throttled"}
    latency = by_path(retail, "aws_cloudwatch_metric_alarm", "monitoring/supplier-api-latency").config
    assert latency["extended_statistic"] == "p99" and "statistic" not in latency
    throttled = only(retail, "aws_cloudwatch_log_metric_filter").config
    assert throttled["pattern"] == '{ $.status = "429" }'


def test_a_changed_model_or_template_redeploys_the_stage(retail: StackJson) -> None:
    deployment = only(retail, "aws_api_gateway_deployment").config
    assert re.fullmatch(r"[0-9a-f]{64}", deployment["triggers"]["mapping"])
    assert deployment["lifecycle"] == {"create_before_destroy": True}
    assert only(retail, "aws_api_gateway_stage").config["deployment_id"] == ref(
        only(retail, "aws_api_gateway_deployment"), "id")


def test_the_factory_has_no_supplier_api(factory: StackJson) -> None:
    assert list(factory.resources("aws_api_gateway_rest_api")) == []


def _depends_on(stack: StackJson, start: str) -> set[str]:
    """Every resource address `start` waits for before it is created: its references and its
    depends_on, followed to the end."""
    configs = {res.address: res.config for res in stack.resources()}
    seen: set[str] = set()
    todo = [start]
    while todo:
        config = configs[todo.pop()]
        found = set(re.findall(r"\$\{(aws_[a-z0-9_]+\.[A-Za-z0-9_-]+)", json.dumps(config)))
        found |= set(config.get("depends_on") or [])
        for address in found - seen:
            seen.add(address)
            todo.append(address)
    return seen


def test_the_first_deployment_waits_for_every_part_of_the_api_it_snapshots(retail: StackJson) -> None:
    # A deployment is a snapshot of the API when it is created; gateway responses, method and
    # integration responses, models and validators all need a redeployment to be served
    # (API Gateway developer guide, "Updates to REST APIs that require redeployment"). Created
    # after the first deployment, they would not be served until something else redeploys.
    waits_for = _depends_on(retail, only(retail, "aws_api_gateway_deployment").address)
    snapshotted = [res.address for type_ in ("aws_api_gateway_gateway_response", "aws_api_gateway_method_response",
                                             "aws_api_gateway_integration_response", "aws_api_gateway_method",
                                             "aws_api_gateway_integration", "aws_api_gateway_model",
                                             "aws_api_gateway_request_validator")
                   for res in retail.resources(type_)]
    assert len(snapshotted) > 10
    assert sorted(set(snapshotted) - waits_for) == []


def test_a_changed_integration_response_pattern_or_request_parameter_redeploys_the_stage(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch, retail: StackJson) -> None:
    from pipeline_lib import supplier_api

    before = only(retail, "aws_api_gateway_deployment").config["triggers"]["mapping"]
    changed = tuple((status, r"4\d{2}|429" if pattern == r"4\d{2}" else pattern, template)
                    for status, pattern, template in supplier_api.INTEGRATION_RESPONSES)
    monkeypatch.setattr(supplier_api, "INTEGRATION_RESPONSES", changed)
    after = only(_synth(tmp_path, "dev"), "aws_api_gateway_deployment").config["triggers"]["mapping"]
    assert after != before
