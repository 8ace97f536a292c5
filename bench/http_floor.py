"""`make bench-http-floor`: what a request costs the read API's process before any store is asked: the floor
under every read `make bench-catalog` measures, and so under its ratio against PostgreSQL per read.

Each variant answers a request with a wrong token (401), so no lookup is made; the figure is the server
process's CPU per request (its whole process tree), with keep-alive TLS connections as the benchmark's:

    read API          processor/catalog_api.py's app as served: uvicorn (uvloop, httptools), TLS, Starlette
    read API, no TLS  the same over plain HTTP
    bare ASGI         a handler of five lines, no framework, on the same uvicorn and TLS
    bare, no TLS      the same over plain HTTP: the least a Python HTTP server here costs a request
    granian           the read API's app on granian (a Rust HTTP server) instead of uvicorn, when it is
                      installed (it is not in the Pipfile: `pip install granian` to add the row)

The servers run one at a time on the first core, this client on the others; all variants are up together
and measured in slices taken in turn, so the host's drift moves them alike.
Environment: BENCH_FLOOR_SLICES (default 4) slices of BENCH_FLOOR_SLICE_S seconds (default 2.5) each.
"""
from __future__ import annotations

import asyncio
import importlib.util
import os
import ssl
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any, cast

import aiohttp

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.load import closed_loop, proc_cpu_s
from localdev.servers import free_port, listening, terminate, wait_for
from localdev.tls import TlsFiles, make_tls
from processor.catalog_api import Catalog, create_app

ROOT = Path(__file__).resolve().parent.parent
SLICES = int(os.environ.get("BENCH_FLOOR_SLICES", "4"))
SLICE_S = float(os.environ.get("BENCH_FLOOR_SLICE_S", "2.5"))
CONCURRENCY = 32
TOKEN = "bench-storefront-token"

# A refused request never reaches the catalog: the app is made without one.
catalog_app = create_app(cast(Catalog, None), [TOKEN])


async def bare_app(scope: dict[str, Any], receive: Any, send: Any) -> None:
    """A 401 with the read API's headers and a short JSON body, written straight to ASGI."""
    if scope["type"] != "http":
        return
    await send({"type": "http.response.start", "status": 401,
                "headers": [(b"content-type", b"application/json"), (b"www-authenticate", b"Bearer")]})
    await send({"type": "http.response.body", "body": b'{"message":"send a valid token"}'})


# name: (server, app, TLS)
VARIANTS = {
    "read API": ("uvicorn", "catalog_app", True),
    "read API, no TLS": ("uvicorn", "catalog_app", False),
    "bare ASGI": ("uvicorn", "bare_app", True),
    "bare ASGI, no TLS": ("uvicorn", "bare_app", False),
    "granian, read API": ("granian", "catalog_app", True),
}


def command(server: str, app: str, port: int, tls: TlsFiles | None) -> list[str]:
    target = f"bench.http_floor:{app}"
    if server == "uvicorn":
        secure = ["--ssl-certfile", str(tls.cert), "--ssl-keyfile", str(tls.key)] if tls else []
        return [sys.executable, "-m", "uvicorn", target, "--port", str(port), "--loop", "uvloop", "--http", "httptools",
                "--log-level", "warning", "--no-access-log", *secure]
    secure = ["--ssl-certificate", str(tls.cert), "--ssl-keyfile", str(tls.key)] if tls else []
    return [sys.executable, "-m", "granian", "--interface", "asgi", "--port", str(port), "--loop", "uvloop",
            "--workers", "1", "--runtime-threads", "1", "--log-level", "warning", *secure, target]


def tree_cpu_s(root: int) -> float:
    """CPU seconds of a process and every live descendant (granian serves from a child process)."""
    children: dict[int, list[int]] = {}
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                parent = int((entry / "stat").read_text().rsplit(")", 1)[1].split()[1])
            except OSError:
                continue
            children.setdefault(parent, []).append(int(entry.name))
    total, pending = 0.0, [root]
    while pending:
        pid = pending.pop()
        try:
            total += proc_cpu_s(pid)
        except OSError:
            continue
        pending.extend(children.get(pid, ()))
    return total


class Server:
    def __init__(self, name: str, tls: TlsFiles, cpus: set[int]) -> None:
        server, app, secure = VARIANTS[name]
        self.name, self.port = name, free_port()
        self.url = f"{'https' if secure else 'http'}://localhost:{self.port}/v1/products/sku-1"
        self.process = subprocess.Popen(command(server, app, self.port, tls if secure else None), cwd=ROOT,
                                        preexec_fn=lambda: os.sched_setaffinity(0, cpus))
        self.requests, self.cpu_s, self.wall_s = 0, 0.0, 0.0

    def close(self) -> None:
        terminate(self.process)


async def measure(servers: list[Server], context: ssl.SSLContext) -> None:
    async with aiohttp.ClientSession(connector=aiohttp.TCPConnector(ssl=context, limit=CONCURRENCY)) as session:
        async def refused(url: str) -> bool:
            async with session.get(url, headers={"authorization": "Bearer wrong"}) as answer:
                await answer.read()
                return answer.status == 401

        for server in servers:  # the connections opened and everything warm
            await closed_loop(lambda s=server: refused(s.url), CONCURRENCY, 1.0)
        for _ in range(SLICES):
            for server in servers:
                cpu, started = tree_cpu_s(server.process.pid), time.perf_counter()
                run = await closed_loop(lambda s=server: refused(s.url), CONCURRENCY, SLICE_S)
                if run.failed:
                    raise SystemExit(f"{server.name}: {run.failed} requests were not answered 401")
                server.requests += run.answers
                server.cpu_s += tree_cpu_s(server.process.pid) - cpu
                server.wall_s += time.perf_counter() - started


def main() -> None:
    cores = sorted(os.sched_getaffinity(0))
    served_on, client_on = {cores[0]}, set(cores[1:]) or {cores[0]}
    names = [n for n, (server, _, _) in VARIANTS.items() if server != "granian" or importlib.util.find_spec("granian")]
    with tempfile.TemporaryDirectory() as directory:
        tls = make_tls(Path(directory))
        servers = [Server(name, tls, served_on) for name in names]
        try:
            os.sched_setaffinity(0, client_on)
            for server in servers:
                wait_for(lambda s=server: s.process.poll() is not None or listening(s.port), 30, server.name)
                if server.process.poll() is not None:
                    raise SystemExit(f"{server.name} exited with {server.process.returncode}")
            asyncio.run(measure(servers, ssl.create_default_context(cafile=str(tls.ca))))
        finally:
            for server in servers:
                server.close()
    print(f"A refused request (401, no store asked): servers on core {sorted(served_on)}, this client on "
          f"{sorted(client_on)}; {SLICES} slices of {SLICE_S:g} s each, taken in turn; load average "
          f"{os.getloadavg()[0]:.2f} at the end")
    print()
    print("| variant | requests/s | server CPU per request | of the read API's |")
    print("|---|---:|---:|---:|")
    served = next(s for s in servers if s.name == "read API")
    for server in servers:
        per = server.cpu_s / server.requests
        print(f"| {server.name} | {server.requests / server.wall_s:,.0f} | {per * 1e6:,.0f} µs | "
              f"{per / (served.cpu_s / served.requests):.2f} |")
    if len(names) < len(VARIANTS):
        print("\n(granian is not installed: its row is left out)")


if __name__ == "__main__":
    main()
