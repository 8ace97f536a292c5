"""`python -m policy [cdktf.out]`: check the synthesized app; exit 1 on any finding."""
from __future__ import annotations

import sys
from pathlib import Path

from policy.check import check_app
from policy.rules import RULES
from policy.stack_json import load_app


def main(argv: list[str]) -> int:
    outdir = Path(argv[0]) if argv else Path("cdktf.out")
    stacks = load_app(outdir)
    findings = check_app(stacks)
    for finding in findings:
        print(finding)
    print(f"policy: {len(RULES)} rules over {len(stacks)} stacks: {len(findings)} finding(s)")
    return 1 if findings else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
