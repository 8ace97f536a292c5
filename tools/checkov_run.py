"""Run checkov over a synthesized app with the project's skip list (policy/checkov_skips.toml).

`python -m tools.checkov_run [cdktf.out]` exits non-zero when any check fails.
"""
from __future__ import annotations

import json
import os
import subprocess
import sys
import tomllib
from collections import Counter
from dataclasses import dataclass
from pathlib import Path

from policy.conventions import PRODUCTION_SUFFIXES

SKIPS_FILE = Path(__file__).resolve().parent.parent / "policy" / "checkov_skips.toml"
SCOPES = ("all", "non-production", "production")


@dataclass(frozen=True)
class CheckovResult:
    passed: int
    failed: int
    parsing_errors: int
    failed_checks: Counter[str]


def load_skips(path: Path = SKIPS_FILE) -> dict[str, dict[str, str]]:
    skips = tomllib.loads(path.read_text()).get("skip", {})
    for check, entry in skips.items():
        if entry.get("scope") not in SCOPES or not entry.get("reason", "").strip():
            raise ValueError(f"{check}: every skip needs a scope in {SCOPES} and a reason")
    return skips


def skips_for(production: bool, skips: dict[str, dict[str, str]] | None = None) -> list[str]:
    skips = load_skips() if skips is None else skips
    wanted = {"all", "production" if production else "non-production"}
    return sorted(c for c, e in skips.items() if e["scope"] in wanted)


def is_production_app(outdir: Path) -> bool:
    suffixes = {p.name.split("-", 1)[1] for p in (outdir / "stacks").iterdir() if p.is_dir()}
    if len(suffixes) != 1:
        raise ValueError(f"{outdir} mixes environments {sorted(suffixes)}; synthesize one at a time")
    return suffixes.pop() in PRODUCTION_SUFFIXES


def run_checkov(outdir: Path, skip_checks: list[str]) -> CheckovResult:
    command = [
        sys.executable, "-m", "checkov.main", "--directory", str(outdir / "stacks"),
        "--framework", "terraform_json", "--output", "json", "--quiet", "--compact",
        "--skip-download",  # offline: no guideline or policy download from the vendor
    ]
    if skip_checks:
        command += ["--skip-check", ",".join(skip_checks)]
    env = {**os.environ, "BC_SKIP_MAPPING": "TRUE", "CHECKOV_RUN_SCA_PACKAGE_SCAN_V2": "false"}
    completed = subprocess.run(command, capture_output=True, text=True, env=env, timeout=600)
    if completed.returncode not in (0, 1) or not completed.stdout.strip():
        raise RuntimeError(f"checkov did not run (exit {completed.returncode}): {completed.stderr[-2000:]}")
    reports = json.loads(completed.stdout)
    reports = reports if isinstance(reports, list) else [reports]
    failed: Counter[str] = Counter()
    passed = parsing = 0
    for report in reports:
        summary = report.get("summary", {})
        passed += summary.get("passed", 0)
        parsing += summary.get("parsing_errors", 0)
        failed.update(f["check_id"] for f in report.get("results", {}).get("failed_checks", []))
    return CheckovResult(passed, sum(failed.values()), parsing, failed)


def main(argv: list[str]) -> int:
    outdir = Path(argv[0]) if argv else Path("cdktf.out")
    skips = skips_for(is_production_app(outdir))
    result = run_checkov(outdir, skips)
    for check, count in sorted(result.failed_checks.items()):
        print(f"FAILED {check} x{count}")
    print(f"checkov: {result.passed} passed, {result.failed} failed, {len(skips)} checks skipped "
          f"(see policy/checkov_skips.toml), {result.parsing_errors} parsing errors")
    return 1 if result.failed or result.parsing_errors else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
