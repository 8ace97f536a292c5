"""The catalog read API as `make bench-catalog` serves it: `python -m bench.catalog_server CONFIG_JSON`.

The app is processor/catalog_api.py's, on uvicorn with one worker and TLS, reading PostgreSQL and
Redis over verified TLS as the SELECT-only reader role. CONFIG_JSON names the servers, the token, the
certificate and the variant:

    cache     the app as deployed: Redis first, PostgreSQL on a miss
    postgres  the same app with the cache bypassed: every read is a PostgreSQL query of its own, in a
              worker thread as a miss is

and `pure_python`: serve on asyncio's own loop with h11 and parse Redis replies in Python, as without the
C packages (uvloop, httptools, hiredis) the Pipfile installs, to show what they are worth.

Beside the app, `GET /bench/stats` answers this process's CPU seconds and the catalog's counters
(cache hits and misses, PostgreSQL reads and statements, Redis round trips), so the benchmark can count
what a read cost the server.
"""
from __future__ import annotations

import json
import sys
import time
from collections.abc import Mapping, Sequence
from typing import Any

import psycopg2
import uvicorn
from redis._parsers import _AsyncRESP2Parser, _RESP2Parser
from starlette.concurrency import run_in_threadpool

from localdev.tls import postgres_tls, redis_tls
from processor.cache import CatalogCache
from processor.catalog_api import Catalog, ConnectionPool, create_app, redis_clients, settle_heap

STATS_PATH = "/bench/stats"


class BypassedCache(CatalogCache):
    """Nothing is written into Redis."""

    def write(self, entries: Mapping[str, Any], complete: bool = False) -> int | None:
        return 0


class BypassedCatalog(Catalog):
    """Every lookup misses and nothing is cached: the catalog reads PostgreSQL on each request, a
    statement of its own in a worker thread (not shared with the other misses of its turn, as the
    app's misses are: that is the cache's work, which this variant is measured without)."""

    async def lookup(self, skus: Sequence[str]) -> list[tuple[bool, dict[str, Any] | None]]:
        return [(False, None)] * len(skus)

    async def product(self, sku: str) -> dict[str, Any] | None:
        self.cache.misses += 1
        return (await run_in_threadpool(self.fill, [sku]))[sku]


def build(config: dict[str, Any]) -> tuple[Catalog, ConnectionPool]:
    dsn = {**config["postgres"], **postgres_tls(config["ca"])}
    pool = ConnectionPool(lambda: psycopg2.connect(**dsn), size=config.get("pool", 4))
    where = {"host": "127.0.0.1", "port": config["redis_port"], "password": config["redis_password"],
             "socket_timeout": 2, "socket_connect_timeout": 2, **redis_tls(config["ca"])}
    client, entries = redis_clients(**where)
    if config["pure_python"]:  # else hiredis, when installed; set before the pools make a connection
        client.connection_pool.connection_kwargs["parser_class"] = _RESP2Parser
        entries.connection_pool.connection_kwargs["parser_class"] = _AsyncRESP2Parser
    bypassed = config["variant"] == "postgres"
    cache = (BypassedCache if bypassed else CatalogCache)(client)
    return (BypassedCatalog if bypassed else Catalog)(pool, cache, entries), pool


def with_stats(app: Any, catalog: Catalog) -> Any:
    """The app, and the benchmark's counters at STATS_PATH (nothing else is changed)."""

    async def served(scope: dict, receive: Any, send: Any) -> None:
        if scope["type"] == "http" and scope["path"] == STATS_PATH:
            body = json.dumps({"cpu_s": time.process_time(), "hits": catalog.cache.hits,
                               "misses": catalog.cache.misses, "database_reads": catalog.database_reads,
                               "redis_round_trips": catalog.redis_round_trips,
                               "database_round_trips": catalog.database_round_trips}).encode()
            await send({"type": "http.response.start", "status": 200,
                        "headers": [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode())]})
            await send({"type": "http.response.body", "body": body})
            return
        await app(scope, receive, send)

    return served


def main() -> None:
    config = json.loads(sys.argv[1])
    catalog, pool = build(config)
    # "auto", as the service runs it: uvloop and httptools when installed; pure_python: asyncio's loop and h11
    pure = config["pure_python"]
    settle_heap()  # as the service does before it serves
    try:
        uvicorn.run(with_stats(create_app(catalog, [config["token"]]), catalog), host="127.0.0.1",
                    port=config["port"], ssl_certfile=config["cert"], ssl_keyfile=config["key"], workers=1,
                    loop="asyncio" if pure else "auto", http="h11" if pure else "auto", log_level="warning",
                    access_log=False, lifespan="off")
    finally:
        pool.close()


if __name__ == "__main__":
    main()
