"""One stack's plan, read from `terraform show -json`: its resource changes, in our words."""
from __future__ import annotations

import codecs
import json
import re
from collections.abc import Iterator
from dataclasses import dataclass, field
from functools import cached_property
from pathlib import Path
from typing import Any

from policy.conventions import PRODUCTION_SUFFIXES
from tools.json_path import dig

CHANGE_KINDS = ("create", "update", "replace", "delete", "forget", "no-op")
FORMAT_MAJOR = "1"  # the JSON plan format's major version this reader understands


class PlanInputError(Exception):
    """The file is not a Terraform JSON plan we can read; the message says why."""


@dataclass(frozen=True)
class Change:
    address: str
    type: str
    kind: str  # one of CHANGE_KINDS, or "read" for data sources read during apply
    before: Any
    after: Any
    after_unknown: Any
    before_sensitive: Any
    after_sensitive: Any
    replace_paths: tuple[tuple[Any, ...], ...] = ()
    mode: str = "managed"  # "data" for a data source (the plan's own field: addresses can look alike)
    actions: tuple[str, ...] = ()  # as the plan lists them; ("create", "forget") keeps the old object
    action_reason: str = ""  # replace_because_tainted, delete_because_no_resource_config, ...
    deposed: str = ""  # the deposed object's key: a leftover of an interrupted create-before-destroy
    previous_address: str = ""  # where a `moved` block moved it from
    importing: bool = False

    @property
    def managed(self) -> bool:
        return self.mode == "managed"

    @property
    def forgets_old(self) -> bool:
        """A replacement whose old object leaves the state but is not destroyed (`removed` with destroy = false)."""
        return self.kind == "replace" and "forget" in self.actions

    def before_value(self, *path: Any) -> Any:
        return dig(self.before, path)

    def after_value(self, *path: Any) -> Any:
        return dig(self.after, path)

    def unknown(self, *path: Any) -> bool:
        """True when the value at `path` (or one of its parents) is known only after apply."""
        return marked(self.after_unknown, path)


@dataclass(frozen=True)
class OutputChange:
    """A root module output the plan changes (what other stacks and `cdktf output` read)."""
    name: str
    kind: str
    before: Any
    after: Any
    unknown: bool
    sensitive: bool


@dataclass(frozen=True)
class StackPlan:
    stack: str
    source: Path
    changes: tuple[Change, ...]
    default_tags: dict[str, str] = field(default_factory=dict)
    accounts: frozenset[str] = frozenset()  # the deploying account(s), as far as the plan says
    region: str = ""  # the aws provider's region, when a constant in the configuration
    # Per resource address (without index), per attribute: the resource addresses its expression names.
    references: dict[str, dict[str, tuple[str, ...]]] = field(default_factory=dict)
    drift: tuple[Change, ...] = ()  # what changed outside Terraform since the last apply (`resource_drift`)
    complete: bool = True  # False for a `-target` plan, or one with deferred changes: not every change is in it
    deferred: tuple[tuple[str, str], ...] = ()  # (address, reason) of changes deferred to a later plan
    failed_checks: tuple[tuple[str, str, str], ...] = ()  # (check address, status, problem) of `checks` that fail
    # Every string the plan marks sensitive somewhere (long enough not to be a common word): the report
    # masks their copies where the plan forgot to mark them (a token pasted into a task's environment).
    secrets: frozenset[str] = frozenset()
    # Per resource address (module path kept, instance keys dropped), per attribute: the data sources it reads.
    data_references: dict[str, dict[str, tuple[str, ...]]] = field(default_factory=dict)
    outputs: tuple[OutputChange, ...] = ()

    def deleted(self, type_: str) -> Iterator[Change]:
        """The resources of one type this plan deletes (or replaces)."""
        return (c for c in self.changes if c.type == type_ and c.kind in ("delete", "replace"))

    @cached_property
    def deleted_buckets(self) -> frozenset[Any]:
        """The names of the buckets this plan deletes (looked up once: a destroy plan holds thousands of companions)."""
        return frozenset(c.before_value("bucket") for c in self.deleted("aws_s3_bucket")
                         if c.kind == "delete" and isinstance(c.before_value("bucket"), str))

    @property
    def suffix(self) -> str:
        return self.default_tags.get("Environment") or self.stack.split("-", 1)[-1]

    @property
    def production(self) -> bool:
        return self.suffix in PRODUCTION_SUFFIXES

    @property
    def workload(self) -> str:
        return self.default_tags.get("Workload") or self.stack.split("-", 1)[0]

    def counts(self) -> dict[str, int]:
        counted = dict.fromkeys(CHANGE_KINDS, 0)
        for change in self.changes:
            if change.managed and change.kind in counted:
                counted[change.kind] += 1
        return counted

    def managed_changes(self) -> Iterator[Change]:
        return (c for c in self.changes if c.managed and c.kind != "no-op")


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
    if actions == ["forget"]:  # a `removed` block with `destroy = false`: out of the state, left in AWS
        return "forget"
    if sorted(actions) == ["create", "forget"]:  # the old object forgotten (left in AWS), a new one created
        return "replace"
    raise PlanInputError(f"unknown action list {actions}")


