"""`python -m tools.warm_provider`: prepare the fast provider bindings once (make setup)."""
from __future__ import annotations

import logging
import time

from pipeline_lib.provider_loader import warm


def main() -> None:
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    started = time.monotonic()
    index = warm()
    print(f"provider bindings ready in {time.monotonic() - started:.1f} s ({index.parent.name[:12]}…)")


if __name__ == "__main__":
    main()
