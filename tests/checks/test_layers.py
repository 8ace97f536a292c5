"""Which way the imports point (docs/architecture.md, "Layers"): each package imports only
what sits below it, read from the source with `ast`, so a stray import fails here, not in review."""
from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
PACKAGES = ("pipeline_lib", "policy", "processor", "stacks", "localdev", "tools", "bench")
# What each package may import of the others (its own modules always).
ALLOWED = {
    "processor": set(),
    "policy": set(),
    "pipeline_lib": {"policy", "processor.metrics", "processor.task_settings", "processor.contract"},
    "stacks": {"pipeline_lib", "policy", "processor.task_settings"},
    "localdev": {"stacks", "pipeline_lib", "processor", "policy"},
    "tools": {"stacks", "pipeline_lib", "policy", "processor", "localdev", "main"},
    "bench": {"stacks", "pipeline_lib", "policy", "processor", "localdev", "tools", "main"},
}


def _imports(path: Path) -> set[str]:
    found: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            found |= {alias.name for alias in node.names}
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            found |= {f"{node.module}.{alias.name}" for alias in node.names}
    return found


def _foreign(package: str) -> list[tuple[str, str]]:
    """(file, module) for every import of another of this repository's packages that `package` may not make."""
    wrong = []
    for path in sorted((ROOT / package).rglob("*.py")):
        for module in _imports(path):
            top = module.split(".")[0]
            if top == package or top not in {*PACKAGES, "main", "tests"}:
                continue
            if not any(module == allowed or module.startswith(f"{allowed}.") for allowed in ALLOWED[package]):
                wrong.append((str(path.relative_to(ROOT)), module))
    return wrong


@pytest.mark.parametrize("package", sorted(ALLOWED))
def test_each_package_imports_only_what_sits_below_it(package: str) -> None:
    assert _foreign(package) == []