def load(path: Path, stack: str | None = None) -> StackPlan:
    """Read one plan. The stack is named after the file (`retail-dev.json` -> retail-dev) unless given."""
    try:
        raw = path.read_bytes()
    except OSError as error:
        raise PlanInputError(f"{path}: cannot read: {error.strerror or error}") from error
    if raw.startswith(b"PK\x03\x04"):
        raise PlanInputError(f"{path}: a binary plan file; review its JSON instead: "
                             f"`terraform show -json {path.name} > {path.stem}.json`")
    try:
        # PowerShell's `>` writes UTF-16 with a byte order mark; some editors add one to UTF-8
        text = raw.decode("utf-16") if raw.startswith((codecs.BOM_UTF16_LE, codecs.BOM_UTF16_BE)) \
            else raw.decode("utf-8-sig")
        document = json.loads(text)
    except (UnicodeDecodeError, json.JSONDecodeError) as error:
        raise PlanInputError(f"{path}: not JSON ({error}); give `terraform show -json PLAN` output") from error
    if not isinstance(document, dict) or "format_version" not in document or "terraform_version" not in document:
        raise PlanInputError(f"{path}: not a Terraform JSON plan (no format_version/terraform_version); "
                             "give `terraform show -json PLAN` output")
    major = str(document["format_version"]).split(".", 1)[0]
    if major != FORMAT_MAJOR:
        raise PlanInputError(f"{path}: JSON plan format {document['format_version']}, but this review reads "
                             f"format {FORMAT_MAJOR}.x only; its meaning may have changed, so it is not guessed at")
    if "planned_values" not in document:
        what = "a Terraform state (`terraform show -json` without a plan file)" if "values" in document \
            else "not a Terraform JSON plan (no planned_values)"
        raise PlanInputError(f"{path}: {what}; give `terraform show -json PLAN` output")
    if document.get("errored"):
        raise PlanInputError(f"{path}: the plan errored; fix the plan before reviewing it")
    changes = _changes(path, document, "resource_changes")
    drift = _changes(path, document, "resource_drift")
    outputs = []
    for name, output in sorted((document.get("output_changes") or {}).items()):
        if not isinstance(output, dict) or list(output.get("actions") or []) == ["no-op"]:
            continue
        outputs.append(OutputChange(
            name=str(name), kind=kind_of(list(output.get("actions") or [])), before=output.get("before"),
            after=output.get("after"), unknown=bool(output.get("after_unknown")),
            sensitive=bool(output.get("before_sensitive") or output.get("after_sensitive"))))
    region = dig(document, ("configuration", "provider_config", "aws", "expressions", "region", "constant_value"))
    deferred = tuple((str(dig(d, ("resource_change", "address"))), str(d.get("reason") or ""))
                     for d in document.get("deferred_changes") or [] if isinstance(d, dict))
    return StackPlan(stack=stack or path.stem, source=path, changes=changes, drift=drift, outputs=tuple(outputs),
                     complete=document.get("complete") is not False and not deferred, deferred=deferred,
                     failed_checks=_failed_checks(document), data_references=_data_references(document),
                     secrets=_sensitive_strings(document),
                     default_tags=_default_tags(document), accounts=_accounts(document),
                     region=region if isinstance(region, str) else "", references=_references(document))


MIN_SECRET = 8  # shorter sensitive strings ("dev", "5432") are not hunted for elsewhere in the report


