"""`python -m tools.plan [--stack ID ...] [--target local|aws] [--out DIR]`: Terraform plans to review.

Synthesizes the stacks, then per stack runs `terraform init` and `terraform plan` and saves,
in DIR (default `plans/`):

  <stack>.tfplan   the binary plan (what `terraform apply <stack>.tfplan` applies, unchanged)
  <stack>.json     `terraform show -json` of it (what `python -m tools.plan_review` reads)
  <stack>.txt      `terraform show` of it, for people (sensitive values hidden)

The binary and JSON plans hold sensitive values in clear: keep them out of shared places;
`make plan-review` writes masked copies to DIR/redacted/. Files of an earlier run are removed first.

Targets:
  local  the deployment `make demo` left running: its emulator, its state under .local/state,
         its suffix (`local`)
  aws    your AWS credentials; state in the S3 bucket TF_STATE_BUCKET (local state files
         at the project root without it); suffix from ENVIRONMENT_SUFFIX (default dev)
Without --target: local if a local deployment is running, else aws.
"""
from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
import time
from collections.abc import Mapping
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

from localdev.deploy import terraform_env  # tools are the top layer: `make plan` may plan the local deployment
from localdev.session import running_session
from stacks.terraform_cli import automation_env
from stacks.workloads import WORKLOADS

ROOT = Path(__file__).resolve().parent.parent
DEFAULT_OUT = ROOT / "plans"


class PlanError(Exception):
    """A step failed; the message says which and where its output went."""


@dataclass(frozen=True)
class PlanFiles:
    """The files `terraform plan` and `show` wrote for one stack (the reviewable plan is `plan_review.model.StackPlan`)."""
    stack: str
    binary: Path
    json: Path
    text: Path
    changes: bool
    seconds: float


def say(message: str) -> None:
    print(f"[plan] {message}", flush=True)


def terraform(args: list[str], cwd: Path, env: Mapping[str, str], log: Path) -> subprocess.CompletedProcess[str]:
    result = subprocess.run(["terraform", *args], cwd=cwd, env=dict(env), capture_output=True, text=True, check=False)
    with open(log, "a", encoding="utf-8") as handle:
        handle.write(f"$ terraform {' '.join(args)}\n{result.stdout}{result.stderr}\n")
    return result


def plan_stack(stack_dir: Path, out: Path, env: Mapping[str, str],
               backend_config: Mapping[str, str] | None = None, destroy: bool = False) -> PlanFiles:
    """init + plan + show for one synthesized stack directory; files named after the directory.

    `backend_config` overrides backend settings at init (e.g. {"path": ...} for a copy of a
    local state); the synthesized configuration itself is not touched. `destroy` plans the
    stack's removal (`terraform plan -destroy`).
    """
    stack = stack_dir.name
    out.mkdir(parents=True, exist_ok=True)
    log = out / f"{stack}.log"
    log.write_text("")
    started = time.monotonic()
    shutil.rmtree(stack_dir / ".terraform", ignore_errors=True)  # an init for another backend would refuse
    init = ["init", "-input=false", "-no-color", "-reconfigure"]
    init += [f"-backend-config={key}={value}" for key, value in (backend_config or {}).items()]
    if terraform(init, stack_dir, env, log).returncode != 0:
        raise PlanError(f"terraform init failed for {stack}; see {log}")
    binary = out / f"{stack}.tfplan"
    planned = terraform(["plan", "-input=false", "-no-color", "-detailed-exitcode", f"-out={binary}",
                         *(["-destroy"] if destroy else [])], stack_dir, env, log)
    if planned.returncode not in (0, 2):
        tail = "\n".join((planned.stdout + planned.stderr).strip().splitlines()[-15:])
        raise PlanError(f"terraform plan failed for {stack} (log {log}):\n{tail}")
    shown = terraform(["show", "-json", str(binary)], stack_dir, env, log)
    text = terraform(["show", "-no-color", str(binary)], stack_dir, env, log)
    if shown.returncode != 0 or text.returncode != 0:
        raise PlanError(f"terraform show failed for {stack}; see {log}")
    json_path, text_path = out / f"{stack}.json", out / f"{stack}.txt"
    json_path.write_text(shown.stdout)
    text_path.write_text(text.stdout)
    return PlanFiles(stack, binary, json_path, text_path, planned.returncode == 2, time.monotonic() - started)


