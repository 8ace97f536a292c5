"""`terraform validate` of both synthesized stacks, offline, against the provider mirror."""
from __future__ import annotations

import json
import os
import shutil
import subprocess
from pathlib import Path

import pytest

from stacks.terraform_cli import resolve

pytestmark = pytest.mark.checks


@pytest.fixture(scope="module")
def terraform_env() -> dict[str, str]:
    if shutil.which("terraform") is None:
        pytest.fail("terraform is not installed; `make setup` expects Terraform >= 1.10 on PATH")
    config, _ = resolve()
    return {**os.environ, "TF_CLI_CONFIG_FILE": str(config), "TF_IN_AUTOMATION": "1", "CHECKPOINT_DISABLE": "1"}


@pytest.mark.parametrize("stack_id", ["retail-dev", "factory-dev"])
def test_synthesized_stack_passes_terraform_validate(
    stack_id: str, dev_outdir: Path, tmp_path: Path, terraform_env: dict[str, str]
) -> None:
    workdir = tmp_path / stack_id
    shutil.copytree(dev_outdir / "stacks" / stack_id, workdir)
    init = subprocess.run(["terraform", "init", "-backend=false", "-input=false", "-no-color"], cwd=workdir,
                          env=terraform_env, capture_output=True, text=True, timeout=300)
    assert init.returncode == 0, init.stdout + init.stderr
    validate = subprocess.run(["terraform", "validate", "-json", "-no-color"], cwd=workdir, env=terraform_env,
                              capture_output=True, text=True, timeout=300)
    report = json.loads(validate.stdout)
    assert report["valid"] is True, report["diagnostics"]
    assert report["error_count"] == 0 and report["warning_count"] == 0, report["diagnostics"]
