"""The supplier ingestion API: `POST /v1/updates` with an API key, straight into the stream.

A regional REST API whose one method is an AWS service integration to Kinesis PutRecords: no code
of ours runs between a supplier and the stream. The request validator checks the body against
the wire contract's model (400 naming the field); each supplier's key (two while one rotates)
belongs to its tier's usage plan (429 over it); the mapping template stamps every record with the
supplier of the key that called (a body naming a supplier is refused by the model). Kinesis'
refusals are mapped (an AWS integration would pass a Kinesis 400 on as 200), and a partial
failure lists the refused records' indexes. Access logs go to an encrypted log group; a
production stage sits behind a WAF web ACL with a rate-based rule (usage plans are best effort).

The account's API Gateway CloudWatch role (`aws apigateway update-account`, a per-region
singleton) must be set before the first deploy, as the Redis AUTH secret must exist: a stack
that managed it would take it away from every other stack of the region on destroy.
"""
from __future__ import annotations

import hashlib
import json

from cdktf import Fn, TerraformResourceLifecycle
from cdktf_cdktf_provider_aws.api_gateway_api_key import ApiGatewayApiKey
from cdktf_cdktf_provider_aws.api_gateway_deployment import ApiGatewayDeployment
from cdktf_cdktf_provider_aws.api_gateway_gateway_response import ApiGatewayGatewayResponse
from cdktf_cdktf_provider_aws.api_gateway_integration import ApiGatewayIntegration
from cdktf_cdktf_provider_aws.api_gateway_integration_response import ApiGatewayIntegrationResponse
from cdktf_cdktf_provider_aws.api_gateway_method import ApiGatewayMethod
from cdktf_cdktf_provider_aws.api_gateway_method_response import ApiGatewayMethodResponse
from cdktf_cdktf_provider_aws.api_gateway_method_settings import (
    ApiGatewayMethodSettings,
    ApiGatewayMethodSettingsSettings,
)
from cdktf_cdktf_provider_aws.api_gateway_model import ApiGatewayModel
from cdktf_cdktf_provider_aws.api_gateway_request_validator import ApiGatewayRequestValidator
from cdktf_cdktf_provider_aws.api_gateway_resource import ApiGatewayResource
from cdktf_cdktf_provider_aws.api_gateway_rest_api import (
    ApiGatewayRestApi,
    ApiGatewayRestApiEndpointConfiguration,
)
from cdktf_cdktf_provider_aws.api_gateway_stage import ApiGatewayStage, ApiGatewayStageAccessLogSettings
from cdktf_cdktf_provider_aws.api_gateway_usage_plan import (
    ApiGatewayUsagePlan,
    ApiGatewayUsagePlanApiStages,
    ApiGatewayUsagePlanQuotaSettings,
    ApiGatewayUsagePlanThrottleSettings,
)
from cdktf_cdktf_provider_aws.api_gateway_usage_plan_key import ApiGatewayUsagePlanKey
from cdktf_cdktf_provider_aws.cloudwatch_log_metric_filter import (
    CloudwatchLogMetricFilter,
    CloudwatchLogMetricFilterMetricTransformation,
)
from cdktf_cdktf_provider_aws.iam_role import IamRole
from cdktf_cdktf_provider_aws.iam_role_policy import IamRolePolicy
from cdktf_cdktf_provider_aws.wafv2_web_acl import (
    Wafv2WebAcl,
    Wafv2WebAclDefaultAction,
    Wafv2WebAclDefaultActionAllow,
    Wafv2WebAclRule,
    Wafv2WebAclRuleAction,
    Wafv2WebAclRuleActionBlock,
    Wafv2WebAclRuleVisibilityConfig,
    Wafv2WebAclVisibilityConfig,
)
from cdktf_cdktf_provider_aws.wafv2_web_acl_association import Wafv2WebAclAssociation
from cdktf_cdktf_provider_aws.wafv2_web_acl_logging_configuration import Wafv2WebAclLoggingConfiguration
from constructs import Construct

from pipeline_lib import iam
from pipeline_lib.alarms import AlarmSpec, MetricAlarmSpec, Widget
from pipeline_lib.context import StackContext
from pipeline_lib.data_stream import DataStream
from pipeline_lib.log_group import EncryptedLogGroup
from pipeline_lib.settings import AlarmConfig, SupplierApiConfig
from pipeline_lib.supplier_api_mapping import (
    GATEWAY_RESPONSES,
    INTEGRATION_REQUEST_PARAMETERS,
    INTEGRATION_RESPONSES,
    MODEL_NAME,
    WAF_RATE_RULE,
    gateway_response_template,
    put_records_uri,
    request_model,
    request_template,
)

