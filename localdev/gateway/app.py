"""The deployed REST API stage served over HTTPS (Starlette), as API Gateway serves it: the web ACL's
rate-based rules in front of it (403), the route, the API key and its usage plans (429), the request
validator with the method's model (400), the integration request template rendered with Velocity, the
AWS service call made as the integration's role (through the emulator, so the access evaluator decides
it), the integration response selected by the service's status and rendered, and the gateway responses
for everything refused on the way.

What is served is read from the emulator (deployed.py) when the app starts: nothing here names the
supplier API. What it does not do is listed in docs/supplier-api.md ("The local gateway").
"""
from __future__ import annotations

import json
import logging
import math
import re
import sys
import time
import urllib.error
import urllib.request
import uuid
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import jsonschema
from botocore.auth import SigV4Auth
from botocore.awsrequest import AWSRequest
from botocore.credentials import Credentials
from botocore.exceptions import ClientError
from botocore.loaders import Loader
from starlette.applications import Starlette
from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from localdev.gateway.content_coding import DecodedTooLarge, UnsupportedCoding, decoded
from localdev.gateway.deployed import ApiKey, DeployedStage, Integration, Method
from localdev.gateway.limits import Quota, RateWindow, TokenBucket
from localdev.gateway.velocity import TemplateFailed, render
from processor.contract import LONGEST_SHOWN, shown

logger = logging.getLogger(__name__)

MAX_PAYLOAD_BYTES = 10 * 1024 * 1024  # API Gateway's REST payload limit
JSON = "application/json"
# A gateway response's status and message when the API sets none (API Gateway's defaults).
DEFAULT_RESPONSES: dict[str, tuple[int, str]] = {
    "MISSING_AUTHENTICATION_TOKEN": (403, "Missing Authentication Token"),
    "INVALID_API_KEY": (403, "Forbidden"),
    "THROTTLED": (429, "Too Many Requests"),
    "QUOTA_EXCEEDED": (429, "Limit Exceeded"),
    "BAD_REQUEST_BODY": (400, "Invalid request body"),
    "UNSUPPORTED_MEDIA_TYPE": (415, "Unsupported Media Type"),
    "REQUEST_TOO_LARGE": (413, "Request Too Long"),
    "INTEGRATION_FAILURE": (504, "Internal server error"),
    "WAF_FILTERED": (403, "Forbidden"),
    "API_CONFIGURATION_ERROR": (500, "Internal server error"),
}


@dataclass
class Refusal(Exception):
    """A request API Gateway answers itself, with the gateway response of `response_type`."""

    response_type: str
    message: str = ""
    validation: str = ""


class RoleSessions:
    """Sessions of the integrations' roles, as API Gateway assumes a role for an AWS integration."""

    def __init__(self, assume: Callable[[str], dict[str, str]]) -> None:
        self._assume = assume
        self._sessions: dict[str, tuple[float, Credentials]] = {}

    def of(self, role_arn: str) -> Credentials:
        found = self._sessions.get(role_arn)
        if found is None or found[0] < time.monotonic():
            try:
                keys = self._assume(role_arn)
            except ClientError as error:
                if error.response.get("Error", {}).get("Code") != "AccessDenied":
                    raise
                # What the stage's execution log says; the caller gets API Gateway's plain 500.
                logger.error("Execution failed due to configuration error: API Gateway does not have permission "
                             "to assume the provided role %s (%s)", role_arn, error.response["Error"].get("Message"))
                raise Refusal("API_CONFIGURATION_ERROR") from error
            found = (time.monotonic() + 1800, Credentials(keys["AWS_ACCESS_KEY_ID"], keys["AWS_SECRET_ACCESS_KEY"],
                                                          keys.get("AWS_SESSION_TOKEN")))
            self._sessions[role_arn] = found
        return found[1]


