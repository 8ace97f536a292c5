"""Run every rule over a synthesized app, minus the documented suppressions."""
from __future__ import annotations

import tomllib
from dataclasses import dataclass
from pathlib import Path

from policy.rules import RULES, Finding
from policy.stack_json import StackJson

SUPPRESSIONS_FILE = Path(__file__).with_name("suppressions.toml")


@dataclass(frozen=True)
class Suppression:
    rule: str
    resource: str  # construct path, e.g. "retail-dev/processor/task-policy"
    reason: str


def load_suppressions(path: Path = SUPPRESSIONS_FILE) -> list[Suppression]:
    if not path.exists():
        return []
    entries = tomllib.loads(path.read_text()).get("suppression", [])
    suppressions = []
    for entry in entries:
        if not entry.get("reason", "").strip():
            raise ValueError(f"suppression of {entry.get('rule')} on {entry.get('resource')} needs a reason")
        if entry.get("rule") not in RULES:
            raise ValueError(f"suppression names unknown rule {entry.get('rule')!r}")
        suppressions.append(Suppression(entry["rule"], entry["resource"], entry["reason"]))
    return suppressions


def check_app(stacks: list[StackJson], suppressions: list[Suppression] | None = None) -> list[Finding]:
    suppressed = {(s.rule, s.resource) for s in (load_suppressions() if suppressions is None else suppressions)}
    findings = []
    for stack in stacks:
        for name, function in RULES.items():
            findings += [f for f in function(stack) if (name, f.resource) not in suppressed]
    return findings