JSON = "application/json"
# One line per request: who (the key's id, never its value), what, how it ended, how long it took.
ACCESS_LOG_FORMAT = json.dumps({
    "request_id": "$context.requestId", "api_key_id": "$context.identity.apiKeyId",
    "ip": "$context.identity.sourceIp", "method": "$context.httpMethod", "path": "$context.resourcePath",
    "status": "$context.status", "error": "$context.error.responseType",
    "integration_status": "$context.integration.status", "latency_ms": "$context.responseLatency",
    "integration_latency_ms": "$context.integration.latency", "bytes": "$context.responseLength",
    "time": "$context.requestTimeEpoch",
}, separators=(",", ":"))
THROTTLED_METRIC = "SupplierRequestsThrottled"


class SupplierApi(Construct):
    def __init__(self, scope: Construct, id_: str, *, context: StackContext, stream: DataStream,
                 settings: SupplierApiConfig, metric_namespace: str) -> None:
        super().__init__(scope, id_)
        naming, account, key = context.naming, context.account, context.key
        self.settings = settings
        self.name = naming.name("supplier-api")
        self._namespace = metric_namespace
        self.api = ApiGatewayRestApi(
            self, "api", name=self.name, description="Suppliers' inventory and product updates into the stream",
            endpoint_configuration=ApiGatewayRestApiEndpointConfiguration(types=["REGIONAL"]),
            api_key_source="HEADER", disable_execute_api_endpoint=False,
            # A replacement (a new endpoint type, say) is created beside the old one; suppliers move over.
            lifecycle=TerraformResourceLifecycle(create_before_destroy=True),
        )
        version = ApiGatewayResource(self, "v1", rest_api_id=self.api.id, parent_id=self.api.root_resource_id,
                                     path_part="v1")
        updates = ApiGatewayResource(self, "updates", rest_api_id=self.api.id, parent_id=version.id,
                                     path_part="updates")
        self.model_schema = json.dumps(request_model(settings.max_records_per_request), sort_keys=True)
        model = ApiGatewayModel(self, "model", rest_api_id=self.api.id, name=MODEL_NAME, content_type=JSON,
                                description="A supplier's batch (the wire contract, processor/contract/)",
                                schema=self.model_schema)
        validation = {"validate_request_body": True, "validate_request_parameters": True}
        validator = ApiGatewayRequestValidator(self, "validator", rest_api_id=self.api.id,
                                               name=naming.name("supplier-api-body"), **validation)
        method = ApiGatewayMethod(
            self, "post", rest_api_id=self.api.id, resource_id=updates.id, http_method="POST",
            authorization="NONE", api_key_required=True, request_validator_id=validator.id,
            request_models={JSON: model.name},
        )

        # The integration's role: PutRecords on this stream and the data key it needs, nothing more.
        self.role = IamRole(self, "role", name=naming.name("supplier-api"),
                            assume_role_policy=iam.assume_role_policy("apigateway.amazonaws.com", account_id=account.account_id))
        IamRolePolicy(self, "role-policy", name=naming.name("supplier-api-put-records"), role=self.role.id,
                      policy=iam.document(*stream.write_statements()))

        self.keys: dict[tuple[str, str], ApiGatewayApiKey] = {}
        for supplier in settings.suppliers:
            for generation in supplier.keys:
                self.keys[(supplier.supplier_id, generation)] = ApiGatewayApiKey(
                    self, f"key-{supplier.supplier_id}-{generation}",
                    name=naming.name(f"supplier-{supplier.supplier_id}-{generation}"),
                    description=f"Supplier {supplier.supplier_id}, key generation {generation}", enabled=True)
        self.template = request_template(stream.name, {k.id: supplier for (supplier, _), k in self.keys.items()})
        integration = ApiGatewayIntegration(
            self, "integration", rest_api_id=self.api.id, resource_id=updates.id, http_method=method.http_method,
            type="AWS", integration_http_method="POST",
            uri=put_records_uri(account.partition, account.region),
            credentials=self.role.arn, passthrough_behavior="NEVER",
            request_parameters=INTEGRATION_REQUEST_PARAMETERS,
            request_templates={JSON: self.template},
        )
        responses = []
        for status, pattern, template in INTEGRATION_RESPONSES:
            method_response = ApiGatewayMethodResponse(
                self, f"response-{status}", rest_api_id=self.api.id, resource_id=updates.id,
                http_method=method.http_method, status_code=status, response_models={JSON: "Empty"})
            responses.append(ApiGatewayIntegrationResponse(
                self, f"integration-{status}", rest_api_id=self.api.id, resource_id=updates.id,
                http_method=method.http_method, status_code=status, selection_pattern=pattern,
                response_templates={JSON: template}, depends_on=[integration, method_response]))
        responses.append(ApiGatewayMethodResponse(
            self, "response-400", rest_api_id=self.api.id, resource_id=updates.id, http_method=method.http_method,
            status_code="400", response_models={JSON: "Error"}))
        gateway_responses = {}
        for response_type, (status, message) in GATEWAY_RESPONSES.items():
            template = gateway_response_template(message)
            gateway_responses[response_type] = template
            responses.append(ApiGatewayGatewayResponse(
                self, f"gateway-{response_type.lower().replace('_', '-')}", rest_api_id=self.api.id,
                response_type=response_type, status_code=str(status), response_templates={JSON: template}))

        # A new deployment whenever what the stage serves changes: the model, the templates, the
        # integration responses' patterns and the request parameters, hashed here (with the keys by
        # supplier and generation), and the keys' ids, known once they exist. The deployment is a
        # snapshot of the API when it is made: it waits for every part it serves (gateway responses
        # included), or the first one would serve AWS's defaults until something else redeployed.
        served = [self.model_schema, request_template("STREAM", {
                      f"{supplier}/{generation}": supplier for supplier, generation in self.keys}),
                  [list(response) for response in INTEGRATION_RESPONSES], INTEGRATION_REQUEST_PARAMETERS,
                  validation, gateway_responses, GATEWAY_RESPONSES]
        deployment = ApiGatewayDeployment(
            self, "deployment", rest_api_id=self.api.id,
            triggers={"mapping": hashlib.sha256(json.dumps(served, sort_keys=True).encode()).hexdigest(),
                      "keys": Fn.join(",", [key.id for key in self.keys.values()])},
            lifecycle=TerraformResourceLifecycle(create_before_destroy=True),
            depends_on=[method, integration, *responses],
        )
        self.access_logs = EncryptedLogGroup(self, "access-logs", name=naming.path("supplier-api/access"), key=key,
                                             retention_in_days=context.log_retention_days)
        self.stage = ApiGatewayStage(
            self, "stage", rest_api_id=self.api.id, deployment_id=deployment.id, stage_name=settings.stage_name,
            description="Suppliers' updates", xray_tracing_enabled=True,  # sampled: 1 request/s and 5 %
            access_log_settings=ApiGatewayStageAccessLogSettings(destination_arn=self.access_logs.arn,
                                                                 format=ACCESS_LOG_FORMAT),
        )
        ApiGatewayMethodSettings(
            self, "method-settings", rest_api_id=self.api.id, stage_name=self.stage.stage_name, method_path="*/*",
            settings=ApiGatewayMethodSettingsSettings(
                metrics_enabled=True, logging_level="OFF", data_trace_enabled=False,
                throttling_rate_limit=settings.stage_rate_limit_per_second,
                throttling_burst_limit=settings.stage_burst_limit),
        )
        plans = {}
        for tier in settings.tiers:
            plans[tier.name] = ApiGatewayUsagePlan(
                self, f"plan-{tier.name}", name=naming.name(f"suppliers-{tier.name}"),
                description=f"Suppliers of the {tier.name} tier",
                api_stages=[ApiGatewayUsagePlanApiStages(api_id=self.api.id, stage=self.stage.stage_name)],
                throttle_settings=ApiGatewayUsagePlanThrottleSettings(
                    rate_limit=tier.rate_limit_per_second, burst_limit=tier.burst_limit),
                quota_settings=(ApiGatewayUsagePlanQuotaSettings(limit=tier.quota_per_day, period="DAY")
                                if tier.quota_per_day else None),
            )
        for supplier in settings.suppliers:
            for generation in supplier.keys:
                ApiGatewayUsagePlanKey(
                    self, f"plan-key-{supplier.supplier_id}-{generation}", key_type="API_KEY",
                    key_id=self.keys[(supplier.supplier_id, generation)].id, usage_plan_id=plans[supplier.tier].id)
        # API Gateway publishes no count of throttled requests: the access log's 429s are counted.
        CloudwatchLogMetricFilter(
            self, "throttled", name=naming.name("supplier-api-throttled"), log_group_name=self.access_logs.name,
            pattern='{ $.status = "429" }',
            metric_transformation=CloudwatchLogMetricFilterMetricTransformation(
                name=THROTTLED_METRIC, namespace=metric_namespace, value="1", default_value="0"),
        )
        self.web_acl = (self._firewall(context, naming.name("supplier-api"), settings) if settings.waf else None)

    def _firewall(self, context: StackContext, name: str, settings: SupplierApiConfig) -> Wafv2WebAcl:
        def visibility(metric: str) -> dict[str, object]:
            return {"cloudwatch_metrics_enabled": True, "metric_name": metric, "sampled_requests_enabled": True}

        acl = Wafv2WebAcl(
            self, "web-acl", name=name, scope="REGIONAL", description="Suppliers: a hard per-IP request rate",
            default_action=Wafv2WebAclDefaultAction(allow=Wafv2WebAclDefaultActionAllow()),
            rule=[Wafv2WebAclRule(
                name=WAF_RATE_RULE, priority=1,
                action=Wafv2WebAclRuleAction(block=Wafv2WebAclRuleActionBlock()),
                statement={"rate_based_statement": {"limit": settings.waf_requests_per_5min_per_ip,
                                                    "aggregate_key_type": "IP"}},
                visibility_config=Wafv2WebAclRuleVisibilityConfig(**visibility(f"{name}-{WAF_RATE_RULE}")),
            )],
            visibility_config=Wafv2WebAclVisibilityConfig(**visibility(name)),
        )
        Wafv2WebAclAssociation(self, "web-acl-association", resource_arn=self.stage.arn, web_acl_arn=acl.arn)
        # What the web ACL blocked and why; WAF logs only to groups named aws-waf-logs-*.
        logs = EncryptedLogGroup(self, "web-acl-logs", name=f"aws-waf-logs-{name}", key=context.key,
                                 retention_in_days=context.log_retention_days)
        Wafv2WebAclLoggingConfiguration(self, "web-acl-logging", resource_arn=acl.arn,
                                        log_destination_configs=[logs.arn])
        return acl

    @property
    def url(self) -> str:
        """The stage's URL; the route is `POST {url}/v1/updates`."""
        return self.stage.invoke_url

    def alarms(self, thresholds: AlarmConfig) -> list[AlarmSpec]:
        dims = {"ApiName": self.api.name, "Stage": self.stage.stage_name}

        def api(purpose: str, description: str, metric: str, statistic: str, threshold: float) -> MetricAlarmSpec:
            return MetricAlarmSpec(purpose=purpose, description=description, namespace="AWS/ApiGateway",
                                   metric_name=metric, dimensions=dims, statistic=statistic,
                                   comparison="GreaterThanThreshold", threshold=threshold,
                                   treat_missing_data="notBreaching")

        return [
            # 4XXError and 5XXError are 1 or 0 per request: their average is the share that failed.
            api("supplier-api-4xx", f"Over {thresholds.api_4xx_percent:g} % of suppliers' requests refused",
                "4XXError", "Average", thresholds.api_4xx_percent / 100),
            api("supplier-api-5xx", f"Over {thresholds.api_5xx_percent:g} % of suppliers' requests failed",
                "5XXError", "Average", thresholds.api_5xx_percent / 100),
            api("supplier-api-latency", f"Suppliers' requests take over {thresholds.api_p99_latency_ms} ms (p99)",
                "Latency", "p99", thresholds.api_p99_latency_ms),
            MetricAlarmSpec(purpose="supplier-api-throttled", description="Suppliers are throttled (429): a supplier "
                            "outgrows its plan", namespace=self._namespace, metric_name=THROTTLED_METRIC,
                            statistic="Sum", comparison="GreaterThanThreshold",
                            threshold=thresholds.api_throttled_per_5min, evaluation_periods=1,
                            treat_missing_data="notBreaching"),
        ]

    def widgets(self) -> list[Widget]:
        dims = ["ApiName", self.api.name, "Stage", self.stage.stage_name]
        return [Widget("Supplier API: requests, 4xx, 5xx / p99 latency (ms)", [
            ["AWS/ApiGateway", "Count", *dims], ["AWS/ApiGateway", "4XXError", *dims],
            ["AWS/ApiGateway", "5XXError", *dims],
            ["AWS/ApiGateway", "Latency", *dims, {"stat": "p99", "yAxis": "right"}]])]
