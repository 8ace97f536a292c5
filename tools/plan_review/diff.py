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


Path = tuple[str | int, ...]


def flatten(node: Any, prefix: Path = ()) -> Iterator[tuple[Path, Any]]:
    """Leaves of a JSON value as (path of keys and indexes, value); empty containers are leaves too.
    Paths are tuples, not dotted text: a map key may hold dots or brackets (`"db.password"`, `"a[b]"`)."""
    if isinstance(node, dict) and node:
        for key, value in node.items():
            yield from flatten(value, (*prefix, str(key)))
    elif isinstance(node, list) and node:
        for index, value in enumerate(node):
            yield from flatten(value, (*prefix, index))
    else:
        yield prefix, node


PLAIN_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_-]*$")


def dotted(path: tuple[Any, ...]) -> str:
    """`rule[0].apply.sse`, with a key that is not a plain name quoted: `tags["db.password"]`."""
    text = ""
    for step in path:
        if isinstance(step, int):
            text += f"[{step}]"
        elif PLAIN_NAME.match(str(step)):
            text += f".{step}" if text else str(step)
        else:
            text += "[" + json.dumps(str(step)) + "]"
    return text


def _order(path: Path) -> list[tuple[int, int, str]]:
    return [(1, step, "") if isinstance(step, int) else (0, 0, step) for step in path]


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
    forcing = [tuple(path) for path in change.replace_paths]
    rows: list[AttributeChange] = []
    for path in sorted(set(before) | set(after) | unknown, key=_order):
        old, new = before.get(path), after.get(path)
        is_unknown = path in unknown or marked(change.after_unknown, path)
        if not is_unknown and (old == new or (old in EMPTY and new in EMPTY)):
            continue  # "" and null (or [] and null) are the same to the provider
        if is_unknown and old is None and path not in before:
            continue  # computed on create of a nested block: noise
        forces = any(path[: len(f)] == f for f in forcing if f)
        if is_unknown and change.kind == "replace" and not forces:
            continue  # a new object's computed attributes (id, arn, ...): all unknown, all noise
        sensitive = (marked(change.before_sensitive, path) or marked(change.after_sensitive, path)
                     or any(SECRET_NAME.search(str(step)) for step in path))
        rows.append(AttributeChange(
            path=dotted(path),
            before=MASK if sensitive and old is not None else render(old),
            after=UNKNOWN if is_unknown else (MASK if sensitive and new is not None else render(new)),
            forces_replacement=forces,
        ))
    return sorted(rows, key=lambda row: not row.forces_replacement)  # what forces a replacement first
