"""Run checkov over a synthesized app with the project's skip list (policy/checkov_skips.toml).

`python -m tools.checkov_run [cdktf.out]` exits non-zero when any check fails or a resource pattern is stale.

A skip without `resources` turns its check off (`--skip-check`). A skip with `resources` leaves the check on
and drops only the failures whose resource address matches one of its patterns, so every other resource is
still checked: a new bucket without access logging fails even though the log buckets' own skip exists. A
pattern that drops no failure in a synth its scope covers is stale and fails the run too: a skip must not
outlive its resource.
"""
from __future__ import annotations

import json
import os
import subprocess
import sys
import tomllib
from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from fnmatch import fnmatchcase
from pathlib import Path
from typing import Any

from policy.conventions import PRODUCTION_SUFFIXES

SKIPS_FILE = Path(__file__).resolve().parent.parent / "policy" / "checkov_skips.toml"
SCOPES = ("all", "non-production", "production")
ENTRY_KEYS = frozenset({"scope", "reason", "resources"})


class SkipFileError(ValueError):
    """policy/checkov_skips.toml holds an entry the runner cannot apply as written."""


@dataclass(frozen=True)
class Skip:
    """One entry of the skip file. `resources` holds glob patterns (fnmatch, case-sensitive) over the resource
    address checkov reports for a failure: `<type>.<logical id>` (e.g.
    `aws_s3_bucket.catalog-api_access-log-bucket_*`), or `resource.<logical id>` for some checks (CKV_AWS_338);
    empty means the whole check is skipped."""

    check: str
    scope: str
    reason: str
    resources: tuple[str, ...] = ()

    def covers(self, resource: str) -> bool:
        return not self.resources or any(fnmatchcase(resource, pattern) for pattern in self.resources)


@dataclass(frozen=True)
class Failure:
    check: str
    resource: str
    file: str


@dataclass(frozen=True)
class CheckovResult:
    passed: int
    parsing_errors: int
    failures: tuple[Failure, ...]  # what fails the run: after every skip
    dropped: tuple[Failure, ...]  # failures a resource-scoped skip dropped
    unused_patterns: tuple[tuple[str, str], ...]  # (check, pattern) that dropped no failure in this synth

    @property
    def failed(self) -> int:
        return len(self.failures)

    @property
    def failed_checks(self) -> Counter[str]:
        return Counter(f.check for f in self.failures)


def _entry(check: str, entry: Any) -> Skip:
    if not isinstance(entry, dict):
        raise SkipFileError(f"{check}: a skip is a table [skip.{check}] (or tables [[skip.{check}]]) "
                            "with scope and reason")
    unknown = sorted(set(entry) - ENTRY_KEYS)
    if unknown:
        raise SkipFileError(f"{check}: unknown key(s) {unknown}; a skip has {sorted(ENTRY_KEYS)}")
    scope, reason = entry.get("scope"), entry.get("reason")
    if scope not in SCOPES:
        raise SkipFileError(f"{check}: scope is {scope!r}; it must be one of {SCOPES}")
    if not isinstance(reason, str) or not reason.strip():
        raise SkipFileError(f"{check}: every skip needs a reason")
    resources = entry.get("resources", ())
    if "resources" in entry:
        if not isinstance(resources, list) or not resources:
            raise SkipFileError(f"{check}: resources must be a non-empty list of patterns "
                                "(leave the key out to skip the check for every resource)")
        if not all(isinstance(p, str) and p and p.strip() == p for p in resources):
            raise SkipFileError(f"{check}: each resource pattern is a non-empty string without surrounding spaces")
        if len(set(resources)) != len(resources):
            raise SkipFileError(f"{check}: resources lists a pattern twice")
    return Skip(check=check, scope=scope, reason=reason, resources=tuple(resources))


