"""The catalog read API for the storefront (Starlette on uvicorn): the product of a SKU, served cache-aside
through Redis, then PostgreSQL, with `get_product`'s guarantee (never stale after a commit: the processor
writes every committed change into the entries it finds).

    GET /v1/products/{sku}           200 the product with its total quantity; 404 unknown; 400 not a SKU
    GET /v1/products?sku=A&sku=B     200 {"products": {sku: product}, "missing": [sku, ...]} (at most 100)
    GET /healthz                     200 while PostgreSQL answers ("degraded" without Redis), else 503

A read that needs PostgreSQL while it is away is answered 503 with Retry-After; a hit is still served.

A hit is served on the event loop: one HGETALL through redis-py's asyncio client (hiredis parsing the
reply), no thread. The lookups of requests handled in the same turn of the event loop go to Redis
together, in one pipelined round trip: under load, what a command costs the client is shared.

A miss goes to a worker thread, which reads PostgreSQL through a small pool of connections (each verified
TLS, as the processor's) and offers the rows to the cache with the processor's own write
(`CatalogCache.fill_many`, on a synchronous client). The misses of a turn go together too: one thread,
one statement, one cache write; after a cache failover a burst of reads costs PostgreSQL a statement a
turn, not one a request. Misses are rare once the cache is warm, so the database driver stays the one the
processor uses.

An unknown SKU is remembered as missing in Redis for `MISSING_TTL_S` (a complete entry without a product,
processor/cache.py), so SKUs that keep missing do not each cost a query; a product committed meanwhile
is written into that entry by the processor, so the 404 ends with the commit. Callers authenticate with a
bearer token (`Authorization: Bearer <token>`; the tokens in `CATALOG_API_TOKENS`, comma-separated).
"""
from __future__ import annotations

import asyncio
import gc
import hmac
import logging
import queue
import re
import threading
from collections.abc import Awaitable, Callable, Iterator, Sequence
from contextlib import contextmanager
from typing import Any, Generic, TypeVar

import msgspec
import psycopg2
import redis
import redis.asyncio
import redis.asyncio.retry
import redis.retry
from starlette.applications import Starlette
from starlette.concurrency import run_in_threadpool
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from processor import contract
from processor.cache import COMPLETE, KEY_PREFIX, CatalogCache, served
from processor.redis_rest import REDIS_REST_S, REDIS_RETRIES, REDIS_RETRY_BACKOFF, RedisRest

logger = logging.getLogger(__name__)

SKU = re.compile(contract.pattern("inventory_update", "sku"))  # the wire contract's key
SKU_RULE = "a SKU is a letter or digit, then up to 63 letters, digits, '_', '.', ':' or '-'"  # the pattern in words
MAX_BATCH = 100
PATHS = ("/v1/products/{sku}", "/v1/products?sku=...", "/healthz")  # named in the answer to an unknown path
MISSING_TTL_S = 60  # how long an unknown SKU is answered 404 from Redis alone (a commit ends it sooner)
_COMPLETE = COMPLETE.encode()
T = TypeVar("T")
R = TypeVar("R")


def redis_clients(**where: Any) -> tuple[redis.Redis, redis.asyncio.Redis]:
    """A synchronous client (fills, in worker threads) and an asyncio one (hits, on the event loop) to the
    Redis at `where` (redis-py's connection options, TLS included), each giving up after one quick retry."""
    return (redis.Redis(retry=redis.retry.Retry(REDIS_RETRY_BACKOFF, REDIS_RETRIES), **where),
            redis.asyncio.Redis(retry=redis.asyncio.retry.Retry(REDIS_RETRY_BACKOFF, REDIS_RETRIES), **where))


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


