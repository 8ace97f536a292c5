"""Hand-built plan changes for the fast rule tests: a `Change` as `terraform show -json` would
describe it, and a `StackPlan` holding them, without a deployment or a plan run."""
from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from tools.plan_review.model import Change, StackPlan

ACCOUNT = "123456789012"
TAGS = {"Project": "streaming-pipelines", "Workload": "retail", "Environment": "dev", "Owner": "platform-team",
        "CostCenter": "cc-retail", "ManagedBy": "cdktf", "DataClassification": "confidential"}


def change(type_: str, kind: str, before: dict[str, Any] | None = None, after: dict[str, Any] | None = None, *,
           name: str = "this", unknown: dict[str, Any] | None = None,
           forced_by: tuple[str, ...] = ()) -> Change:
    """One resource change: `kind` is create, update, replace, delete or forget; `forced_by`
    names the attributes that force a replacement (the plan's replace_paths)."""
    return Change(address=f"{type_}.{name}", type=type_, kind=kind,
                  before=None if kind == "create" else (before or {}),
                  after=None if kind in ("delete", "forget") else (after or {}),
                  after_unknown=unknown or {}, before_sensitive={}, after_sensitive={},
                  replace_paths=tuple((attribute,) for attribute in forced_by))


def plan(*changes: Change, stack: str = "retail-dev", tags: dict[str, str] | None = None) -> StackPlan:
    """A stack's plan of these changes, its default tags those of `stack`'s workload and suffix."""
    workload, suffix = stack.split("-", 1)
    default_tags = {**TAGS, "Workload": workload, "Environment": suffix} if tags is None else tags
    return StackPlan(stack=stack, source=Path(f"{stack}.json"), changes=changes, default_tags=default_tags,
                     accounts=frozenset({ACCOUNT}), region="us-east-1")


def document(*statements: dict[str, Any]) -> str:
    return json.dumps({"Version": "2012-10-17", "Statement": list(statements)})


def allow(action: str | list[str], resource: str | list[str] = "*", *, principal: Any = None) -> dict[str, Any]:
    """An Allow statement (with a Principal: of a resource policy)."""
    statement = {"Effect": "Allow", "Action": action, "Resource": resource}
    return statement if principal is None else {**statement, "Principal": principal}


def resource_change(address: str, type_: str, actions: list[str], before: Any = None, after: Any = None,
                    **fields: Any) -> dict[str, Any]:
    """One `resource_changes` entry as `terraform show -json` writes it; `fields` adds top-level keys
    (mode, index, deposed, action_reason, previous_address) or, prefixed `change_`, keys of `change`."""
    change_fields = {key.removeprefix("change_"): fields.pop(key) for key in list(fields) if key.startswith("change_")}
    return {"address": address, "mode": fields.pop("mode", "managed"), "type": type_,
            "name": address.rsplit(".", 1)[-1].split("[")[0], "provider_name": "registry.terraform.io/hashicorp/aws",
            **fields,
            "change": {"actions": actions, "before": before, "after": after, "after_unknown": {},
                       "before_sensitive": {} if before is not None else False,
                       "after_sensitive": {} if after is not None else False, **change_fields}}


def plan_document(*changes: dict[str, Any], **sections: Any) -> dict[str, Any]:
    """A JSON plan document (format 1.2) holding these resource changes and any other sections."""
    return {"format_version": "1.2", "terraform_version": "1.11.4", "planned_values": {"root_module": {}},
            "resource_changes": list(changes), "configuration": {"provider_config": {}, "root_module": {}},
            **sections}
