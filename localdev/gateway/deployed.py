"""A deployed REST API stage, read back from the emulator through the API Gateway API: what the local
gateway serves. Nothing here knows the supplier API; every behaviour comes from what was deployed.
"""
from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from typing import Any

from botocore.client import BaseClient

INTEGRATION_URI = re.compile(r"^arn:aws[\w-]*:apigateway:(?P<region>[\w-]+):(?P<service>[\w-]+):action/(?P<action>\w+)$")


@dataclass(frozen=True)
class IntegrationResponse:
    status: str
    selection_pattern: str | None  # None: the default response
    templates: dict[str, str]


@dataclass(frozen=True)
class Integration:
    type: str  # AWS, HTTP, MOCK, ...
    uri: str
    credentials: str | None  # the role API Gateway assumes for an AWS integration
    passthrough_behavior: str
    request_templates: dict[str, str]
    responses: tuple[IntegrationResponse, ...]

    def aws_action(self) -> tuple[str, str, str]:
        """(region, service, action) of an AWS service integration by action (`...:kinesis:action/PutRecords`)."""
        match = INTEGRATION_URI.match(self.uri)
        if self.type != "AWS" or match is None:
            raise ValueError(f"not an AWS service action integration: {self.type} {self.uri}")
        return match["region"], match["service"], match["action"]


@dataclass(frozen=True)
class Validator:
    body: bool
    parameters: bool


@dataclass(frozen=True)
class Method:
    http_method: str
    api_key_required: bool
    validator: Validator | None
    request_models: dict[str, str]  # content type -> model name
    integration: Integration | None


@dataclass(frozen=True)
class Resource:
    path: str  # /v1/products/{sku}
    methods: dict[str, Method]

    def match(self, path: str) -> dict[str, str] | None:
        """The path parameters if `path` is this resource's, else None."""
        pattern = "^" + re.sub(r"\\\{(\w+)\\\+?\\\}", r"(?P<\1>[^/]+)", re.escape(self.path.rstrip("/") or "/")) + "/?$"
        found = re.match(pattern, path.rstrip("/") or "/")
        return found.groupdict() if found else None


@dataclass(frozen=True)
class UsagePlan:
    id: str
    name: str
    rate_limit: float | None  # requests a second per key; None: no throttle of its own
    burst_limit: int | None
    quota_limit: int | None
    quota_period: str | None  # DAY, WEEK, MONTH


@dataclass(frozen=True)
class ApiKey:
    id: str
    name: str
    value: str
    enabled: bool
    plans: tuple[UsagePlan, ...]  # the plans that cover this key on this stage


@dataclass(frozen=True)
class GatewayResponse:
    status: str
    templates: dict[str, str]


@dataclass(frozen=True)
class RateRule:
    """A web ACL's rate-based rule, aggregated by the client's IP."""

    name: str
    priority: int
    limit: int  # requests over the window
    window_s: int  # the evaluation window (WAF's default: 300 s)
    action: str  # BLOCK or COUNT


@dataclass(frozen=True)
class WebAcl:
    """The web ACL associated with a stage, as far as the local gateway evaluates it."""

    name: str
    default_action: str  # ALLOW or BLOCK
    rules: tuple[RateRule, ...]  # by priority
    not_evaluated: tuple[str, ...] = ()  # the rules of kinds the gateway does not evaluate (named at its start)


def stage_arn(region: str, api_id: str, stage: str, partition: str = "aws") -> str:
    """The stage's ARN, as a web ACL association names it."""
    return f"arn:{partition}:apigateway:{region}::/restapis/{api_id}/stages/{stage}"


def read_web_acl(wafv2: BaseClient, resource_arn: str) -> WebAcl | None:
    """The web ACL associated with `resource_arn` (a stage), or None."""
    found = wafv2.get_web_acl_for_resource(ResourceArn=resource_arn).get("WebACL")
    if not found:
        return None
    rules, not_evaluated = [], []
    for rule in sorted(found.get("Rules") or [], key=lambda r: r.get("Priority", 0)):
        rate = (rule.get("Statement") or {}).get("RateBasedStatement")
        action = next(iter(rule.get("Action") or {}), "").upper()
        if (rate and rate.get("AggregateKeyType", "IP") == "IP" and "ScopeDownStatement" not in rate
                and action in ("BLOCK", "COUNT")):
            rules.append(RateRule(rule["Name"], int(rule.get("Priority", 0)), int(rate["Limit"]),
                                  int(rate.get("EvaluationWindowSec") or 300), action))
        else:
            not_evaluated.append(rule.get("Name", "?"))
    default = next(iter(found.get("DefaultAction") or {"Allow": {}}), "Allow").upper()
    return WebAcl(found.get("Name", ""), default, tuple(rules), tuple(not_evaluated))


