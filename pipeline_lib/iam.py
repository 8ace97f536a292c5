"""Small helpers for IAM policy documents, so every policy reads the same way."""
from __future__ import annotations

import json
from collections.abc import Iterable, Mapping
from typing import Any


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


def assume_role_policy(service: str, *, source_account: str | None = None, external_id: str | None = None) -> str:
    """Trust policy for an AWS service, guarded against the confused deputy with the key
    that service documents sending when it assumes the role: `aws:SourceAccount` for most,
    `sts:ExternalId` (the account id) for Firehose; some (AWS Backup) document neither."""
    trust: dict[str, Any] = {
        "Sid": "AssumedByService",
        "Effect": "Allow",
        "Principal": {"Service": service},
        "Action": "sts:AssumeRole",
    }
    if source_account and external_id:
        raise ValueError("name one guard: the one the service documents")
    if source_account:
        trust["Condition"] = {"StringEquals": {"aws:SourceAccount": source_account}}
    if external_id:
        trust["Condition"] = {"StringEquals": {"sts:ExternalId": external_id}}
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