class Gateway:
    def __init__(self, stage: DeployedStage, *, endpoint: str, assume: Callable[[str], dict[str, str]],
                 access_log: Callable[[dict[str, Any]], None] = lambda entry: None,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self.stage = stage
        self.endpoint = endpoint.rstrip("/")
        self.credentials = RoleSessions(assume)
        self.access_log = access_log
        self._stage_bucket = (TokenBucket(stage.stage_rate_limit, stage.stage_burst_limit or 1)
                              if stage.stage_rate_limit else None)
        self._buckets: dict[tuple[str, str], TokenBucket] = {}
        self._quotas: dict[tuple[str, str], Quota] = {}
        self._loader = Loader()
        self._validators: dict[str, jsonschema.Draft4Validator] = {}
        acl = stage.web_acl
        self._rate_rules = [(rule, RateWindow(rule.limit, rule.window_s, clock)) for rule in acl.rules] if acl else []
        if acl is not None and acl.not_evaluated:
            logger.warning("web ACL %s: rules not evaluated locally (only rate-based rules by IP are): %s",
                           acl.name, ", ".join(acl.not_evaluated))

    # -- the request's way through ---------------------------------------------------------------------------

    def handle(self, method: str, path: str, headers: dict[str, str], query: dict[str, str], body: bytes,
               source_ip: str) -> tuple[int, dict[str, str], bytes]:
        started = time.monotonic()
        context: dict[str, Any] = {
            "requestId": str(uuid.uuid4()), "extendedRequestId": uuid.uuid4().hex[:16], "stage": self.stage.stage,
            "apiId": self.stage.api_id, "httpMethod": method, "path": path, "resourcePath": "",
            "requestTimeEpoch": int(time.time() * 1000),
            "requestTime": datetime.now(UTC).strftime("%d/%b/%Y:%H:%M:%S +0000"),
            "identity": {"apiKey": "", "apiKeyId": "", "sourceIp": source_ip, "userAgent": headers.get("user-agent", "")},
            "error": {"message": "", "responseType": "", "validationErrorString": ""},
            "responseOverride": {"status": None, "header": {}},
        }
        try:
            status, response_headers, text = self._serve(method, path, headers, query, body, context)
        except Refusal as refusal:
            status, response_headers, text = self._gateway_response(refusal, context)
        except Exception:  # the gateway's own failure: API Gateway answers DEFAULT_5XX
            logger.exception("request %s failed", context["requestId"])
            status, response_headers, text = self._gateway_response(Refusal("DEFAULT_5XX"), context)
        response_headers = {"content-type": JSON, "x-amzn-requestid": context["requestId"],
                            "x-amz-apigw-id": context["extendedRequestId"], **response_headers}
        self.access_log({"request_id": context["requestId"], "api_key_id": context["identity"]["apiKeyId"],
                         "method": method, "path": path, "status": status,
                         "error": context["error"]["responseType"] or None,
                         "latency_ms": round((time.monotonic() - started) * 1000, 2), "bytes_in": len(body),
                         "time": context["requestTimeEpoch"]})
        return status, response_headers, text.encode()

    def _serve(self, http_method: str, path: str, headers: dict[str, str], query: dict[str, str], body: bytes,
               context: dict[str, Any]) -> tuple[int, dict[str, str], str]:
        self._firewall(context["identity"]["sourceIp"])
        prefix = f"/{self.stage.stage}"
        if not (path == prefix or path.startswith(prefix + "/")):
            raise Refusal("MISSING_AUTHENTICATION_TOKEN")
        routed = self.stage.route(path[len(prefix):] or "/")
        if routed is None:
            raise Refusal("MISSING_AUTHENTICATION_TOKEN")
        resource, path_params = routed
        method = resource.methods.get(http_method) or resource.methods.get("ANY")
        if method is None:
            raise Refusal("MISSING_AUTHENTICATION_TOKEN")
        context["resourcePath"] = resource.path
        if len(body) > MAX_PAYLOAD_BYTES:
            raise Refusal("REQUEST_TOO_LARGE")
        try:
            body = decoded(body, headers.get("content-encoding", ""), MAX_PAYLOAD_BYTES)
        except UnsupportedCoding as error:
            raise Refusal("UNSUPPORTED_MEDIA_TYPE", str(error)) from None
        except DecodedTooLarge as error:
            raise Refusal("REQUEST_TOO_LARGE", str(error)) from None
        if method.api_key_required:
            key = self._api_key(headers.get("x-api-key", ""))
            context["identity"].update(apiKey=key.value, apiKeyId=key.id)
            self._throttle(key)
        elif self._stage_bucket is not None and not self._stage_bucket.take():
            raise Refusal("THROTTLED")
        content_type = headers.get("content-type", JSON).split(";")[0].strip().lower() or JSON
        text = body.decode("utf-8", errors="replace")
        self._validate(method, content_type, text)
        params = {"path": path_params, "querystring": query, "header": headers}
        if method.integration is None:
            raise Refusal("API_CONFIGURATION_ERROR", "the method has no integration")
        return self._integrate(method.integration, content_type, text, params, context)

    def _firewall(self, source_ip: str) -> None:
        """The web ACL, before API Gateway sees the request: its rate-based rules by priority (every request
        counts, a refused one too), then its default action. A block is 403 WAF_FILTERED."""
        acl = self.stage.web_acl
        if acl is None:
            return
        for rule, window in self._rate_rules:
            if window.over(source_ip) and rule.action == "BLOCK":
                raise Refusal("WAF_FILTERED")
        if acl.default_action == "BLOCK":
            raise Refusal("WAF_FILTERED")

    def _api_key(self, value: str) -> ApiKey:
        """The calling key: known, enabled and in a usage plan of this stage, or 403."""
        key = self.stage.keys_by_value.get(value) if value else None
        if key is None or not key.enabled or not key.plans:
            raise Refusal("INVALID_API_KEY")
        return key

    def _throttle(self, key: ApiKey) -> None:
        if self._stage_bucket is not None and not self._stage_bucket.take():
            raise Refusal("THROTTLED")
        for plan in key.plans:
            if plan.rate_limit:
                bucket = self._buckets.setdefault((plan.id, key.id),
                                                  TokenBucket(plan.rate_limit, plan.burst_limit or 1))
                if not bucket.take():
                    raise Refusal("THROTTLED")
            if plan.quota_limit:
                quota = self._quotas.setdefault((plan.id, key.id), Quota(plan.quota_limit, plan.quota_period or "DAY"))
                if not quota.take():
                    raise Refusal("QUOTA_EXCEEDED")

    def _validate(self, method: Method, content_type: str, text: str) -> None:
        integration = method.integration
        if (integration is not None and integration.passthrough_behavior == "NEVER" and integration.request_templates
                and content_type not in integration.request_templates):
            raise Refusal("UNSUPPORTED_MEDIA_TYPE")
        if method.validator is None or not method.validator.body:
            return
        model_name = method.request_models.get(content_type) or method.request_models.get("$default")
        if model_name is None or model_name == "Empty":
            return
        try:
            document = json.loads(text, parse_int=_integer, parse_float=_real, parse_constant=_not_a_json_number)
        except _Unreadable as error:
            raise Refusal("BAD_REQUEST_BODY", validation=f"Invalid request body: {error}") from None
        except json.JSONDecodeError as error:
            raise Refusal("BAD_REQUEST_BODY", validation=f"Invalid request body: not JSON ({_where(error)})") from None
        except RecursionError:  # arrays or objects thousands deep: refused as a body, not failed as the gateway
            raise Refusal("BAD_REQUEST_BODY", validation="Invalid request body: nested too deeply") from None
        validator = self._validators.get(model_name)
        if validator is None:
            validator = self._validators[model_name] = jsonschema.Draft4Validator(self.stage.models[model_name])
        errors = sorted(validator.iter_errors(document), key=lambda e: list(e.absolute_path))
        if errors:
            raise Refusal("BAD_REQUEST_BODY", validation="[" + ", ".join(_describe(e) for e in errors[:10]) + "]")

    def _integrate(self, integration: Integration, content_type: str, text: str, params: dict[str, Any],
                   context: dict[str, Any]) -> tuple[int, dict[str, str], str]:
        template = integration.request_templates.get(content_type)
        try:
            request_body = (render(template, body=text, context=context, params=params,
                                   stage_variables=self.stage.variables) if template is not None else text)
        except TemplateFailed as error:
            logger.error("request template failed: %s", error)
            raise Refusal("API_CONFIGURATION_ERROR", "the request template failed") from error
        if integration.type != "AWS":
            raise Refusal("API_CONFIGURATION_ERROR", f"integration type {integration.type} is not served locally")
        status, answer = self._call_aws(integration, request_body)
        context["integration"] = {"status": status}
        selected = _select(integration, str(status))
        if selected is None:
            raise Refusal("API_CONFIGURATION_ERROR", "no integration response for the integration's answer")
        template = selected.templates.get(JSON) or next(iter(selected.templates.values()), None)
        try:
            out = (render(template, body=answer, context=context, params=params, stage_variables=self.stage.variables)
                   if template is not None else answer)
        except TemplateFailed as error:
            logger.error("response template failed: %s", error)
            raise Refusal("API_CONFIGURATION_ERROR", "the response template failed") from error
        override = context["responseOverride"]["status"]
        return int(override or selected.status), dict(context["responseOverride"]["header"]), out

    def _call_aws(self, integration: Integration, body: str) -> tuple[int, str]:
        """The service action, signed with a session of the integration's role, as API Gateway calls it."""
        region, service, action = integration.aws_action()
        model = self._loader.load_service_model(service, "service-2")["metadata"]
        if model.get("protocol") != "json":
            raise Refusal("API_CONFIGURATION_ERROR", f"{service} ({model.get('protocol')}) is not served locally")
        if not integration.credentials:
            raise Refusal("API_CONFIGURATION_ERROR", "an AWS integration without a role")
        request = AWSRequest(method="POST", url=self.endpoint + "/", data=body.encode(), headers={
            "Content-Type": f"application/x-amz-json-{model.get('jsonVersion', '1.1')}",
            "X-Amz-Target": f"{model['targetPrefix']}.{action}"})
        SigV4Auth(self.credentials.of(integration.credentials), model.get("signingName", service), region).add_auth(request)
        prepared = urllib.request.Request(request.url, data=request.body, method="POST", headers=dict(request.headers))
        try:
            with urllib.request.urlopen(prepared, timeout=30) as answer:
                return answer.status, answer.read().decode()
        except urllib.error.HTTPError as error:
            return error.code, error.read().decode()

    # -- what API Gateway answers itself ---------------------------------------------------------------------

    def _gateway_response(self, refusal: Refusal, context: dict[str, Any]) -> tuple[int, dict[str, str], str]:
        status, message = DEFAULT_RESPONSES.get(refusal.response_type, (500, "Internal server error"))
        family = "DEFAULT_4XX" if 400 <= status < 500 else "DEFAULT_5XX"
        response = self.stage.gateway_responses.get(refusal.response_type) or self.stage.gateway_responses.get(family)
        context["error"].update(responseType=refusal.response_type, message=refusal.message or message,
                                validationErrorString=refusal.validation)
        if response is None or not response.templates:
            return status, {}, json.dumps({"message": refusal.message or message})
        media_type, template = next(((m, t) for m, t in response.templates.items() if m == JSON),
                                    next(iter(response.templates.items())))
        if "json" in media_type:
            # A gateway response template is plain substitution (not Velocity), and the error strings it takes
            # hold what the caller sent: AWS's own validation strings carry double quotes (`(allowed:
            # ["integer"])`) and still come out of `"message": "$context.error.validationErrorString"` as JSON,
            # so they go in escaped, as here.
            context = {**context, "error": {name: json.dumps(value)[1:-1] if isinstance(value, str) else value
                                            for name, value in context["error"].items()}}
        try:
            text = render(template, body="", context=context, stage_variables=self.stage.variables)
        except TemplateFailed:
            text = json.dumps({"message": message})
        return int(response.status or status), {}, text


def _select(integration: Integration, status: str) -> Any:
    """The integration response whose selection pattern matches the service's status; else the default."""
    default = None
    for response in integration.responses:
        if response.selection_pattern is None:
            default = response
        elif re.fullmatch(response.selection_pattern, status):
            return response
    return default


class _Unreadable(ValueError):
    """A body Python's JSON reader would take, or fail on, for a reason the refusal names itself."""


def _integer(digits: str) -> int:
    """A JSON integer, or a refusal that says what it is: JSON itself sets no limit, Python reads at most
    sys.get_int_max_str_digits() digits (4,300), and no model here takes a number of more than a few."""
    try:
        return int(digits)
    except ValueError:
        raise _Unreadable(f"a number of {len(digits.lstrip('-')):,} digits "
                          f"(at most {sys.get_int_max_str_digits():,} are read)") from None


def _real(text: str) -> float:
    """A JSON number with a fraction or an exponent, or a refusal naming it as sent when no double holds it
    (`1e400`): Python would read it as infinity, and a refusal would name a value the caller never sent."""
    value = float(text)
    if math.isinf(value):
        raise _Unreadable(f"the number {text[:40]} is beyond the range of a double")
    return value


def _not_a_json_number(literal: str) -> float:
    """`NaN`, `Infinity` and `-Infinity`, which Python's reader takes and JSON (RFC 8259) does not: the body is
    not JSON, as API Gateway's reader finds, not a number of the wrong type."""
    raise _Unreadable(f"not JSON ({literal} is not a JSON number)")


def _where(error: json.JSONDecodeError) -> str:
    """What is wrong with a body that is not JSON, and where, for the caller to find it."""
    if not error.doc.strip():
        return "the body is empty"
    if error.pos == 0 and error.doc.startswith("\ufeff"):
        return "it starts with a byte-order mark, U+FEFF: send the JSON text without one"
    return f"{error.msg} at line {error.lineno}, column {error.colno}"


def _describe(error: jsonschema.ValidationError) -> str:
    """`/where: what`, with the value named as `_shown` names it where jsonschema repeats it whole."""
    where = "/" + "/".join(str(p) for p in error.absolute_path)
    whole = repr(error.instance)
    message = error.message.replace(whole, _shown(error.instance)) if whole in error.message else error.message
    return f"{where}: {message}"


def _shown(value: Any) -> str:
    """A caller's value as a refusal names it: text as the contract's `shown` names it; anything else spelt in
    JSON, as the caller sent it (`null`, `true`, not Python's `None`, `True`), an array or object by its size
    when it is long (an array over the model's 500 is not repeated record by record)."""
    if isinstance(value, str):
        return shown(value)
    whole = json.dumps(value)
    if len(whole) <= LONGEST_SHOWN:
        return whole
    if isinstance(value, (list, dict)):
        count = f"{len(value)} {'item' if isinstance(value, list) else 'field'}{'' if len(value) == 1 else 's'}"
        return f"[... {count}]" if isinstance(value, list) else f"{{... {count}}}"
    return whole[:LONGEST_SHOWN] + "..."


async def read_body(chunks: AsyncIterator[bytes], limit: int = MAX_PAYLOAD_BYTES) -> bytes:
    """The request's body, or its first `limit + 1` bytes when it is longer: enough for the gateway to refuse
    it 413 (as API Gateway does past its payload limit) without holding a body of any size in memory."""
    kept, size = [], 0
    async for chunk in chunks:
        kept.append(chunk)
        size += len(chunk)
        if size > limit:
            break
    return b"".join(kept)[:limit + 1]


def create_app(gateway: Gateway) -> Starlette:
    async def serve(request: Request) -> Response:
        body = await read_body(request.stream())
        headers = {k.lower(): v for k, v in request.headers.items()}
        status, response_headers, text = await run_in_threadpool(
            gateway.handle, request.method, request.url.path, headers, dict(request.query_params), body,
            request.client.host if request.client else "")
        return Response(text, status_code=status, headers=response_headers)

    methods = ["GET", "POST", "PUT", "PATCH", "DELETE", "HEAD", "OPTIONS"]
    return Starlette(routes=[Route("/{path:path}", serve, methods=methods)])