class PerTurn(Generic[T, R]):
    """Asks made in the same turn of the event loop, answered together: one call of `send` with the items
    of all of them (in order), each ask then given its own slice of the answers. Under load many requests
    share one round trip and what it costs; a lone request waits for nothing, as the call is made at the
    end of the turn it was asked in. A failed call fails every ask it carried."""

    def __init__(self, send: Callable[[list[T]], Awaitable[list[R]]]) -> None:
        self._send = send
        self.calls = 0
        self._asked: list[tuple[Sequence[T], asyncio.Future[list[R]]]] = []
        self._running: set[asyncio.Task[None]] = set()

    def ask(self, items: Sequence[T]) -> asyncio.Future[list[R]]:
        loop = asyncio.get_running_loop()
        answer: asyncio.Future[list[R]] = loop.create_future()
        if not self._asked:
            loop.call_soon(self._flush)  # after the requests already in this turn have asked
        self._asked.append((items, answer))
        return answer

    def _flush(self) -> None:
        asked, self._asked = self._asked, []
        task = asyncio.ensure_future(self._answer(asked))
        self._running.add(task)  # held until done: the loop keeps only a weak reference
        task.add_done_callback(self._running.discard)

    async def _answer(self, asked: list[tuple[Sequence[T], asyncio.Future[list[R]]]]) -> None:
        self.calls += 1
        try:
            answers = await self._send([item for items, _ in asked for item in items])
        except BaseException as error:  # every ask hears it, whatever it is: none is left waiting
            for _, answer in asked:
                if answer.done():
                    continue
                if isinstance(error, asyncio.CancelledError):
                    answer.cancel()
                else:
                    answer.set_exception(error)
            if not isinstance(error, Exception):
                raise
            return
        at = 0
        for items, answer in asked:
            if not answer.done():  # an ask whose request was cancelled is skipped
                answer.set_result(answers[at:at + len(items)])
            at += len(items)


