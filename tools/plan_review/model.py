"""One stack's plan, read from `terraform show -json`: its resource changes, in our words."""
from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

KINDS = ("create", "update", "replace", "delete", "no-op")


class PlanInputError(Exception):
    """The file is not a Terraform JSON plan we can read; the message says why."""


@dataclass(frozen=True)
class Change:
    address: str
    type: str
    kind: str  # one of KINDS, or "read" for data sources read during apply
    before: Any
    after: Any
    after_unknown: Any
    before_sensitive: Any
    after_sensitive: Any
    replace_paths: tuple[tuple[Any, ...], ...] = ()

    @property
    def managed(self) -> bool:
        return not self.address.startswith("data.") and ".data." not in self.address

    def before_value(self, *path: Any) -> Any:
        return dig(self.before, path)

    def after_value(self, *path: Any) -> Any:
        return dig(self.after, path)

    def unknown(self, *path: Any) -> bool:
        """True when the value at `path` (or one of its parents) is known only after apply."""
        return marked(self.after_unknown, path)


@dataclass(frozen=True)
class StackPlan:
    stack: str
    source: Path
    changes: tuple[Change, ...]
    default_tags: dict[str, str] = field(default_factory=dict)

    @property
    def suffix(self) -> str:
        return self.default_tags.get("Environment") or self.stack.split("-", 1)[-1]

    @property
    def workload(self) -> str:
        return self.default_tags.get("Workload") or self.stack.split("-", 1)[0]

    def counts(self) -> dict[str, int]:
        counted = dict.fromkeys(KINDS, 0)
        for change in self.changes:
            if change.managed and change.kind in counted:
                counted[change.kind] += 1
        return counted

    def managed_changes(self) -> Iterator[Change]:
        return (c for c in self.changes if c.managed and c.kind != "no-op")


def dig(node: Any, path: tuple[Any, ...] | list[Any]) -> Any:
    for step in path:
        if isinstance(node, dict) and isinstance(step, str):
            node = node.get(step)
        elif isinstance(node, list) and isinstance(step, int) and 0 <= step < len(node):
            node = node[step]
        else:
            return None
    return node


def marked(tree: Any, path: tuple[Any, ...] | list[Any]) -> bool:
    """True when a marker tree (`after_unknown`, `*_sensitive`) holds `true` at `path` or one of its parents."""
    node = tree
    for step in path:
        if node is True:
            return True
        node = dig(node, (step,))
    return node is True


def kind_of(actions: list[str]) -> str:
    if actions == ["no-op"]:
        return "no-op"
    if actions == ["create"]:
        return "create"
    if actions == ["update"]:
        return "update"
    if actions == ["delete"]:
        return "delete"
    if sorted(actions) == ["create", "delete"]:
        return "replace"
    if actions == ["read"]:
        return "read"
    raise PlanInputError(f"unknown action list {actions}")


def load(path: Path, stack: str | None = None) -> StackPlan:
    """Read one plan. The stack is named after the file (`retail-dev.json` -> retail-dev) unless given."""
    try:
        document = json.loads(path.read_text(encoding="utf-8"))
    except OSError as error:
        raise PlanInputError(f"{path}: cannot read: {error.strerror or error}") from error
    except (UnicodeDecodeError, json.JSONDecodeError) as error:
        raise PlanInputError(f"{path}: not JSON ({error}); give `terraform show -json PLAN` output") from error
    if not isinstance(document, dict) or "format_version" not in document or "terraform_version" not in document:
        raise PlanInputError(f"{path}: not a Terraform JSON plan (no format_version/terraform_version); "
                             "give `terraform show -json PLAN` output")
    if document.get("errored"):
        raise PlanInputError(f"{path}: the plan errored; fix the plan before reviewing it")
    changes = []
    for index, raw in enumerate(document.get("resource_changes") or []):
        try:
            change = raw["change"]
            changes.append(Change(
                address=raw["address"], type=raw["type"], kind=kind_of(list(change["actions"])),
                before=change.get("before"), after=change.get("after"),
                after_unknown=change.get("after_unknown") or {},
                before_sensitive=change.get("before_sensitive") or {},
                after_sensitive=change.get("after_sensitive") or {},
                replace_paths=tuple(tuple(p) for p in change.get("replace_paths") or ()),
            ))
        except (KeyError, TypeError) as error:
            raise PlanInputError(f"{path}: resource_changes[{index}] is malformed (missing {error})") from error
    return StackPlan(stack=stack or path.stem, source=path, changes=tuple(changes),
                     default_tags=_default_tags(document))


def _default_tags(document: dict[str, Any]) -> dict[str, str]:
    """The aws provider's default_tags, when they are constants in the configuration."""
    provider = dig(document, ("configuration", "provider_config", "aws", "expressions")) or {}
    blocks = provider.get("default_tags") if isinstance(provider, dict) else None
    if isinstance(blocks, list) and blocks:
        tags = dig(blocks[0], ("tags", "constant_value"))
        if isinstance(tags, dict):
            return {str(k): str(v) for k, v in tags.items()}
    return {}