def target_environment(target: str | None) -> tuple[dict[str, str], str, str]:
    """The environment Terraform and the synth run with, the suffix, and a line saying where.
    `target` None: local if a local deployment is running, else aws."""
    session = running_session() if target in (None, "local") else None
    if session is not None:
        return terraform_env(session), session.suffix, f"the local emulator at {session.endpoint}"
    if target == "local":
        raise PlanError("no local deployment is running: `make demo` (or python -m localdev up) first, "
                        "or plan against AWS with --target aws")
    suffix = os.environ.get("ENVIRONMENT_SUFFIX", "").strip() or "dev"
    bucket = os.environ.get("TF_STATE_BUCKET", "").strip()
    where = f"AWS, state in s3://{bucket}" if bucket else "AWS, local state files at the project root"
    return automation_env(ENVIRONMENT_SUFFIX=suffix), suffix, where


def synth(env: Mapping[str, str], log: Path) -> None:
    result = subprocess.run([sys.executable, "main.py"], cwd=ROOT, env=dict(env), capture_output=True, text=True,
                            check=False)
    log.write_text(result.stdout + result.stderr)
    if result.returncode != 0:
        raise PlanError(f"synth failed:\n{(result.stdout + result.stderr).strip()[-2000:]}")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m tools.plan", description=__doc__.split("\n\n")[0],
                                     epilog=__doc__.split("\n\n", 1)[1],
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--stack", action="append", default=[],
                        help="a stack id (retail-dev) or workload (retail); repeatable; default both")
    parser.add_argument("--target", choices=["local", "aws"], help="where to plan against (default: see below)")
    parser.add_argument("--out", type=Path, default=DEFAULT_OUT, help="directory for the plan files (default plans/)")
    args = parser.parse_args(argv)
    try:
        env, suffix, where = target_environment(args.target)
        stacks = select_stacks(args.stack, suffix)
        say(f"target: {where}; stacks: {', '.join(stacks)}")
        clear(args.out)
        synth(env, args.out / "synth.log")
        with ThreadPoolExecutor(max_workers=len(stacks)) as pool:
            plans = list(pool.map(lambda s: plan_stack(ROOT / "cdktf.out" / "stacks" / s, args.out, env), stacks))
    except PlanError as error:
        print(f"plan: {error}", file=sys.stderr)
        return 1
    for plan in plans:
        state = "changes" if plan.changes else "no changes"
        say(f"{plan.stack}: {state} ({plan.seconds:.0f} s): {display(plan.binary)}, {display(plan.json)}")
    return 0


def clear(out: Path) -> None:
    """Plans of an earlier run must not end up in this run's review."""
    out.mkdir(parents=True, exist_ok=True)
    for pattern in ("*.tfplan", "*.json", "*.txt", "*.log", "report.md", "redacted/*.json"):
        for path in out.glob(pattern):
            path.unlink()


def select_stacks(requested: list[str], suffix: str) -> list[str]:
    known = [f"{workload}-{suffix}" for workload in WORKLOADS]
    if not requested:
        return known
    chosen: list[str] = []
    for name in requested:
        stack = name if name in known else f"{name}-{suffix}" if name in WORKLOADS else None
        if stack is None:
            raise PlanError(f"unknown stack {name!r} for suffix {suffix!r}; expected one of {', '.join(known)}")
        if stack not in chosen:
            chosen.append(stack)
    return chosen


def display(path: Path) -> str:
    try:
        return str(path.resolve().relative_to(ROOT))
    except ValueError:
        return str(path)


if __name__ == "__main__":
    sys.exit(main())
