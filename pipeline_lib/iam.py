"""Small helpers for IAM policy documents, so every policy reads the same way."""
from __future__ import annotations

import json
from collections.abc import Iterable, Mapping
from typing import Any

from policy.conventions import SERVICE_TRUST_KEYS


def statement(
    sid: str,
    actions: Iterable[str],
    resources: Iterable[str],
    *,
    condition: Mapping[str, Any] | None = None,
    effect: str = "Allow",
) -> dict[str, Any]:
    body: dict[str, Any] = {
        "Sid": sid,
        "Effect": effect,
        "Action": sorted(set(actions)),
        "Resource": list(resources),
    }
    if condition:
        body["Condition"] = dict(condition)
    return body


def document(*statements: Mapping[str, Any]) -> str:
    return json.dumps({"Version": "2012-10-17", "Statement": list(statements)}, separators=(",", ":"))


def assume_role_policy(service: str, *, account_id: str | None = None) -> str:
    """Trust policy for an AWS service, guarded against the confused deputy with the key that service
    sends when it assumes the role (`policy.conventions.SERVICE_TRUST_KEYS`), equal to this account."""
    if service not in SERVICE_TRUST_KEYS:
        raise ValueError(f"{service}: which confused-deputy key it sends when it assumes a role is not known; "
                         "add it to policy/conventions.py SERVICE_TRUST_KEYS from the service's own docs")
    trust: dict[str, Any] = {
        "Sid": "AssumedByService",
        "Effect": "Allow",
        "Principal": {"Service": service},
        "Action": "sts:AssumeRole",
    }
    keys = SERVICE_TRUST_KEYS[service]
    if keys:
        key = keys[0]
        if account_id is None:
            raise ValueError(f"{service} is trusted on {key} = this account: pass account_id")
        trust["Condition"] = {"StringEquals": {key: account_id}}
    return json.dumps({"Version": "2012-10-17", "Statement": [trust]}, separators=(",", ":"))


def direct_services(statements: Iterable[Mapping[str, Any]]) -> list[str]:
    """The services (IAM action prefixes) the statements let a principal call itself, in order of
    first grant. A key use granted only through another service (`kms:ViaService`) is that
    service's call, not one to KMS."""
    found: dict[str, None] = {}
    for body in statements:
        if body.get("Effect") != "Allow":
            continue
        via = any("kms:ViaService" in block for block in (body.get("Condition") or {}).values())
        actions = body.get("Action")
        for action in [actions] if isinstance(actions, str) else actions or []:
            service = str(action).split(":", 1)[0]
            if not (via and service == "kms"):
                found.setdefault(service, None)
    return list(found)