def _marked_strings(value: Any, sensitive: Any, found: set[str]) -> None:
    if sensitive is True:
        stack = [value]
        while stack:
            node = stack.pop()
            if isinstance(node, dict):
                stack.extend(node.values())
            elif isinstance(node, list):
                stack.extend(node)
            elif isinstance(node, str) and len(node) >= MIN_SECRET:
                found.add(node)
    elif isinstance(value, dict) and isinstance(sensitive, dict):
        for key, item in value.items():
            _marked_strings(item, sensitive.get(key), found)
    elif isinstance(value, list) and isinstance(sensitive, list):
        for item, marker in zip(value, sensitive, strict=False):
            _marked_strings(item, marker, found)


def sensitive_places(document: dict[str, Any]) -> Iterator[tuple[dict[str, Any], str, Any]]:
    """Where a plan document holds values it marks sensitive, as (holder, key, marker): the value is
    `holder[key]`, the marker its `*_sensitive` tree (True: the whole value). The resource changes, the drift
    (values from before someone changed them outside Terraform) and the deferred changes, before and after;
    the output changes; and the root variables declared `sensitive`, which `variables` holds in clear."""
    changes = [*(document.get("resource_changes") or []), *(document.get("resource_drift") or []),
               *(d.get("resource_change") or {} for d in document.get("deferred_changes") or [] if isinstance(d, dict))]
    for raw in changes:
        change = raw.get("change") if isinstance(raw, dict) else None
        if isinstance(change, dict):
            for side in ("before", "after"):
                yield change, side, change.get(f"{side}_sensitive")
    for output in (document.get("output_changes") or {}).values():
        if isinstance(output, dict):
            for side in ("before", "after"):
                yield output, side, output.get(f"{side}_sensitive")
    declared = dig(document, ("configuration", "root_module", "variables")) or {}
    for name, variable in (document.get("variables") or {}).items():
        if isinstance(variable, dict) and isinstance(declared, dict) and (declared.get(name) or {}).get("sensitive"):
            yield variable, "value", True


def _sensitive_strings(document: dict[str, Any]) -> frozenset[str]:
    found: set[str] = set()
    for holder, key, marker in sensitive_places(document):
        _marked_strings(holder.get(key), marker, found)
    return frozenset(found)


def _failed_checks(document: dict[str, Any]) -> tuple[tuple[str, str, str], ...]:
    """`check` blocks, preconditions and postconditions whose status is fail or error: Terraform only warns."""
    found = []
    for result in document.get("checks") or []:
        if not isinstance(result, dict) or result.get("status") not in ("fail", "error"):
            continue
        for instance in result.get("instances") or [{}]:
            if isinstance(instance, dict) and instance.get("status", result["status"]) in ("fail", "error"):
                address = dig(instance, ("address", "to_display")) or dig(result, ("address", "to_display"))
                problems = [str(p.get("message")) for p in instance.get("problems") or [] if isinstance(p, dict)]
                found.append((str(address), str(instance.get("status", result["status"])), "; ".join(problems)))
    return tuple(found)


def _changes(path: Path, document: dict[str, Any], section: str) -> tuple[Change, ...]:
    """The `resource_changes` (or `resource_drift`) of a plan document as Change objects."""
    changes = []
    for index, raw_change in enumerate(document.get(section) or []):
        try:
            change = raw_change["change"]
            address = raw_change["address"]
            mode = raw_change.get("mode") or ("data" if re.match(r"^(module\.[^.]+(\[[^\]]*\])?\.)*data\.", address)
                                              else "managed")
            changes.append(Change(
                address=address, type=raw_change["type"], kind=kind_of(list(change["actions"])),
                before=change.get("before"), after=change.get("after"),
                after_unknown=change.get("after_unknown") or {},
                before_sensitive=change.get("before_sensitive") or {},
                after_sensitive=change.get("after_sensitive") or {},
                replace_paths=tuple(tuple(p) for p in change.get("replace_paths") or ()),
                mode=str(mode), actions=tuple(change["actions"]), action_reason=str(raw_change.get("action_reason") or ""),
                deposed=str(raw_change.get("deposed") or ""), previous_address=str(raw_change.get("previous_address") or ""),
                importing=bool(change.get("importing")),
            ))
        except (KeyError, TypeError) as error:
            raise PlanInputError(f"{path}: {section}[{index}] is malformed (missing {error})") from error
        except PlanInputError as error:
            raise PlanInputError(f"{path}: {section}[{index}] ({raw_change.get('address')}): {error}") from error
    return tuple(changes)


