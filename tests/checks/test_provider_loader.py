"""The lazy provider bindings change nothing but speed: output is byte-identical."""
from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from bench.bench_synth import identical_trees

pytestmark = pytest.mark.checks
ROOT = Path(__file__).resolve().parents[2]


def _synth(outdir: Path, mode: str) -> None:
    env = {**os.environ, "CDKTF_OUTDIR": str(outdir), "PIPELINE_PROVIDER_IMPORT": mode, "ENVIRONMENT_SUFFIX": "dev"}
    result = subprocess.run([sys.executable, "main.py"], cwd=ROOT, env=env, capture_output=True, text=True,
                            timeout=300)
    assert result.returncode == 0, result.stderr


def test_lazy_and_stock_provider_imports_synthesize_identical_json(tmp_path: Path) -> None:
    _synth(tmp_path / "lazy", "lazy")
    _synth(tmp_path / "full", "full")
    assert identical_trees(tmp_path / "lazy", tmp_path / "full")
    assert (tmp_path / "lazy" / "stacks" / "retail-dev" / "cdk.tf.json").stat().st_size > 10_000
