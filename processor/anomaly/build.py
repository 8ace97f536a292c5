"""Compile the detector with mypyc: ``python -m processor.anomaly.build [--stamp FILE]``.

A copy of detector.py, named ``detector_compiled`` and carrying the SHA-256 of the source it was made
from, is compiled in a temporary tree; its extension modules go into processor/anomaly/_compiled/
(git-ignored). processor/anomaly/native.py loads that build only while the hash matches detector.py.

The compiled build is a speed-up, never a requirement: without mypyc, a C compiler or Python's
headers, or when the compile fails, a warning says so, the exit status is 0, and the pure detector
runs. `--stamp FILE` is touched only after a successful build (make's target).
"""
from __future__ import annotations

import argparse
import importlib.util
import os
import shlex
import shutil
import subprocess
import sys
import sysconfig
import tempfile
from pathlib import Path

from processor.anomaly import native

MODULE = native.COMPILED.rsplit(".", 1)[1]
PACKAGE_PARTS = native.COMPILED.split(".")[:-1]


def warn(message: str) -> int:
    print(f"warning: the anomaly detector stays pure Python (slower, same results): {message}", file=sys.stderr)
    return 0


def missing_toolchain() -> str | None:
    """What the compile needs and this machine lacks, or None."""
    if importlib.util.find_spec("mypyc") is None:
        return "mypyc is not installed (it ships with mypy, a dev package: pipenv sync --dev)"
    compiler = shlex.split(sysconfig.get_config_var("CC") or "cc")[0]
    if shutil.which(os.environ.get("CC", compiler).split()[0]) is None:
        return f"no C compiler ({compiler}) on PATH"
    include = Path(sysconfig.get_paths()["include"])
    if not (include / "Python.h").exists():
        return f"Python's C headers are missing ({include / 'Python.h'})"
    return None


def compile_into(target: Path, source: Path = native.SOURCE) -> None:
    """Compile `source` as the compiled module and put its extension modules into `target` (replacing any)."""
    text = source.read_bytes()
    stamped = text + f'\n\nCOMPILED_FROM = "{native.source_hash(text)}"  # added by processor.anomaly.build\n'.encode()
    with tempfile.TemporaryDirectory(prefix="detector-build-") as tmp:
        root = Path(tmp)
        package = root.joinpath(*PACKAGE_PARTS)
        package.mkdir(parents=True)
        for depth in range(1, len(PACKAGE_PARTS) + 1):
            root.joinpath(*PACKAGE_PARTS[:depth], "__init__.py").write_text("")
        (package / f"{MODULE}.py").write_bytes(stamped)
        env = dict(os.environ, MYPY_CACHE_DIR=str(root / ".mypy_cache"))
        done = subprocess.run([sys.executable, "-m", "mypyc", str(Path(*PACKAGE_PARTS, f"{MODULE}.py"))], cwd=root,
                              env=env, capture_output=True, text=True)
        if done.returncode:
            raise RuntimeError(f"mypyc exited {done.returncode}:\n{(done.stdout + done.stderr)[-3000:]}")
        built = sorted(package.glob("*" + sysconfig.get_config_var("EXT_SUFFIX")))
        if not any(p.name.startswith(MODULE + ".") for p in built):
            raise RuntimeError(f"mypyc left no {MODULE} extension in {package}")
        target.mkdir(parents=True, exist_ok=True)
        for old in target.glob("*.so"):
            old.unlink()
        (target / "__init__.py").write_text("")
        for p in built:
            shutil.copy2(p, target / p.name)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m processor.anomaly.build", description=__doc__.split("\n")[0])
    parser.add_argument("--stamp", type=Path, help="a file to touch after a successful build")
    parser.add_argument("--into", type=Path, default=native.COMPILED_DIR, help="where the extension modules go")
    args = parser.parse_args(argv)
    lacking = missing_toolchain()
    if lacking:
        return warn(lacking)
    try:
        compile_into(args.into)
    except (OSError, RuntimeError) as error:
        return warn(f"the compile failed: {error}")
    if args.into == native.COMPILED_DIR:  # a fresh interpreter: this one may hold the build it replaced
        loaded = subprocess.run([sys.executable, "-c", "from processor.anomaly import native; "
                                 "print(native.implementation().describe())"], capture_output=True, text=True,
                                cwd=native.SOURCE.parents[2],
                                env={k: v for k, v in os.environ.items() if k != "ANOMALY_DETECTOR"})
        why = (loaded.stdout + loaded.stderr).strip()
        if loaded.returncode or not why.startswith("compiled"):
            return warn(f"the build does not load: {why}")
    else:
        why = "not loaded from there"
    print(f"compiled detector built into {args.into}: {why}")
    if args.stamp:
        args.stamp.parent.mkdir(parents=True, exist_ok=True)
        args.stamp.touch()
    return 0


if __name__ == "__main__":
    sys.exit(main())
