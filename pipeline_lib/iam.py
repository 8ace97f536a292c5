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


def assume_role_policy(service: str, *, source_account: str | None = None) -> str:
    """Trust policy for an AWS service, guarded against the confused deputy."""
    trust: dict[str, Any] = {
        "Sid": "AssumedByService",
        "Effect": "Allow",
        "Principal": {"Service": service},
        "Action": "sts:AssumeRole",
    }
    if source_account:
        trust["Condition"] = {"StringEquals": {"aws:SourceAccount": source_account}}
    return json.dumps({"Version": "2012-10-17", "Statement": [trust]}, separators=(",", ":"))
