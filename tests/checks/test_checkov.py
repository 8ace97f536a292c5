"""checkov over the synthesized JSON: zero failures, and no stale or missing skips."""
from __future__ import annotations

from pathlib import Path

import pytest

from tools.checkov_run import load_skips, run_checkov, skips_for

pytestmark = pytest.mark.checks


@pytest.fixture(scope="module", params=["dev", "prod"])
def environment(request: pytest.FixtureRequest, dev_outdir: Path, prod_outdir: Path) -> tuple[str, Path]:
    return request.param, {"dev": dev_outdir, "prod": prod_outdir}[request.param]


def test_checkov_finds_no_failed_check_with_the_documented_skips(environment: tuple[str, Path]) -> None:
    name, outdir = environment
    result = run_checkov(outdir, skips_for(production=name == "prod"))
    assert result.parsing_errors == 0
    assert dict(result.failed_checks) == {}
    assert result.passed > 300  # both stacks were really scanned


def test_every_skip_is_still_needed_and_nothing_else_fails(environment: tuple[str, Path]) -> None:
    name, outdir = environment
    result = run_checkov(outdir, [])
    assert set(result.failed_checks) == set(skips_for(production=name == "prod"))


def test_every_skip_has_a_scope_and_a_reason() -> None:
    skips = load_skips()
    assert skips and all(len(entry["reason"]) > 40 for entry in skips.values())