def load_skips(path: Path = SKIPS_FILE) -> list[Skip]:
    """Every entry of the skip file, validated. A check has one table, or several ([[skip.<id>]]) when parts
    of it are skipped for different resources, scopes or reasons; several must each name their resources."""
    try:
        document = tomllib.loads(path.read_text())
    except tomllib.TOMLDecodeError as error:
        raise SkipFileError(f"{path}: not valid TOML: {error}") from error
    extra = sorted(set(document) - {"skip"})
    if extra:
        raise SkipFileError(f"{path}: unknown top-level key(s) {extra}; every entry is a [skip.<check id>] table")
    skips: list[Skip] = []
    for check, entries in document.get("skip", {}).items():
        entries = entries if isinstance(entries, list) else [entries]
        parsed = [_entry(check, entry) for entry in entries]
        if len(parsed) > 1 and not all(s.resources for s in parsed):
            raise SkipFileError(f"{check}: has {len(parsed)} entries, so each must name its resources "
                                "(a whole-check skip beside them would make them meaningless)")
        skips += parsed
    return skips


def skips_for(production: bool, skips: list[Skip] | None = None) -> list[Skip]:
    skips = load_skips() if skips is None else skips
    wanted = {"all", "production" if production else "non-production"}
    return sorted((s for s in skips if s.scope in wanted), key=lambda s: (s.check, s.scope))


def is_production_app(outdir: Path) -> bool:
    suffixes = {p.name.split("-", 1)[1] for p in (outdir / "stacks").iterdir() if p.is_dir()}
    if len(suffixes) != 1:
        raise ValueError(f"{outdir} mixes environments {sorted(suffixes)}; synthesize one at a time")
    return suffixes.pop() in PRODUCTION_SUFFIXES


def _checkov_reports(outdir: Path, skip_checks: Sequence[str]) -> list[dict[str, Any]]:
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
    return reports if isinstance(reports, list) else [reports]


def _failures(records: Iterable[dict[str, Any]]) -> list[Failure]:
    return [Failure(r["check_id"], r["resource"], r.get("file_path", "")) for r in records]


def run_checkov(outdir: Path, skips: Sequence[Skip]) -> CheckovResult:
    """checkov over `outdir/stacks` with `skips` (those skips_for chose for this synth) applied."""
    whole = {s.check for s in skips if not s.resources}
    narrowed = [s for s in skips if s.resources and s.check not in whole]
    reports = _checkov_reports(outdir, sorted(whole))
    passed = parsing = 0
    kept: list[Failure] = []
    dropped: list[Failure] = []
    for report in reports:
        summary = report.get("summary", {})
        passed += summary.get("passed", 0)
        parsing += summary.get("parsing_errors", 0)
        for failure in _failures(report.get("results", {}).get("failed_checks", [])):
            covered = any(s.check == failure.check and s.covers(failure.resource) for s in narrowed)
            (dropped if covered else kept).append(failure)
    unused = tuple((s.check, p) for s in narrowed for p in s.resources
                   if not any(f.check == s.check and fnmatchcase(f.resource, p) for f in dropped))
    return CheckovResult(passed, parsing, tuple(kept), tuple(dropped), unused)


def main(argv: list[str]) -> int:
    outdir = Path(argv[0]) if argv else Path("cdktf.out")
    skips = skips_for(is_production_app(outdir))
    result = run_checkov(outdir, skips)
    for failure in sorted(result.failures, key=lambda f: (f.check, f.resource)):
        print(f"FAILED {failure.check} {failure.resource} ({failure.file.lstrip('/')})")
    for check, pattern in result.unused_patterns:
        print(f"STALE {check} resources pattern {pattern!r}: no failure of this synth matches it "
              "(remove it, or narrow its scope to the environments that have the resource)")
    whole = sum(1 for s in skips if not s.resources)
    print(f"checkov: {result.passed} passed, {result.failed} failed, {whole} checks skipped, "
          f"{len(result.dropped)} failures dropped by {len(skips) - whole} resource-scoped skips "
          f"(see policy/checkov_skips.toml), {result.parsing_errors} parsing errors")
    return 1 if result.failed or result.parsing_errors or result.unused_patterns else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
