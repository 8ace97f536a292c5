"""`python -m processor [migrate] [--exit-when-idle SECONDS]`."""
from __future__ import annotations

import argparse
import logging
import sys

from processor.config import ConfigError, ProcessorConfig

logger = logging.getLogger("processor")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m processor", description=__doc__)
    parser.add_argument("command", nargs="?", choices=["run", "migrate"], default="run")
    parser.add_argument("--exit-when-idle", type=float, metavar="SECONDS",
                        help="exit 0 once the stream is drained: every open shard read to its tip by this "
                             "worker or a live one (a dead worker's leases are waited out), and no record "
                             "for this long")
    args = parser.parse_args(argv)

    from processor.metrics import configure_logging

    configure_logging()
    try:
        settings = ProcessorConfig.from_env()
        if args.command == "migrate":
            from processor.connections import ensure_reachable
            from processor.workloads import workload

            workload(settings.workload).migrate(ensure_reachable(settings), settings.app_db_user)
            return 0
        from processor.scheduler import Scheduler, install_signal_handlers

        scheduler = Scheduler(settings)
        install_signal_handlers(scheduler)
        scheduler.run(exit_when_idle_s=args.exit_when_idle)
        return 0
    except ConfigError as error:
        print(f"processor: {error}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