class Catalog:
    """Reads of the catalog: `entries` (an asyncio Redis client) serves hits on the event loop; a miss is
    read from PostgreSQL through `pool` and written into Redis by `cache` (a synchronous client) in a
    worker thread."""

    def __init__(self, pool: ConnectionPool, cache: CatalogCache, entries: redis.asyncio.Redis,
                 missing_ttl_s: int = MISSING_TTL_S, redis_rest_s: float = REDIS_REST_S) -> None:
        self.pool, self.cache, self.entries, self.missing_ttl_s = pool, cache, entries, missing_ttl_s
        # After a Redis call fails, reads go straight to PostgreSQL for `redis_rest_s` (processor/redis_rest.py).
        self.redis_rest = RedisRest(redis_rest_s, away="reads go to PostgreSQL", back="reads are served from it")
        self.database_reads = 0
        self.redis_skipped = 0  # SKUs read from PostgreSQL without asking Redis, while it rested
        self._lookups: PerTurn[str, dict[bytes, bytes]] = PerTurn(self._entries)
        self._fills: PerTurn[str, dict[str, Any] | None] = PerTurn(self._fill_together)

    @property
    def redis_round_trips(self) -> int:
        """Round trips of lookups: the lookups of a turn share one."""
        return self._lookups.calls

    @property
    def database_round_trips(self) -> int:
        """Statements of misses: the misses of a turn share one."""
        return self._fills.calls

    async def lookup(self, skus: Sequence[str]) -> list[tuple[bool, dict[str, Any] | None]]:
        """(known, product) for each SKU from its entry, one round trip (shared); all unknown when Redis fails
        (PostgreSQL then answers, slower). Known: a complete entry, with a product or remembered as
        missing (processor/cache.py)."""
        if self.redis_rest.resting():
            self.redis_skipped += len(skus)
            return [(False, None)] * len(skus)
        try:
            replies = await self._lookups.ask(skus)
        except redis.RedisError as error:
            self.redis_rest.failed(error)
            return [(False, None)] * len(skus)
        self.redis_rest.answered()
        return [(True, served(fields)) if _COMPLETE in fields else (False, None) for fields in replies]

    async def _entries(self, skus: list[str]) -> list[dict[bytes, bytes]]:
        """The entries of `skus` in one round trip (the lookups of a turn, together)."""
        if len(skus) == 1:
            return [await self.entries.hgetall(KEY_PREFIX + skus[0])]
        async with self.entries.pipeline(transaction=False) as pipe:
            for sku in skus:
                pipe.hgetall(KEY_PREFIX + sku)
            return await pipe.execute()

    async def _fill_together(self, skus: list[str]) -> list[dict[str, Any] | None]:
        """The misses of a turn, together: one worker thread, one connection, one statement. It runs after
        every read it answers has arrived, so its snapshot holds whatever was committed before any of them."""
        filled = await run_in_threadpool(self.fill, skus)
        return [filled[sku] for sku in skus]

    def fill(self, skus: Sequence[str]) -> dict[str, dict[str, Any] | None]:
        """The products of SKUs the cache did not know, from PostgreSQL in one statement, offered to the
        cache (an unknown one remembered as missing). Blocking: run in a worker thread."""
        unique = list(dict.fromkeys(skus))
        self.database_reads += len(unique)
        offer = not self.redis_rest.resting()
        with self.pool.connection() as conn:
            return self.cache.fill_many(conn, unique, remember_missing_s=self.missing_ttl_s, offer=offer)

    async def product(self, sku: str) -> dict[str, Any] | None:
        [(known, product)] = await self.lookup([sku])
        if known:
            self.cache.hits += 1
            return product
        self.cache.misses += 1
        return (await self._fills.ask([sku]))[0]

    async def products(self, skus: Sequence[str]) -> tuple[dict[str, dict[str, Any]], list[str]]:
        unique = list(dict.fromkeys(skus))
        answers = dict(zip(unique, await self.lookup(unique), strict=True))
        unknown = [sku for sku, (known, _) in answers.items() if not known]
        self.cache.hits += len(unique) - len(unknown)
        self.cache.misses += len(unknown)
        if unknown:
            filled = await self._fills.ask(unknown)
            answers.update((sku, (True, product)) for sku, product in zip(unknown, filled, strict=True))
        found = {sku: product for sku, (_, product) in answers.items() if product is not None}
        return found, [sku for sku in unique if sku not in found]

    def database_answers(self) -> bool:
        try:
            with self.pool.connection() as conn, conn.cursor() as cur:
                cur.execute("SELECT 1")
                conn.rollback()
            return True
        except psycopg2.Error as error:
            logger.warning("health check: PostgreSQL did not answer (%s)", error.__class__.__name__)
            return False

    async def cache_answers(self) -> bool:
        try:
            await self.entries.ping()
        except redis.RedisError as error:
            self.redis_rest.failed(error)
            return False
        self.redis_rest.answered()
        return True

    async def health(self) -> dict[str, str]:
        """Each store's state, and the task's: "ok"; "degraded" when only Redis is away (every read is
        still answered, from PostgreSQL); "unavailable" when PostgreSQL is (a miss cannot be answered)."""
        cache = await self.cache_answers()
        database = await run_in_threadpool(self.database_answers)
        status = "unavailable" if not database else "ok" if cache else "degraded"
        return {"status": status, "postgres": "ok" if database else "unavailable",
                "redis": "ok" if cache else "unavailable"}

    async def close(self) -> None:
        await self.entries.aclose()
        self.pool.close()


def settle_heap() -> None:
    """Collect once, then move every object alive at the start (modules, the app, the clients) out of the
    collector's reach. Without it each full collection walks them all: 30 ms and more on a small task,
    a pause every request in flight waits out (the benchmark's p99 showed them)."""
    gc.collect()
    gc.freeze()


class Json(Response):
    """A JSON response written by msgspec (compact UTF-8, several times faster than json.dumps)."""

    media_type = "application/json"
    _encode = msgspec.json.Encoder().encode

    def render(self, content: Any) -> bytes:
        return self._encode(content)


