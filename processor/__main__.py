"""`python -m processor [run|migrate|catalog-api] [--exit-when-idle SECONDS]`: the stream processor (run),
the schema migration (migrate), or the retail catalog's read API (catalog-api, processor/catalog_api_main.py)."""
from __future__ import annotations

import argparse
import logging
import sys

from processor.config import ConfigError, ProcessorConfig

logger = logging.getLogger("processor")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m processor", description=__doc__)
    parser.add_argument("command", nargs="?", choices=["run", "migrate", "catalog-api"], default="run")
    parser.add_argument("--exit-when-idle", type=float, metavar="SECONDS",
                        help="exit 0 once the stream is drained: every open shard read to its tip by this "
                             "worker or a live one (a dead worker's leases are waited out), and no record "
                             "for this long")
    args = parser.parse_args(argv)

    from processor.metrics import configure_logging

    configure_logging()
    try:
        if args.command == "catalog-api":
            from processor.catalog_api_main import CatalogApiConfig, serve

            serve(CatalogApiConfig.from_env())
            return 0
        settings = ProcessorConfig.from_env()
        if args.command == "migrate":
            from processor.connections import ensure_reachable
            from processor.workloads import workload

            conn = ensure_reachable(settings)
            workload(settings.workload).migrate(conn, settings.app_db_user)
            if settings.catalog_reader_user:
                from processor.connections import catalog_reader_password
                from processor.schema import ensure_catalog_reader

                ensure_catalog_reader(conn, settings.catalog_reader_user, catalog_reader_password(settings))
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
