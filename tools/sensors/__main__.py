"""`python -m tools.sensors register|revoke|list`: the factory's sensors in AWS IoT Core.

    python -m tools.sensors register line-1 temp-1-00 --suffix dev --out devices/
    python -m tools.sensors register line-1 temp-1-00 pres-1-01 vibr-1-02   # several sensors of one line
    python -m tools.sensors register line-1 temp-1-01 --csr temp-1-01.csr   # the device made its own key
    python -m tools.sensors revoke line-1 temp-1-00 --suffix dev
    python -m tools.sensors list --suffix dev

Runs with the caller's AWS credentials, in the factory's region (stacks/workloads.py);
AWS_ENDPOINT_URL points it at the local emulator. docs/iot.md has the whole flow.
"""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

from tools.sensors import Environment, register, revoke, sensors


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m tools.sensors", description=__doc__.split("\n\n")[0],
                                     epilog=__doc__.split("\n\n", 1)[1], formatter_class=argparse.RawDescriptionHelpFormatter)
    commands = parser.add_subparsers(dest="command", required=True)
    for command in ("register", "revoke"):
        sub = commands.add_parser(command)
        sub.add_argument("line")
        sub.add_argument("sensors", nargs="+", metavar="sensor")
        sub.add_argument("--suffix", default="dev")
        if command == "register":
            sub.add_argument("--out", type=Path, default=Path("devices"), help="where the device's files go")
            sub.add_argument("--csr", type=Path, help="a CSR the device made (its key never leaves it; one sensor)")
    listing = commands.add_parser("list")
    listing.add_argument("--suffix", default="dev")
    args = parser.parse_args(argv)

    import boto3

    from stacks.workloads import WORKLOAD_REGIONS

    if getattr(args, "csr", None) and len(args.sensors) > 1:
        parser.error("--csr is one device's: register one sensor with it")
    env = Environment.of(args.suffix)
    iot = boto3.client("iot", region_name=WORKLOAD_REGIONS["factory"])
    try:
        if args.command == "register":
            for sensor in args.sensors:
                register(iot, env, args.line, sensor, args.out, args.csr.read_bytes() if args.csr else None)
        elif args.command == "revoke":
            for sensor in args.sensors:
                revoke(iot, env, args.line, sensor)
        else:
            rows = sensors(iot, env)
            for row in rows:
                print(f"{row['line']:<12} {row['sensor']:<16} {row['thing']:<40} {row['certificates']}")
            print(f"{len(rows)} sensor(s) of {env.thing_type}")
    except ValueError as error:
        parser.error(str(error))
    return 0


if __name__ == "__main__":
    sys.exit(main())
