"""Every service: calls made with a deployed role's credentials are authorized as AWS would."""
from __future__ import annotations

import json
import os
import re
import threading
import time
from typing import TYPE_CHECKING, Any

from localdev.access import ACCESS_LOG_ENV
from localdev.moto_extensions.registry import error_answer, extension, speaks_json

if TYPE_CHECKING:
    from localdev.access.calls import Call

CREDENTIAL = re.compile(r"Credential=([A-Za-z0-9]+)/")
# moto's service names where they differ from the IAM action prefix
IAM_PREFIX = {"monitoring": "cloudwatch", "events": "events", "elb": "elasticloadbalancing"}
_log_lock = threading.Lock()


@extension
def calls_with_a_role_are_authorized_against_its_policies() -> None:
    """The local processor runs with credentials from an STS AssumeRole of the *deployed* task
    role, as ECS gives a task. Every request signed with such credentials is evaluated
    (localdev/access/) against the role's policies, the resource's own policy and, where the
    service uses a KMS key for the caller, the key policy, and refused with AWS's
    AccessDenied where AWS would refuse it. Each decision goes to the access log
    (`LOCALDEV_ACCESS_LOG`) for the demo's report. Requests with the emulator's plain keys
    (Terraform, the producer standing in for the suppliers, the tests) are not checked.

    An AssumeRole made for a service (localdev/access/trust.py `assume_as`) is evaluated against
    the role's trust policy, with the keys that service sends, and refused with STS's AccessDenied
    where STS would refuse it; one that names no service (the plain keys' own) is not."""
    from moto.core.responses import BaseResponse

    original = BaseResponse.call_action

    def call_action(self: BaseResponse) -> Any:
        refusal = _authorize(self)
        return refusal if refusal is not None else original(self)

    BaseResponse.call_action = call_action


def _assumed_role(headers: Any) -> tuple[str, str, str] | None:
    """(account, role ARN, session name) of the credentials a request is signed with, if assumed."""
    from moto.sts.models import sts_backends

    match = CREDENTIAL.search(headers.get("Authorization") or "")
    if not match or not match.group(1).startswith("ASIA"):
        return None
    key = match.group(1)
    for account, partitions in list(sts_backends.items()):
        backend = partitions.get("aws") if hasattr(partitions, "get") else None
        for role in getattr(backend, "assumed_roles", []):
            if role.access_key_id == key:
                if (headers.get("X-Amz-Security-Token") or "") != role.session_token:
                    return account, "", ""
                return account, role.role_arn, role.session_name
    return None


def _authorize(response: Any) -> tuple[int, dict, str] | None:
    """moto's handler's answer for a refused request, or None to let moto serve it."""
    from localdev.access.calls import Call
    from localdev.access.trust import ASSUMED_BY_HEADER, SOURCE_ARN_HEADER

    service = response.headers.get(ASSUMED_BY_HEADER)
    if service and response.service_name == "sts" and response._get_action() == "AssumeRole":
        refusal = assume_refusal(response._get_param("RoleArn") or "", service, response.current_account,
                                 response._get_param("RoleSessionName") or "",
                                 source_arn=response.headers.get(SOURCE_ARN_HEADER) or "")
        if refusal:
            return _refuse(response, "AccessDenied", refusal)
    caller = _assumed_role(response.headers)
    if caller is None:
        return None
    account, role_arn, session = caller
    if not role_arn:
        return _refuse(response, "InvalidClientTokenId", "The security token included in the request is invalid.")
    service = IAM_PREFIX.get(response.service_name, response.service_name)
    call = Call(role_arn, service, response._get_action(), response.region, account, response._get_param)
    refusal = authorize(call, session)
    return _refuse(response, "AccessDenied", refusal) if refusal else None


def authorize(call: Call, session: str = "") -> str | None:
    """None if AWS would allow `call` and each key use it implies; else AWS's AccessDenied message.
    Every decision is logged. Also used for what the emulator itself does with a deployed role
    (Firehose's reads and writes, moto_extensions/firehose.py)."""
    from localdev.access.calls import identity_policies, questions
    from localdev.access.policy import evaluate

    try:
        policies = identity_policies(call)
    except Exception:  # the role is gone (destroyed while a session of it lives on)
        policies = []
    for question in questions(call):
        request = question.request
        if not request.resource:
            allowed, reason = False, (f"localdev cannot name the resource of {call.action} "
                                      "(teach localdev/access/calls.py RESOURCES)")
        else:
            decision = evaluate(request, policies, resource_policy=question.resource_policy,
                                key_policy=question.key_policy)
            allowed, reason = decision.allowed, decision.reason
        _record({"at": round(time.time(), 3), "principal": call.principal, "session": session,
                 "action": request.action, "resource": request.resource, "on_behalf_of": question.on_behalf_of,
                 "allowed": allowed, "reason": reason})
        if not allowed:
            through = f" (which {question.on_behalf_of} needs)" if question.on_behalf_of else ""
            who = f"arn:aws:sts::{call.account}:assumed-role/{call.principal.rsplit('/', 1)[-1]}/{session or 'service'}"
            return (f"User: {who} is not authorized to perform: {request.action} on resource: "
                    f"{request.resource or '?'}{through} because {reason}")
    return None


def assume_refusal(role_arn: str, service: str, account: str, session: str, *, source_arn: str = "") -> str | None:
    """None if STS lets `service`, acting for `account`, assume `role_arn`; else STS's AccessDenied message.
    The decision is logged with the role as principal, as a refusal of what the role needs. Also used
    for the roles the emulator itself assumes as a service (Firehose's, moto_extensions/firehose.py)."""
    from localdev.access.trust import UnknownService, sent_context, trust_decision

    try:
        context = sent_context(service, account=account, source_arn=source_arn)
    except UnknownService as error:
        allowed, reason = False, str(error)
    else:
        decision = trust_decision(role_arn, _trust_policy(role_arn), service, context)
        allowed, reason = decision.allowed, decision.reason
    _record({"at": round(time.time(), 3), "principal": role_arn, "session": session, "action": "sts:AssumeRole",
             "resource": role_arn, "on_behalf_of": "", "assumed_by": service, "allowed": allowed, "reason": reason})
    if allowed:
        return None
    return f"{service} is not authorized to perform: sts:AssumeRole on resource: {role_arn} because {reason}"


def _trust_policy(role_arn: str) -> str | None:
    """The role's trust policy as the emulator holds it now, or None if there is no such role."""
    from moto.iam.models import iam_backends

    parts = role_arn.split(":")
    if len(parts) < 6 or parts[2] != "iam" or not parts[5].startswith("role/"):
        return None
    try:
        return iam_backends[parts[4]][parts[1]].get_role_by_arn(role_arn).assume_role_policy_document
    except Exception:  # moto's NotFoundException, or an account or partition it never saw
        return None


def _record(entry: dict) -> None:
    path = os.environ.get(ACCESS_LOG_ENV)
    if not path:
        return
    with _log_lock, open(path, "a", encoding="utf-8") as log:
        log.write(json.dumps(entry, sort_keys=True) + "\n")


def _refuse(response: Any, code: str, message: str) -> tuple[int, dict, str]:
    """AWS's answer to a refused call: AccessDeniedException (JSON), AccessDenied (query; SNS says AuthorizationError)."""
    status = 400 if speaks_json(response) else 403
    if code != "AccessDenied":
        return error_answer(response, status, message, json_type=code, xml_code=code)
    return error_answer(response, status, message, json_type="AccessDeniedException",
                        xml_code="AuthorizationError" if response.service_name == "sns" else "AccessDenied")
