"""The supplier API made in the emulator through the API Gateway API, as pipeline_lib/supplier_api.py
declares it, for the gateway's tests and `bench/gateway_load.py`: without Terraform, in front of a
stream the caller made, calling it as a role with PutRecords on that stream. Everything the stage serves (model, validator,
templates, integration and gateway responses) comes from pipeline_lib/supplier_api_mapping.py, as the
construct's does; the tiers and suppliers from a SupplierApiConfig, as the stack's do.

The local deployment (`make demo`) does not use this: it applies the synthesized stack.
"""
from __future__ import annotations

import json
from dataclasses import dataclass

from botocore.client import BaseClient

from localdev.gateway.deployed import stage_arn
from pipeline_lib import iam
from pipeline_lib import supplier_api_mapping as mapping
from pipeline_lib.settings import SupplierApiConfig

JSON = "application/json"


@dataclass(frozen=True)
class IntegrationRole:
    name: str
    arn: str
    policy_name: str
    policy: str  # the inline policy's document


def make_integration_role(iam_client: BaseClient, *, stream_arn: str) -> IntegrationRole:
    """The role API Gateway assumes to call Kinesis: PutRecords on the stream and nothing more (the
    emulated stream has no key, so no kms:GenerateDataKey as the construct's role has)."""
    stream_name = stream_arn.rsplit("/", 1)[-1]
    role = iam_client.create_role(RoleName=f"api-{stream_name}",
                                  AssumeRolePolicyDocument=iam.assume_role_policy("apigateway.amazonaws.com"))["Role"]
    policy = iam.document(iam.statement("PutRecordsOnTheStream", ["kinesis:PutRecords"], [stream_arn]))
    iam_client.put_role_policy(RoleName=role["RoleName"], PolicyName="put-records", PolicyDocument=policy)
    return IntegrationRole(role["RoleName"], role["Arn"], "put-records", policy)


@dataclass(frozen=True)
class SupplierApi:
    api_id: str
    stage: str
    key_values: dict[tuple[str, str], str]  # (supplier id, key generation) -> the key's value
    plan_ids: dict[str, str]  # usage tier -> its usage plan's id


def build_supplier_api(apigateway: BaseClient, *, stream_name: str, role_arn: str,
                       settings: SupplierApiConfig) -> SupplierApi:
    """`POST /v1/updates` into `stream_name` as `role_arn`, deployed to `settings.stage_name`, with a key
    per supplier and key generation on its tier's usage plan. Names end with the stream's name, so
    several APIs can share one emulator."""
    api = apigateway.create_rest_api(name=f"suppliers-{stream_name}", endpointConfiguration={"types": ["REGIONAL"]},
                                     apiKeySource="HEADER")["id"]
    root = next(r["id"] for r in apigateway.get_resources(restApiId=api)["items"] if r["path"] == "/")
    v1 = apigateway.create_resource(restApiId=api, parentId=root, pathPart="v1")["id"]
    updates = apigateway.create_resource(restApiId=api, parentId=v1, pathPart="updates")["id"]
    apigateway.create_model(restApiId=api, name=mapping.MODEL_NAME, contentType=JSON,
                            schema=json.dumps(mapping.request_model(settings.max_records_per_request)))
    validator = apigateway.create_request_validator(restApiId=api, name="body", validateRequestBody=True,
                                                    validateRequestParameters=True)["id"]
    apigateway.put_method(restApiId=api, resourceId=updates, httpMethod="POST", authorizationType="NONE",
                          apiKeyRequired=True, requestValidatorId=validator, requestModels={JSON: mapping.MODEL_NAME})
    key_ids: dict[tuple[str, str], str] = {}
    key_values: dict[tuple[str, str], str] = {}
    for supplier in settings.suppliers:
        for generation in supplier.keys:
            made = apigateway.create_api_key(name=f"supplier-{supplier.supplier_id}-{generation}-{stream_name}",
                                             enabled=True)
            key_ids[(supplier.supplier_id, generation)] = made["id"]
            key_values[(supplier.supplier_id, generation)] = made["value"]
    apigateway.put_integration(
        restApiId=api, resourceId=updates, httpMethod="POST", type="AWS", integrationHttpMethod="POST",
        uri=mapping.put_records_uri("aws", apigateway.meta.region_name), credentials=role_arn, passthroughBehavior="NEVER",
        requestParameters=mapping.INTEGRATION_REQUEST_PARAMETERS,
        requestTemplates={JSON: mapping.request_template(stream_name, {
            key_id: supplier for (supplier, _), key_id in key_ids.items()})})
    for status, pattern, template in mapping.INTEGRATION_RESPONSES:
        apigateway.put_method_response(restApiId=api, resourceId=updates, httpMethod="POST", statusCode=status)
        apigateway.put_integration_response(restApiId=api, resourceId=updates, httpMethod="POST", statusCode=status,
                                            responseTemplates={JSON: template},
                                            **({"selectionPattern": pattern} if pattern else {}))
    for response_type, (status, message) in mapping.GATEWAY_RESPONSES.items():
        apigateway.put_gateway_response(restApiId=api, responseType=response_type, statusCode=str(status),
                                        responseTemplates={JSON: mapping.gateway_response_template(message)})
    stage = settings.stage_name
    apigateway.create_deployment(restApiId=api, stageName=stage)
    apigateway.update_stage(restApiId=api, stageName=stage, patchOperations=[
        {"op": "replace", "path": "/*/*/throttling/rateLimit", "value": str(settings.stage_rate_limit_per_second)},
        {"op": "replace", "path": "/*/*/throttling/burstLimit", "value": str(settings.stage_burst_limit)}])
    plan_ids = {}
    for tier in settings.tiers:
        quota = {"quota": {"limit": tier.quota_per_day, "period": "DAY"}} if tier.quota_per_day else {}
        plan_ids[tier.name] = apigateway.create_usage_plan(
            name=f"{tier.name}-{stream_name}", apiStages=[{"apiId": api, "stage": stage}],
            throttle={"rateLimit": tier.rate_limit_per_second, "burstLimit": tier.burst_limit}, **quota)["id"]
    for supplier in settings.suppliers:
        for generation in supplier.keys:
            apigateway.create_usage_plan_key(usagePlanId=plan_ids[supplier.tier],
                                             keyId=key_ids[(supplier.supplier_id, generation)], keyType="API_KEY")
    return SupplierApi(api, stage, key_values, plan_ids)


def attach_web_acl(wafv2: BaseClient, api: SupplierApi, settings: SupplierApiConfig) -> str:
    """The web ACL the construct puts in front of the stage (pipeline_lib/supplier_api.py: `_firewall`):
    allow by default, block a client IP over `settings.waf_requests_per_5min_per_ip` requests in five
    minutes. Returns its ARN."""
    visibility = {"SampledRequestsEnabled": True, "CloudWatchMetricsEnabled": True, "MetricName": f"suppliers-{api.api_id}"}
    acl = wafv2.create_web_acl(
        Name=f"suppliers-{api.api_id}", Scope="REGIONAL", DefaultAction={"Allow": {}}, VisibilityConfig=visibility,
        Rules=[{"Name": mapping.WAF_RATE_RULE, "Priority": 1, "Action": {"Block": {}}, "VisibilityConfig": visibility,
                "Statement": {"RateBasedStatement": {"Limit": settings.waf_requests_per_5min_per_ip,
                                                     "AggregateKeyType": "IP"}}}])["Summary"]
    wafv2.associate_web_acl(WebACLArn=acl["ARN"],
                            ResourceArn=stage_arn(wafv2.meta.region_name, api.api_id, api.stage))
    return acl["ARN"]
