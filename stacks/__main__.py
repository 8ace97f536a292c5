"""`python -m stacks list [--suffix S] [--regions]`: the workloads (or their stack ids), one per line.

For the Makefile and the workflows, which must not keep their own copy of the list. Reads only
`stacks/workloads.py` (standard library): it runs before anything is installed.
"""
from __future__ import annotations

import argparse
import sys

from stacks.workloads import WORKLOAD_REGIONS


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m stacks", description=__doc__.split("\n\n")[0])
    parser.add_argument("command", choices=["list"])
    parser.add_argument("--suffix", help="print stack ids (<workload>-<suffix>) instead of workload names")
    parser.add_argument("--regions", action="store_true", help="each with its region")
    args = parser.parse_args(argv)
    for workload, region in WORKLOAD_REGIONS.items():
        name = f"{workload}-{args.suffix}" if args.suffix else workload
        print(f"{name} {region}" if args.regions else name)
    return 0


if __name__ == "__main__":
    sys.exit(main())