@dataclass
class DeployedStage:
    api_id: str
    api_name: str
    region: str
    stage: str
    api_key_source: str
    resources: list[Resource]
    models: dict[str, dict[str, Any]]  # name -> JSON Schema
    keys_by_value: dict[str, ApiKey]
    gateway_responses: dict[str, GatewayResponse]  # response type -> response
    stage_rate_limit: float | None = None  # the stage's method settings for */*
    stage_burst_limit: int | None = None
    variables: dict[str, str] = field(default_factory=dict)
    web_acl: WebAcl | None = None  # the WAF web ACL in front of the stage

    def route(self, path: str) -> tuple[Resource, dict[str, str]] | None:
        """The resource `path` (below the stage) names, literal paths before parameterised ones."""
        for resource in sorted(self.resources, key=lambda r: r.path.count("{")):
            params = resource.match(path)
            if params is not None:
                return resource, params
        return None


def read_stage(apigateway: BaseClient, api_id: str, stage: str, wafv2: BaseClient | None = None) -> DeployedStage:
    """Everything the stage serves, from the emulator: routes, methods, integrations and their
    responses, models, validators, API keys in the stage's usage plans, gateway responses; with `wafv2`,
    the web ACL in front of it."""
    api = apigateway.get_rest_api(restApiId=api_id)
    region = apigateway.meta.region_name
    validators = {v["id"]: Validator(bool(v.get("validateRequestBody")), bool(v.get("validateRequestParameters")))
                  for v in apigateway.get_request_validators(restApiId=api_id).get("items", [])}
    models = {m["name"]: json.loads(m["schema"]) for m in apigateway.get_models(restApiId=api_id).get("items", [])
              if m.get("schema")}
    resources = []
    for item in apigateway.get_resources(restApiId=api_id, limit=500).get("items", []):
        methods = {}
        for http_method in item.get("resourceMethods", {}) or {}:
            method = apigateway.get_method(restApiId=api_id, resourceId=item["id"], httpMethod=http_method)
            methods[http_method] = Method(
                http_method=http_method, api_key_required=bool(method.get("apiKeyRequired")),
                validator=validators.get(method.get("requestValidatorId", "")),
                request_models=dict(method.get("requestModels") or {}),
                integration=_integration(method.get("methodIntegration")))
        resources.append(Resource(item["path"], methods))
    stage_info = apigateway.get_stage(restApiId=api_id, stageName=stage)
    everything = (stage_info.get("methodSettings") or {}).get("*/*", {})
    plans = [plan for plan in apigateway.get_usage_plans().get("items", [])
             if any(s.get("apiId") == api_id and s.get("stage") == stage for s in plan.get("apiStages", []))]
    plans_by_key: dict[str, list[UsagePlan]] = {}
    for plan in plans:
        throttle, quota = plan.get("throttle") or {}, plan.get("quota") or {}
        usage_plan = UsagePlan(plan["id"], plan.get("name", ""), throttle.get("rateLimit"), throttle.get("burstLimit"),
                               quota.get("limit"), quota.get("period"))
        for key in apigateway.get_usage_plan_keys(usagePlanId=plan["id"]).get("items", []):
            plans_by_key.setdefault(key["id"], []).append(usage_plan)
    keys = {key["value"]: ApiKey(key["id"], key.get("name", ""), key["value"], bool(key.get("enabled")),
                                 tuple(plans_by_key.get(key["id"], ())))
            for key in apigateway.get_api_keys(includeValues=True, limit=500).get("items", [])}
    responses = {r["responseType"]: GatewayResponse(str(r.get("statusCode", "")), dict(r.get("responseTemplates") or {}))
                 for r in apigateway.get_gateway_responses(restApiId=api_id).get("items", [])}
    return DeployedStage(
        api_id=api_id, api_name=api.get("name", ""), region=region, stage=stage,
        api_key_source=api.get("apiKeySource", "HEADER"), resources=resources, models=models,
        keys_by_value=keys, gateway_responses=responses,
        stage_rate_limit=everything.get("throttlingRateLimit"), stage_burst_limit=everything.get("throttlingBurstLimit"),
        variables=dict(stage_info.get("variables") or {}),
        web_acl=read_web_acl(wafv2, stage_arn(region, api_id, stage)) if wafv2 is not None else None)


def _integration(found: dict[str, Any] | None) -> Integration | None:
    if not found:
        return None
    responses = tuple(
        IntegrationResponse(str(status), answer.get("selectionPattern") or None, dict(answer.get("responseTemplates") or {}))
        for status, answer in (found.get("integrationResponses") or {}).items())
    return Integration(type=found.get("type", ""), uri=found.get("uri", ""), credentials=found.get("credentials"),
                       passthrough_behavior=found.get("passthroughBehavior", "WHEN_NO_MATCH"),
                       request_templates=dict(found.get("requestTemplates") or {}), responses=responses)
