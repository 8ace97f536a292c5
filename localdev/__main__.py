"""`python -m localdev demo|up|run|down|status [--suffix S]`: the pipeline on this machine, no AWS account.

demo    up, then run (what `make demo` does)
up      start the emulator, PostgreSQL and Redis; create the operator's secrets; deploy both stacks
run     processors + producers against the deployed streams, then a summary
down    destroy both stacks, check nothing is left, stop everything (what `make destroy-local` does)
status  what is running
"""
from __future__ import annotations

import argparse
import sys
import time

DEFAULT_SUFFIX = "local"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m localdev", description=__doc__.split("\n\n")[0],
                                     epilog=__doc__.split("\n\n", 1)[1],
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("command", choices=["demo", "up", "run", "down", "status"])
    parser.add_argument("--suffix", default=DEFAULT_SUFFIX,
                        help=f"environment suffix of the local stacks (default {DEFAULT_SUFFIX})")
    args = parser.parse_args(argv)

    from pipeline_lib.naming import InvalidSuffixError, validate_suffix

    try:
        validate_suffix(args.suffix)
    except InvalidSuffixError as error:
        parser.error(str(error))

    from localdev import deploy, pipeline_run
    from localdev.session import Session

    if args.command == "down":
        deploy.down()
        return 0
    if args.command == "status":
        return deploy.status()
    started = time.monotonic()
    timings: dict[str, float] = {}
    if args.command in ("demo", "up"):
        session, timings["deploy"] = deploy.up(args.suffix)
        if args.command == "up":
            return 0
    else:
        session = Session.load()
        if session is None:
            print("no local deployment: run `python -m localdev up` (or make demo) first", file=sys.stderr)
            return 1
    run_started = time.monotonic()
    runs = pipeline_run.run_all(session)
    timings["pipeline run"] = time.monotonic() - run_started
    timings["total"] = time.monotonic() - started
    text = pipeline_run.summarise(session, runs, timings)
    print(text)
    pipeline_run.write_summary(text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