def _references(document: dict[str, Any]) -> dict[str, dict[str, tuple[str, ...]]]:
    """What each configured resource's attributes refer to (`configuration.root_module.resources`)."""
    found: dict[str, dict[str, tuple[str, ...]]] = {}
    for resource in dig(document, ("configuration", "root_module", "resources")) or []:
        if not isinstance(resource, dict) or resource.get("mode") != "managed":
            continue
        per_attribute = {}
        for attribute, expression in (resource.get("expressions") or {}).items():
            names = [_resource_address(r) for r in _expression_references(expression)]
            if names := [n for n in dict.fromkeys(names) if n]:
                per_attribute[attribute] = tuple(names)
        found[str(resource.get("address"))] = per_attribute
    return found


def _data_references(document: dict[str, Any]) -> dict[str, dict[str, tuple[str, ...]]]:
    """Which data sources each configured resource's attributes read, in every module."""
    found: dict[str, dict[str, tuple[str, ...]]] = {}

    def walk(module: Any, prefix: str) -> None:
        if not isinstance(module, dict):
            return
        for resource in module.get("resources") or []:
            if not isinstance(resource, dict) or resource.get("mode") != "managed":
                continue
            per_attribute = {}
            for attribute, expression in (resource.get("expressions") or {}).items():
                names = [prefix + ".".join(r.split(".")[:3]).split("[", 1)[0]
                         for r in _expression_references(expression) if r.startswith("data.")]
                if names:
                    per_attribute[attribute] = tuple(dict.fromkeys(names))
            if per_attribute:
                found[prefix + str(resource.get("address"))] = per_attribute
        for name, call in (module.get("module_calls") or {}).items():
            walk(call.get("module") if isinstance(call, dict) else None, f"{prefix}module.{name}.")

    walk(dig(document, ("configuration", "root_module")), "")
    return found


def configured_address(address: str) -> str:
    """`module.a["x"].aws_iam_role_policy.p[0]` -> `module.a.aws_iam_role_policy.p`: the block in the configuration."""
    return re.sub(r'\[(?:"(?:[^"\\]|\\.)*"|[^\]]*)\]', "", address)


def _expression_references(expression: Any) -> Iterator[str]:
    if isinstance(expression, dict):
        for key, value in expression.items():
            if key == "references" and isinstance(value, list):
                yield from (str(v) for v in value)
            else:
                yield from _expression_references(value)
    elif isinstance(expression, list):
        for item in expression:
            yield from _expression_references(item)


def _resource_address(reference: str) -> str:
    """`aws_subnet.a.id` -> `aws_subnet.a`; data sources, variables and locals -> ''."""
    parts = reference.split(".")
    if len(parts) < 2 or parts[0] in ("data", "var", "local", "module", "each", "count", "path", "self"):
        return ""
    return ".".join(parts[:2]).split("[", 1)[0]


ACCOUNT_IN_ARN = re.compile(r"^arn:aws[a-z-]*:[a-z0-9-]+:[a-z0-9-]*:(\d{12}):")


def _accounts(document: dict[str, Any]) -> frozenset[str]:
    """The account the stack deploys to: its caller identity, else the accounts in its resources' ARNs."""
    found: set[str] = set()
    arns: set[str] = set()
    for module in _modules(dig(document, ("prior_state", "values", "root_module"))):
        for resource in module.get("resources") or []:
            values = resource.get("values") if isinstance(resource, dict) else None
            if not isinstance(values, dict):
                continue
            if resource.get("type") == "aws_caller_identity" and isinstance(values.get("account_id"), str):
                found.add(values["account_id"])
            if isinstance(values.get("arn"), str) and (match := ACCOUNT_IN_ARN.match(values["arn"])):
                arns.add(match.group(1))
    return frozenset(found or arns)


def _modules(module: Any) -> Iterator[dict[str, Any]]:
    if isinstance(module, dict):
        yield module
        for child in module.get("child_modules") or []:
            yield from _modules(child)


def _default_tags(document: dict[str, Any]) -> dict[str, str]:
    """The aws provider's default_tags, when they are constants in the configuration."""
    provider = dig(document, ("configuration", "provider_config", "aws", "expressions")) or {}
    blocks = provider.get("default_tags") if isinstance(provider, dict) else None
    if isinstance(blocks, list) and blocks:
        tags = dig(blocks[0], ("tags", "constant_value"))
        if isinstance(tags, dict):
            return {str(k): str(v) for k, v in tags.items()}
    return {}
