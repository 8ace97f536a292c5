"""A copy of a JSON plan with every sensitive value replaced, safe to keep as a CI artifact.

`terraform show -json` prints sensitive values in clear and marks them in parallel trees
(`before_sensitive`, `after_sensitive`, `sensitive_values`). Here each marked leaf becomes
"(sensitive)"; the markers stay, so the redacted plan still reads as a plan.
"""
from __future__ import annotations

from typing import Any

from tools.plan_review.diff import MASK, SECRET_NAME, flatten
from tools.plan_review.model import MIN_SECRET, sensitive_places


def mask(value: Any, sensitive: Any, found: set[str]) -> Any:
    """`value` with each leaf the `sensitive` tree marks replaced; the strings replaced go into `found`."""
    if sensitive is True:
        found.update(leaf for _, leaf in flatten(value) if isinstance(leaf, str) and leaf)
        return MASK if value is not None else None
    if isinstance(value, dict) and isinstance(sensitive, dict):
        return {key: mask(item, sensitive.get(key), found) for key, item in value.items()}
    if isinstance(value, list) and isinstance(sensitive, list):
        return [mask(item, sensitive[i] if i < len(sensitive) else None, found) for i, item in enumerate(value)]
    return value


def _module(module: Any, found: set[str]) -> None:
    if not isinstance(module, dict):
        return
    for resource in module.get("resources") or []:
        if isinstance(resource, dict) and "values" in resource:
            resource["values"] = mask(resource["values"], resource.get("sensitive_values"), found)
    for child in module.get("child_modules") or []:
        _module(child, found)


def _scrub(node: Any, secrets: set[str]) -> Any:
    """Every string equal to a known secret, anywhere (a literal in `configuration`, say), masked;
    and any value under a key that names a secret."""
    if isinstance(node, dict):
        return {key: (MASK if SECRET_NAME.search(str(key)) and isinstance(item, str) and item else _scrub(item, secrets))
                for key, item in node.items()}
    if isinstance(node, list):
        return [_scrub(item, secrets) for item in node]
    if not isinstance(node, str):
        return node
    if node in secrets:
        return MASK
    for secret in secrets:  # a secret inside a longer string (a task's container definitions, say)
        if len(secret) >= MIN_SECRET and secret in node:
            node = node.replace(secret, MASK)
    return node


def redact(document: dict[str, Any]) -> dict[str, Any]:
    """Redacts in place and returns the document."""
    secrets: set[str] = set()  # every value masked, to scrub its copies elsewhere at the end
    for holder, key, marker in sensitive_places(document):
        holder[key] = mask(holder.get(key), marker, secrets)
    for section in ("planned_values", "prior_state"):
        holder = document.get(section) or {}
        values = holder.get("values", holder) if section == "prior_state" else holder
        _module((values or {}).get("root_module"), secrets)
        for name, output in ((values or {}).get("outputs") or {}).items():
            if isinstance(output, dict) and output.get("sensitive"):
                values["outputs"][name]["value"] = MASK
    scrubbed = _scrub(document, secrets)
    document.clear()
    document.update(scrubbed)
    return document
