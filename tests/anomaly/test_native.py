"""The compiled detector runs only when it was built from today's detector.py; otherwise the pure one does."""
from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from processor.anomaly import native

REPO = native.SOURCE.parents[2]
BUILT, WHY = native.compiled_module()
needs_build = pytest.mark.skipif(BUILT is None, reason=f"no current mypyc build of detector.py: {WHY}")
WHICH = ("from processor.anomaly import native, detector; "
         "print(native.implementation().name, detector.__name__, detector.observe.__class__.__name__)")


def copy_of_the_package(into: Path) -> Path:
    """processor/__init__.py and processor/anomaly/ (its build included) in another folder."""
    (into / "processor").mkdir()
    shutil.copy2(REPO / "processor" / "__init__.py", into / "processor" / "__init__.py")
    shutil.copytree(REPO / "processor" / "anomaly", into / "processor" / "anomaly",
                    ignore=shutil.ignore_patterns("__pycache__"))
    return into / "processor" / "anomaly"


def run(root: Path, code: str, **env: str) -> str:
    clean = {k: v for k, v in os.environ.items() if k != "ANOMALY_DETECTOR"}
    return subprocess.run([sys.executable, "-c", code], cwd=root, env={**clean, **env, "PYTHONPATH": str(root)},
                          capture_output=True, text=True, check=True).stdout


def which_detector(root: Path, **env: str) -> list[str]:
    return run(root, WHICH, **env).split()


@needs_build
def test_a_build_from_todays_detector_source_is_the_public_detector(tmp_path: Path) -> None:
    copy_of_the_package(tmp_path)
    name, module, function = which_detector(tmp_path)
    assert (name, module) == ("compiled", native.COMPILED)
    assert function != "function"  # a native function, not Python bytecode


@needs_build
def test_a_build_left_over_from_an_older_detector_source_is_refused_and_the_pure_detector_runs(tmp_path: Path) -> None:
    # GIVEN the build beside a detector.py that has changed since (one comment line more)
    package = copy_of_the_package(tmp_path)
    with (package / "detector.py").open("a") as source:
        source.write("# edited after the build\n")
    # THEN the stale extension is not loaded under the public name: detector.py itself runs
    assert which_detector(tmp_path) == ["pure", native.PUBLIC, "function"]
    # ... and the guard says why
    module, why = native.compiled_module(expected=native.source_hash((package / "detector.py").read_bytes()))
    assert module is None and "stale" in why


def test_without_a_build_the_pure_detector_runs_and_says_how_to_build_one(tmp_path: Path) -> None:
    package = copy_of_the_package(tmp_path)
    shutil.rmtree(package / "_compiled", ignore_errors=True)
    assert which_detector(tmp_path) == ["pure", native.PUBLIC, "function"]
    why = run(tmp_path, "from processor.anomaly import native; print(native.implementation().why)")
    assert "python -m processor.anomaly.build" in why


@needs_build
def test_the_pure_detector_can_be_chosen_whatever_is_built(tmp_path: Path) -> None:
    copy_of_the_package(tmp_path)
    assert which_detector(tmp_path, ANOMALY_DETECTOR="pure") == ["pure", native.PUBLIC, "function"]


def test_the_build_without_a_c_compiler_warns_and_succeeds_leaving_the_pure_detector(tmp_path: Path) -> None:
    stamp = tmp_path / "stamp"
    done = subprocess.run([sys.executable, "-m", "processor.anomaly.build", "--into", str(tmp_path / "out"),
                           "--stamp", str(stamp)], cwd=REPO, capture_output=True, text=True,
                          env={**os.environ, "CC": str(tmp_path / "no-such-compiler")})
    assert done.returncode == 0  # make setup carries on
    assert "warning: the anomaly detector stays pure Python" in done.stderr
    assert not stamp.exists() and not (tmp_path / "out").exists()
