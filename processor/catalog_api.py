"""The catalog read API for the storefront (Starlette on uvicorn): the product of a SKU, served cache-aside
through Redis, then PostgreSQL, with `get_product`'s guarantee (never stale after a commit: the processor
writes every committed change into the entries it finds).

    GET /v1/products/{sku}           200 the product with its total quantity; 404 unknown; 400 not a SKU
    GET /v1/products?sku=A&sku=B     200 {"products": {sku: product}, "missing": [sku, ...]} (at most 100)
    GET /healthz                     200 when PostgreSQL and Redis answer, else 503

An unknown SKU is remembered as missing in Redis for `MISSING_TTL_S` (a complete entry without a product,
processor/cache.py), so SKUs that keep missing do not each cost a query; a product committed meanwhile
is written into that entry by the processor, so the 404 ends with the commit. Callers authenticate with a
bearer token (`Authorization: Bearer <token>`; the tokens in `CATALOG_API_TOKENS`, comma-separated).
Connections: a small pool of PostgreSQL connections (each verified TLS as the processor's), one
redis-py client with its own pool.
"""
from __future__ import annotations

import hmac
import logging
import queue
import re
import threading
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from typing import Any

import psycopg2
import redis
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route

from processor.cache import CatalogCache

logger = logging.getLogger(__name__)

SKU = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.:-]{0,63}")  # the wire contract's key (processor/contract)
MAX_BATCH = 100
MISSING_TTL_S = 60  # how long an unknown SKU is answered 404 from Redis alone (a commit ends it sooner)


class ConnectionPool:
    """At most `size` PostgreSQL connections, made on demand and reused; a broken one is replaced."""

    def __init__(self, connect: Callable[[], psycopg2.extensions.connection], size: int = 4) -> None:
        self._connect = connect
        self._idle: queue.LifoQueue = queue.LifoQueue()
        self._slots = threading.BoundedSemaphore(size)

    @contextmanager
    def connection(self) -> Iterator[psycopg2.extensions.connection]:
        with self._slots:
            try:
                conn = self._idle.get_nowait()
            except queue.Empty:
                conn = self._connect()
            try:
                yield conn
            except psycopg2.Error:
                conn.close()
                raise
            if conn.closed:
                return
            self._idle.put(conn)

    def close(self) -> None:
        while not self._idle.empty():
            self._idle.get_nowait().close()


class Catalog:
    def __init__(self, pool: ConnectionPool, cache: CatalogCache, missing_ttl_s: int = MISSING_TTL_S) -> None:
        self.pool, self.cache, self.missing_ttl_s = pool, cache, missing_ttl_s
        self.database_reads = 0

    def product(self, sku: str) -> dict[str, Any] | None:
        try:
            known, product = self.cache.lookup(sku)
        except redis.RedisError:  # Redis down: PostgreSQL answers, slower
            known, product = False, None
        if known:
            self.cache.hits += 1
            return product
        self.cache.misses += 1
        self.database_reads += 1
        with self.pool.connection() as conn:
            return self.cache.fill(conn, sku, remember_missing_s=self.missing_ttl_s)

    def products(self, skus: Sequence[str]) -> tuple[dict[str, dict[str, Any]], list[str]]:
        found, missing = {}, []
        for sku in dict.fromkeys(skus):
            product = self.product(sku)
            if product is None:
                missing.append(sku)
            else:
                found[sku] = product
        return found, missing

    def healthy(self) -> bool:
        try:
            self.cache.client.ping()
            with self.pool.connection() as conn, conn.cursor() as cur:
                cur.execute("SELECT 1")
                conn.rollback()
            return True
        except (redis.RedisError, psycopg2.Error) as error:
            logger.warning("health check failed: %s", error.__class__.__name__)
            return False


def create_app(catalog: Catalog, tokens: Sequence[str]) -> Starlette:
    allowed = [t.encode() for t in tokens if t]

    def authorized(request: Request) -> bool:
        scheme, _, token = request.headers.get("authorization", "").partition(" ")
        return scheme.lower() == "bearer" and any(hmac.compare_digest(token.encode(), t) for t in allowed)

    def refuse() -> JSONResponse:
        return JSONResponse({"message": "send a valid token: Authorization: Bearer <token>"}, status_code=401,
                            headers={"www-authenticate": "Bearer"})

    def one(request: Request) -> JSONResponse:
        if not authorized(request):
            return refuse()
        sku = request.path_params["sku"]
        if not SKU.fullmatch(sku):
            return JSONResponse({"message": f"not a SKU: {sku[:80]!r}"}, status_code=400)
        product = catalog.product(sku)
        if product is None:
            return JSONResponse({"message": f"no product {sku}"}, status_code=404)
        return JSONResponse(product)

    def many(request: Request) -> JSONResponse:
        if not authorized(request):
            return refuse()
        skus = request.query_params.getlist("sku")
        bad = [s for s in skus if not SKU.fullmatch(s)]
        if not skus or bad or len(skus) > MAX_BATCH:
            return JSONResponse({"message": f"give 1 to {MAX_BATCH} sku parameters, each a SKU"
                                            + (f" (not: {bad[0][:80]!r})" if bad else "")}, status_code=400)
        found, missing = catalog.products(skus)
        return JSONResponse({"products": found, "missing": missing})

    def health(request: Request) -> JSONResponse:
        ok = catalog.healthy()
        return JSONResponse({"status": "ok" if ok else "unavailable"}, status_code=200 if ok else 503)

    return Starlette(routes=[Route("/v1/products/{sku}", one), Route("/v1/products", many),
                             Route("/healthz", health)])
