"""Synthesized documents (policies, rules) bound to the resources of an emulator: what the tests and
benchmarks deploy is the stack's own text, with each Terraform reference replaced by a real value."""
from __future__ import annotations

import re

from policy.stack_json import StackJson

TOKEN = re.compile(r"\$\{([^}]+)\}")


def bind(text: str, values: dict[str, str]) -> str:
    """A synthesized document with each Terraform reference replaced by this caller's resource
    (`type.attribute` -> value); a reference the caller does not bind fails by name."""
    def value(match: re.Match) -> str:
        parts = match.group(1).split(".")
        parts = parts[1:] if parts[0] == "data" else parts
        reference = f"{parts[0]}.{parts[-1]}"
        if reference not in values:
            raise AssertionError(f"the caller does not bind {match.group(0)}")
        return values[reference]
    return TOKEN.sub(value, text)


def synthesized(stack: StackJson, type_: str, path_suffix: str, attribute: str) -> str:
    """One attribute of the one resource of `type_` whose construct path ends so."""
    (found,) = [r for r in stack.resources(type_) if r.path.endswith(path_suffix)]
    return found.config[attribute]
