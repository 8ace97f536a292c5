"""The attributes a change touches, as `path: before -> after` rows, sensitive values masked.

A value is masked when the plan marks it sensitive on either side (Terraform's own
`before_sensitive`/`after_sensitive`), and also when its name says it is a secret, in case
a provider schema forgot to mark it.
"""
from __future__ import annotations

import json
import re
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

from tools.plan_review.model import Change, marked

MASK = "(sensitive)"
UNKNOWN = "(known after apply)"
ABSENT = "null"
SECRET_NAME = re.compile(r"password|secret_string|auth_token|private_key|secret_binary|access_key_secret", re.I)
MAX_VALUE = 60
EMPTY = (None, "", [], {})


@dataclass(frozen=True)
class AttributeChange:
    path: str
    before: str
    after: str
    forces_replacement: bool = False


def flatten(node: Any, prefix: str = "") -> Iterator[tuple[str, Any]]:
    """Leaves of a JSON value as (dotted path, value); empty containers are leaves too."""
    if isinstance(node, dict) and node:
        for key, value in node.items():
            yield from flatten(value, f"{prefix}.{key}" if prefix else str(key))
    elif isinstance(node, list) and node:
        for index, value in enumerate(node):
            yield from flatten(value, f"{prefix}[{index}]")
    else:
        yield prefix, node


def _marked(tree: Any, path: str) -> bool:
    return marked(tree, _steps(path))


def _steps(path: str) -> list[str | int]:
    steps: list[str | int] = []
    for part in path.split("."):
        name, *indices = part.split("[")
        if name:
            steps.append(name)
        steps.extend(int(index.rstrip("]")) for index in indices)
    return steps


def render(value: Any) -> str:
    if value is None:
        return ABSENT
    text = value if isinstance(value, str) else json.dumps(value, sort_keys=True)
    text = " ".join(text.split())
    return text if len(text) <= MAX_VALUE else text[: MAX_VALUE - 1] + "…"


def attribute_changes(change: Change) -> list[AttributeChange]:
    """What changes, leaf by leaf: every leaf of an update or replace whose value differs
    (or becomes unknown). Creates and deletes are whole-resource changes: no rows."""
    if change.kind not in ("update", "replace"):
        return []
    before = dict(flatten(change.before or {}))
    after = dict(flatten(change.after or {}))
    unknown = {path for path, flag in flatten(change.after_unknown or {}) if flag is True}
    forcing = {_dotted(path) for path in change.replace_paths}
    rows: list[AttributeChange] = []
    for path in sorted(set(before) | set(after) | unknown):
        old, new = before.get(path), after.get(path)
        is_unknown = path in unknown or _marked(change.after_unknown, path)
        if not is_unknown and (old == new or (old in EMPTY and new in EMPTY)):
            continue  # "" and null (or [] and null) are the same to the provider
        if is_unknown and old is None and path not in before:
            continue  # computed on create of a nested block: noise
        forces = any(path == f or path.startswith(f + ".") or path.startswith(f + "[") for f in forcing)
        if is_unknown and change.kind == "replace" and not forces:
            continue  # a new object's computed attributes (id, arn, ...): all unknown, all noise
        sensitive = (_marked(change.before_sensitive, path) or _marked(change.after_sensitive, path)
                     or SECRET_NAME.search(path) is not None)
        rows.append(AttributeChange(
            path=path,
            before=MASK if sensitive and old is not None else render(old),
            after=UNKNOWN if is_unknown else (MASK if sensitive and new is not None else render(new)),
            forces_replacement=forces,
        ))
    return sorted(rows, key=lambda row: not row.forces_replacement)  # what forces a replacement first


def _dotted(path: tuple[Any, ...]) -> str:
    text = ""
    for step in path:
        text += f"[{step}]" if isinstance(step, int) else (f".{step}" if text else str(step))
    return text
