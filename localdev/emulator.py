"""moto's server with this project's extensions applied, as a process of its own.

`python -m localdev.emulator --port P` serves until SIGTERM. The extensions
(localdev/moto_extensions/) patch moto in this process before the server starts,
so they hold for every request Terraform, boto3 or the processor sends.
"""
from __future__ import annotations

import argparse
import signal
import threading

from localdev import moto_extensions


def serve(host: str, port: int) -> None:
    moto_extensions.apply_all()
    from moto.server import ThreadedMotoServer

    server = ThreadedMotoServer(ip_address=host, port=port, verbose=False)
    server.start()
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    signal.signal(signal.SIGINT, lambda *_: stop.set())
    stop.wait()
    server.stop()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, required=True)
    args = parser.parse_args()
    serve(args.host, args.port)


if __name__ == "__main__":
    main()