def create_app(catalog: Catalog, tokens: Sequence[str]) -> Starlette:
    allowed = [t.encode() for t in tokens if t]

    def authorized(request: Request) -> bool:
        scheme, _, token = request.headers.get("authorization", "").partition(" ")
        return scheme.lower() == "bearer" and any(hmac.compare_digest(token.encode(), t) for t in allowed)

    def refuse() -> JSONResponse:
        return JSONResponse({"message": "send a valid token: Authorization: Bearer <token>"}, status_code=401,
                            headers={"www-authenticate": "Bearer"})

    async def one(request: Request) -> Response:
        if not authorized(request):
            return refuse()
        if unknown := unknown_parameters(request, set()):
            return unknown
        sku = request.path_params["sku"]
        if not SKU.fullmatch(sku):
            return Json({"message": f"not a SKU: {contract.shown(sku)} ({SKU_RULE})"}, status_code=400)
        try:
            product = await catalog.product(sku)
        except psycopg2.Error as error:
            return unavailable(error)
        if product is None:
            return Json({"message": f"no product {sku}"}, status_code=404)
        return Json(product)

    async def many(request: Request) -> Response:
        if not authorized(request):
            return refuse()
        if unknown := unknown_parameters(request, {"sku"}):
            return unknown
        skus = request.query_params.getlist("sku")
        bad = [s for s in skus if not SKU.fullmatch(s)]
        if not skus or bad or len(skus) > MAX_BATCH:
            return Json({"message": f"give 1 to {MAX_BATCH} sku parameters, each a SKU"
                                    + (f" (not: {contract.shown(bad[0])}; {SKU_RULE})" if bad else "")}, status_code=400)
        try:
            found, missing = await catalog.products(skus)
        except psycopg2.Error as error:
            return unavailable(error)
        return Json({"products": found, "missing": missing})

    def unknown_parameters(request: Request, known: set[str]) -> Response | None:
        """400 naming the query parameters this endpoint does not take (a misspelt `sku` is not ignored)."""
        if not request.scope["query_string"]:  # most reads: nothing to parse
            return None
        unknown = sorted(set(request.query_params) - known)
        if not unknown:
            return None
        takes = f"it takes only {', '.join(sorted(known))}" if known else "it takes none"
        return Json({"message": f"unknown query parameter(s) {', '.join(repr(u[:40]) for u in unknown[:5])}: {takes}"},
                    status_code=400)

    def unavailable(error: psycopg2.Error) -> Response:
        logger.warning("a read that Redis could not answer failed in PostgreSQL: %s", error.__class__.__name__)
        return Json({"message": "the catalog's database is unavailable: retry shortly"}, status_code=503,
                    headers={"retry-after": "1"})

    async def health(request: Request) -> Response:
        state = await catalog.health()
        return Json(state, status_code=503 if state["status"] == "unavailable" else 200)

    async def not_served(request: Request, error: Exception) -> Response:
        """An unknown path (404) or method (405), answered in JSON as every other refusal."""
        assert isinstance(error, HTTPException)
        message = (f"no such resource: {request.url.path[:80]}" if error.status_code == 404
                   else f"{request.method} is not allowed here" if error.status_code == 405 else error.detail)
        return Json({"message": message + "; the API serves GET " + ", ".join(PATHS)}, status_code=error.status_code,
                    headers=error.headers)

    # Whatever follows /v1/products/ is the SKU asked for, so an empty one, a trailing slash or a decoded %2F
    # is answered 400 naming it. Starlette would otherwise redirect a trailing slash (307, before any token is
    # checked, to a Location built from the caller's Host header) and answer an empty SKU with no body. The
    # catch-all comes last: its `.*` stops at a newline (and `$` matches before one), so `SKU-1%0A` must meet
    # `{sku}` (any character but '/') first, and be refused whole rather than read as SKU-1.
    app = Starlette(routes=[Route("/v1/products/{sku}", one), Route("/v1/products", many), Route("/healthz", health),
                            Route("/v1/products/{sku:path}", one)], exception_handlers={HTTPException: not_served})
    app.router.redirect_slashes = False
    return app
