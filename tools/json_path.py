"""One value inside parsed JSON (a Terraform plan, a synthesized stack), by a path of keys and indexes."""
from __future__ import annotations

from typing import Any


def dig(node: Any, path: tuple[Any, ...] | list[Any], *, single_blocks: bool = False) -> Any:
    """The value at `path`, or None where the path leads nowhere.

    `single_blocks`: index 0 into an object stays on the object, for nested blocks that
    synthesized JSON writes as an object and a plan as a one-item list.
    """
    for step in path:
        if single_blocks and isinstance(node, dict) and step == 0:
            continue
        if isinstance(node, dict) and isinstance(step, str):
            node = node.get(step)
        elif isinstance(node, list) and isinstance(step, int) and 0 <= step < len(node):
            node = node[step]
        else:
            return None
    return node
