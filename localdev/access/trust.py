"""Trust policies: whether a service may assume a role, given what that service puts in its request.

On AWS a service assumes the role it was given (an ECS task's role, an API Gateway integration's
credentials, an IoT rule's role, a Firehose delivery stream's role) through STS, and STS evaluates
the role's trust policy with the service as principal and the condition keys that service sends:
a condition on a key it does not send (API Gateway sends no `aws:SourceAccount`) fails every
AssumeRole, and the service answers 500 or drops the message. moto's AssumeRole evaluates no
trust policy, so locally such a role worked.

Here a local process that stands for a service says so (`assume_as`: a header on its AssumeRole),
and the emulator (moto_extensions/access.py) evaluates the role's trust policy with the evaluator of
policy.py: principal = the service, context = exactly the keys policy/conventions.py
SERVICE_TRUST_KEYS says the service sends (`sent_context`). A refusal is STS's AccessDenied, and is in
the access log as any other refusal.

An AssumeRole that names no service comes from the emulator's operator (the tests' fixtures, the
deploy with the plain keys) and is not evaluated, as no other call made with the plain keys is.
"""
from __future__ import annotations

import threading
from collections.abc import Mapping
from typing import Any

from localdev.access.policy import OPERATORS, Decision, Policy, Request, as_list, evaluate
from policy.conventions import SERVICE_TRUST_KEYS

# The service a local process stands for when it calls AssumeRole, and the ARN of the resource it acts
# for (an IoT rule), which the service sends as aws:SourceArn. Local conventions: AWS's STS has neither.
ASSUMED_BY_HEADER = "X-Localdev-Assumed-By"
SOURCE_ARN_HEADER = "X-Localdev-Source-Arn"
SESSION_SECONDS = 3600
# The services local processes stand for (keys of SERVICE_TRUST_KEYS).
ECS_TASKS = "ecs-tasks.amazonaws.com"  # a task's role and its execution role (the ECS agent's)
API_GATEWAY = "apigateway.amazonaws.com"  # an AWS integration's credentials role
IOT = "iot.amazonaws.com"  # a topic rule's action and error-action roles
FIREHOSE = "firehose.amazonaws.com"  # a delivery stream's role

_acting = threading.local()


class UnknownService(ValueError):
    pass


def sent_context(service: str, *, account: str, source_arn: str = "") -> dict[str, str]:
    """The condition keys `service` puts in the request context when it assumes a role for `account`:
    those SERVICE_TRUST_KEYS lists, and no other. aws:SourceArn only where the local process names the
    resource it acts for (without it, a condition on aws:SourceArn is refused here)."""
    if service not in SERVICE_TRUST_KEYS:
        raise UnknownService(f"{service}: which keys it sends when it assumes a role is not known "
                             "(policy/conventions.py SERVICE_TRUST_KEYS)")
    values = {
        "aws:sourceaccount": account,  # the account whose resource the service acts for
        "aws:sourcearn": source_arn,
        "sts:externalid": account,  # Firehose passes the account id as ExternalId (its documented trust policy)
    }
    context = {}
    for key in SERVICE_TRUST_KEYS[service]:
        if key.lower() not in values:
            raise UnknownService(f"{service} sends {key}, whose local value is not known: add it to sent_context")
        if values[key.lower()]:
            context[key] = values[key.lower()]
    return context


def trust_decision(role_arn: str, trust_policy: str | Mapping[str, Any] | None, service: str,
                   context: Mapping[str, str]) -> Decision:
    """STS's decision on `service` assuming `role_arn` (None: no such role) with `context`; a refusal
    names what in the trust policy the service's request does not meet."""
    if trust_policy is None:
        return Decision(False, "the role does not exist")
    try:
        policy = Policy.parse(f"trust policy of {role_arn.rsplit('/', 1)[-1]}", trust_policy)
    except ValueError as error:
        return Decision(False, f"its trust policy is not a policy document ({error})")
    request = Request(principal=service, action="sts:AssumeRole", resource=role_arn, context=context)
    decision = evaluate(request, [], resource_policy=policy)
    if decision.allowed or decision.reason.startswith("explicitly denied"):
        return decision
    return Decision(False, f"the role's trust policy does not let {service} assume it: {_unmet(policy, request)}")


def _unmet(policy: Policy, request: Request) -> str:
    """What the trust policy's statements for the service require that its request does not have."""
    sent = {key.lower() for key in request.context}
    missing: dict[str, None] = {}
    for statement in policy.statements():
        principal = statement.get("Principal")
        if statement.get("Effect") != "Allow" or not isinstance(principal, Mapping) \
                or request.principal not in as_list(principal.get("Service")):
            continue
        here = [key for operator, block in (statement.get("Condition") or {}).items()
                if _absent_key_fails(operator.rpartition(":")[2]) for key in block or {} if key.lower() not in sent]
        missing.update(dict.fromkeys(here))
        if not here:
            given = ", ".join(f"{k}={v}" for k, v in sorted(request.context.items())) or "no condition keys"
            return f"its conditions do not hold for what {request.principal} sends ({given})"
    if missing:
        return f"it requires {', '.join(missing)}, which {request.principal} does not send when it assumes a role"
    return f"no statement trusts {request.principal} with sts:AssumeRole"


def _absent_key_fails(operator: str) -> bool:
    """A condition with this operator fails when the request lacks its key (policy.conditions_hold)."""
    negated = operator in OPERATORS and OPERATORS[operator][1]
    return not (operator.endswith("IfExists") or operator == "Null" or negated)


def assume_as(sts: Any, service: str, role_arn: str, session_name: str, *, source_arn: str = "") -> dict[str, str]:
    """Credentials of `role_arn` as `service` gets them (the emulator evaluates the role's trust policy
    for that service), as the three environment variables. `sts`: a boto3 STS client of the emulator."""
    if service not in SERVICE_TRUST_KEYS:
        raise UnknownService(f"{service} is not in policy/conventions.py SERVICE_TRUST_KEYS")
    sts.meta.events.register("before-sign.sts.AssumeRole", _declare, unique_id="localdev-assumed-by")
    _acting.declared = (service, source_arn)
    try:
        answer = sts.assume_role(RoleArn=role_arn, RoleSessionName=session_name[:64],
                                 DurationSeconds=SESSION_SECONDS)["Credentials"]
    finally:
        _acting.declared = None
    return {"AWS_ACCESS_KEY_ID": answer["AccessKeyId"], "AWS_SECRET_ACCESS_KEY": answer["SecretAccessKey"],
            "AWS_SESSION_TOKEN": answer["SessionToken"]}


def _declare(request: Any, **_: Any) -> None:
    declared = getattr(_acting, "declared", None)
    if declared:
        service, source_arn = declared
        request.headers[ASSUMED_BY_HEADER] = service
        if source_arn:
            request.headers[SOURCE_ARN_HEADER] = source_arn
