"""`make bench-synth`: how long synthesizing both stacks takes, against the naive import.

Prints, from one run on this machine:
  * the project's synth (`python main.py`, lazy provider bindings), wall time over N runs;
  * the naive full-package `import cdktf_cdktf_provider_aws` alone, and a full synth with it;
  * their ratio; and whether both synths wrote byte-identical output (they must).
"""
from __future__ import annotations

import filecmp
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
RUNS = int(os.environ.get("BENCH_RUNS", "5"))
BUDGET_S = 4.0


def timed(command: list[str], env: dict[str, str]) -> float:
    started = time.perf_counter()
    subprocess.run(command, cwd=ROOT, env=env, check=True, stdout=subprocess.DEVNULL)
    return time.perf_counter() - started


def synth(outdir: Path, mode: str) -> float:
    env = {**os.environ, "CDKTF_OUTDIR": str(outdir), "PIPELINE_PROVIDER_IMPORT": mode,
           "JSII_SILENCE_WARNING_END_OF_LIFE_NODE_VERSION": "20"}
    return timed([sys.executable, "main.py"], env)


def identical_trees(left: Path, right: Path) -> bool:
    files = sorted(p.relative_to(left) for p in left.rglob("*") if p.is_file())
    other = sorted(p.relative_to(right) for p in right.rglob("*") if p.is_file())
    if files != other:
        return False
    _, mismatch, errors = filecmp.cmpfiles(left, right, [str(f) for f in files], shallow=False)
    return not mismatch and not errors


def main() -> int:
    env = {**os.environ, "JSII_SILENCE_WARNING_END_OF_LIFE_NODE_VERSION": "20"}
    with tempfile.TemporaryDirectory() as tmp:
        lazy_dir, full_dir = Path(tmp) / "lazy", Path(tmp) / "full"
        synth(lazy_dir, "lazy")  # warm-up: builds the lazy tarball once if missing
        lazy = [synth(lazy_dir, "lazy") for _ in range(RUNS)]
        naive_import = timed([sys.executable, "-c", "import cdktf_cdktf_provider_aws"], env)
        full = synth(full_dir, "full")
        same = identical_trees(lazy_dir, full_dir)

    median = statistics.median(lazy)
    print(f"synth both stacks, project (lazy bindings), {RUNS} runs: median {median:.2f} s, "
          f"min {min(lazy):.2f} s, max {max(lazy):.2f} s (budget {BUDGET_S:.1f} s)")
    print(f"naive `import cdktf_cdktf_provider_aws` alone:           {naive_import:.2f} s")
    print(f"synth both stacks with the naive import:                {full:.2f} s")
    print(f"speed-up of the project's synth over the naive synth:  {full / median:.1f}x")
    print(f"synthesized output identical either way:               {'yes' if same else 'NO'}")
    if not same:
        return 1
    return 0 if median <= BUDGET_S else 2


if __name__ == "__main__":
    sys.exit(main())
