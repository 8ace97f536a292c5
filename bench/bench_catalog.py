"""`make bench-catalog`: the catalog read API's reads per second per core, its latency at fixed offered
loads, its cache hit ratio, against the same app reading PostgreSQL on every request and against a bare
Redis GET (the floor); then supplier updates per second through the local API Gateway (bench/gateway_load.py).

Layout on this machine's cores (printed): the API (processor/catalog_api.py on uvicorn, one worker, TLS,
bearer token; bench/catalog_server.py) runs in a process of its own on the first core; this process (the
load: aiohttp over TLS with keep-alive, redis-py's asyncio client for the floor), PostgreSQL and Redis
(both TLS only, verified) on the other. The catalog is `BENCH_CATALOG_SKUS` products (20,000) with a
quantity from each of 8 suppliers; reads pick SKUs by the retail traffic's Zipf-like popularity
(processor/traffic.py), 1 % of them among 500 SKUs the catalog does not have (404, remembered in Redis).

  * reads/s: closed loop, `CONCURRENCY` callers for `BENCH_CATALOG_SECONDS` after a warm-up; per core =
    reads over the API process's CPU seconds; "serving" adds Redis' and PostgreSQL's CPU; and the API's
    CPU for a request refused (401) before any store, the HTTP stack's own. Then both variants again in
    slices taken in turn (both servers up), for a ratio the host's drift between runs does not move.
  * p50/p99: open loop at each of `BENCH_CATALOG_RATES` (100, 500 and 2,000 requests/s), arrivals scheduled
    and latency counted from when a request was due (bench/load.py); the cache's runs and the bare GET's
    taken in turn, in slices.
  * the cache hit ratio over the first seconds from a cold cache, then with every product filled.

Environment: BENCH_CATALOG_SKUS, BENCH_CATALOG_SECONDS (closed loop, default 10), BENCH_CATALOG_RATE_S
(each offered load, default 8), BENCH_CATALOG_RATES ("100,500,2000"), BENCH_GATEWAY_SECONDS (default 10;
0 skips), BENCH_CATALOG_PURE_PYTHON=1 (without uvloop, httptools and hiredis, for comparison).
"""
from __future__ import annotations

import asyncio
import contextlib
import gc
import itertools
import json
import os
import random
import ssl
import subprocess
import sys
import tempfile
import time
from collections.abc import Coroutine
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

import aiohttp
import psycopg2
import redis.asyncio
from redis._parsers import _AsyncRESP2Parser

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench import gateway_load
from bench.load import ClosedLoop, OpenLoop, closed_loop, open_loop, proc_cpu_s
from localdev.servers import PostgresServer, RedisServer, free_port, terminate, wait_for
from localdev.tls import TlsFiles, make_tls, redis_tls
from processor.cache import CatalogCache
from processor.samples import encode, product, stock
from processor.schema import ensure_catalog_reader
from processor.sinks import run_batch
from processor.sinks.retail import RetailSink
from processor.traffic import RetailTraffic
from processor.workloads import RETAIL

T = TypeVar("T")
ROOT = Path(__file__).resolve().parent.parent
SKUS = int(os.environ.get("BENCH_CATALOG_SKUS", "20000"))
SUPPLIERS = 8
SECONDS = float(os.environ.get("BENCH_CATALOG_SECONDS", "10"))
RATE_SECONDS = float(os.environ.get("BENCH_CATALOG_RATE_S", "8"))
RATES = [float(r) for r in os.environ.get("BENCH_CATALOG_RATES", "100,500,2000").split(",") if r]
GATEWAY_SECONDS = float(os.environ.get("BENCH_GATEWAY_SECONDS", "10"))
PURE_PYTHON = os.environ.get("BENCH_CATALOG_PURE_PYTHON", "") == "1"
WARM_UP_S = 3.0
SLICES = 4  # each offered load's run, in slices taken in turn with the bare Redis GET's
CONCURRENCY = 32
INTERLEAVED_SLICES = 4  # the variants' closed loops again, in slices taken in turn
INTERLEAVED_SLICE_S = 2.5
UNKNOWN_SHARE = 0.01
UNKNOWN_SKUS = 500  # the unknown SKUs asked for, each again and again (stale links, typos)
TOKEN = "bench-storefront-token"
READER = "catalog_reader"
DATABASE = "bench_catalog"


@dataclass(frozen=True)
class Layout:
    api: set[int]  # the API process (and the gateway's)
    rest: set[int]  # this process, PostgreSQL, Redis, the emulator

    def describe(self) -> str:
        return (f"API process on core {sorted(self.api)}; load generator, PostgreSQL and Redis on core "
                f"{sorted(self.rest)} (of {os.cpu_count()}; load average {os.getloadavg()[0]:.2f} at the start)")


def layout() -> Layout:
    cores = sorted(os.sched_getaffinity(0))
    return Layout({cores[0]}, set(cores[1:]) or {cores[0]})


def load_catalog(pg: PostgresServer) -> None:
    """The schema, the reader role and SKUS products with a quantity from each supplier, as the processor commits them."""
    admin = psycopg2.connect(**pg.dsn())
    admin.autocommit = True
    with admin.cursor() as cur:
        cur.execute(f"DROP DATABASE IF EXISTS {DATABASE}")
        cur.execute(f"CREATE DATABASE {DATABASE}")
    admin.close()
    conn = psycopg2.connect(**pg.dsn(DATABASE))
    RETAIL.migrate(conn)
    ensure_catalog_reader(conn, READER)
    rng = random.Random(7)
    sink = RetailSink(None)
    batch: list = []
    for i in range(SKUS):
        sku = f"SKU-{i:05d}"
        cents = rng.randint(99, 99999)
        batch.append(RETAIL.decode(encode(product(sku, price=f"{cents // 100}.{cents % 100:02d}",
                                                  name=f"Product {i}"))))
        batch.extend(RETAIL.decode(encode(stock(sku, f"SUP-{s:02d}", rng.randint(0, 500)))) for s in range(SUPPLIERS))
        if len(batch) >= 2000:
            run_batch(conn, sink, batch)
            batch = []
    if batch:
        run_batch(conn, sink, batch)
    with conn, conn.cursor() as cur:
        cur.execute("ANALYZE")
    conn.close()


def sku_mix(count: int) -> list[str]:
    """`count` SKUs as a storefront asks for them: the retail traffic's popularity, plus unknown SKUs."""
    rng = random.Random(11)
    traffic = RetailTraffic(rng, skus=SKUS, suppliers=SUPPLIERS)
    known = rng.choices(traffic.skus, cum_weights=list(itertools.accumulate(traffic.weights)), k=count)
    return [f"SKU-X{rng.randrange(UNKNOWN_SKUS):05d}" if rng.random() < UNKNOWN_SHARE else sku for sku in known]


class ApiServer:
    """bench/catalog_server.py in its own process on `cpus`."""

    def __init__(self, variant: str, pg: PostgresServer, rs: RedisServer, tls: TlsFiles, cpus: set[int]) -> None:
        self.port = free_port()
        self.url = f"https://127.0.0.1:{self.port}"
        config = {"variant": variant, "port": self.port, "token": TOKEN, "cert": str(tls.cert), "key": str(tls.key),
                  "ca": str(tls.ca), "redis_port": rs.port, "redis_password": rs.password,
                  "postgres": {**{k: v for k, v in pg.dsn(DATABASE).items() if k not in ("sslmode", "sslrootcert")},
                               "user": READER},
                  "pure_python": PURE_PYTHON}
        self.process = subprocess.Popen([sys.executable, "-m", "bench.catalog_server", json.dumps(config)], cwd=ROOT,
                                        preexec_fn=lambda: os.sched_setaffinity(0, cpus))
        context = ssl.create_default_context(cafile=str(tls.ca))

        def up() -> bool:
            import urllib.request
            try:
                with urllib.request.urlopen(self.url + "/healthz", context=context, timeout=2) as answer:
                    return answer.status == 200
            except OSError:
                return False

        wait_for(lambda: self.process.poll() is not None or up(), 30, f"the catalog API ({variant})")
        if self.process.poll() is not None:
            raise SystemExit(f"the catalog API ({variant}) exited with {self.process.returncode}: see its output above")

    def close(self) -> None:
        terminate(self.process)  # uvicorn waits for open keep-alive connections: killed after 10 s


def database_cpu_s(pg: PostgresServer, rs: RedisServer) -> float:
    """CPU seconds of Redis and of PostgreSQL's postmaster and every backend (live or reaped)."""
    postmaster = int((pg.data / "postmaster.pid").read_text().split()[0])
    total = proc_cpu_s(rs.process.pid) + proc_cpu_s(postmaster, children=True)
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                stat = (entry / "stat").read_text().rsplit(")", 1)[1].split()
                if int(stat[1]) == postmaster:
                    total += proc_cpu_s(int(entry.name))
            except (OSError, ValueError):
                continue
    return total


@dataclass(frozen=True)
class VariantResult:
    variant: str
    saturated: ClosedLoop
    api_cpu_us: float  # the API process's CPU per read
    db_cpu_us: float  # Redis' and PostgreSQL's CPU per read
    cold_hit_ratio: float | None  # over the warm-up, from a cold cache
    loop_hit_ratio: float | None  # over the closed loop, the cache warm
    runs: list[tuple[OpenLoop, bool]]  # (result, whether it was offered above the closed loop's reads/s)
    warm_hit_ratio: float | None  # over the open-loop runs
    stack_cpu_us: float | None  # the API's CPU for a request it refuses (401) before any store: the HTTP stack's own
    floor_runs: list[OpenLoop]  # the bare Redis GET at each offered load, taken in turn with the cache's
    loop_sharing: float | None  # SKUs looked up per Redis round trip over the closed loop (reads made together share one)
    open_sharing: float | None  # the same over the open-loop runs
    cold_statements: tuple[int, int] | None  # (SKUs read from PostgreSQL, statements) over the warm-up from a cold cache


def fill_cache(pg: PostgresServer, rs: RedisServer) -> None:
    """Every product's entry, complete, as fills leave it once each product was read within the cache's TTL
    (an hour: at 500 reads/s, 1.8 million reads of this mix)."""
    conn = psycopg2.connect(**pg.dsn(DATABASE))
    cache = CatalogCache(rs.client())
    skus = [f"SKU-{i:05d}" for i in range(SKUS)]
    for start in range(0, SKUS, 500):
        cache.refresh(conn, skus[start:start + 500])
    conn.close()


class Reader:
    """GET /v1/products/{sku} over one aiohttp session (TLS verified, keep-alive, bearer token)."""

    def __init__(self, url: str, ca: Path, skus: list[str]) -> None:
        self.url = url + "/v1/products/"
        self.ssl = ssl.create_default_context(cafile=str(ca))
        self.skus = itertools.cycle(skus)
        self.headers = {"authorization": f"Bearer {TOKEN}"}
        self.session: aiohttp.ClientSession | None = None

    async def __aenter__(self) -> Reader:
        # As many connections as the closed loop's callers, all made in its warm-up: a burst of new TLS
        # connections under load would cost this client more than the requests do.
        self.session = aiohttp.ClientSession(connector=aiohttp.TCPConnector(ssl=self.ssl, limit=CONCURRENCY))
        return self

    async def __aexit__(self, *exc: object) -> None:
        assert self.session is not None
        await self.session.close()

    async def read(self) -> bool:
        assert self.session is not None
        sku = next(self.skus)
        async with self.session.get(self.url + sku, headers=self.headers) as answer:
            await answer.read()
            return answer.status == (404 if sku.startswith("SKU-X") else 200)

    async def refused(self) -> bool:
        """A read without the token: answered 401 before any store is asked."""
        assert self.session is not None
        async with self.session.get(self.url + "SKU-00000") as answer:
            await answer.read()
            return answer.status == 401

    async def stats(self) -> dict:
        assert self.session is not None
        async with self.session.get(self.url.replace("/v1/products/", "/bench/stats")) as answer:
            return await answer.json()


def sharing(before: dict, after: dict) -> float | None:
    """Lookups per Redis round trip: a hit or a miss is one lookup, and the lookups asked in the same turn of the
    API's event loop go to Redis in one round trip."""
    trips = after["redis_round_trips"] - before["redis_round_trips"]
    lookups = after["hits"] - before["hits"] + after["misses"] - before["misses"]
    return lookups / trips if trips else None


def hit_ratio(before: dict, after: dict) -> float | None:
    hits, misses = after["hits"] - before["hits"], after["misses"] - before["misses"]
    return hits / (hits + misses) if hits + misses else None


class Floor:
    """A bare GET of a product-sized string value per request, from redis-py's asyncio client over TLS."""

    def __init__(self, rs: RedisServer, tls: TlsFiles, skus: list[str]) -> None:
        self.pool = redis.asyncio.BlockingConnectionPool(
            host="127.0.0.1", port=rs.port, password=rs.password, max_connections=CONCURRENCY, timeout=30,
            connection_class=redis.asyncio.SSLConnection, **({"parser_class": _AsyncRESP2Parser} if PURE_PYTHON else {}),
            **{k: v for k, v in redis_tls(str(tls.ca)).items() if k != "ssl"})
        self.client = redis.asyncio.Redis(connection_pool=self.pool)
        self.skus = skus

    async def __aenter__(self) -> Floor:
        value = json.dumps({"sku": "SKU-00000", "name": "Product 0", "category": "kitchen", "price": "19.99",
                            "currency": "USD", "updated_at": "2026-11-01T12:00:00.000000Z", "total_quantity": 2000})
        known = [s for s in self.skus if not s.startswith("SKU-X")]
        await self.client.mset({f"floor:{sku}": value for sku in set(known)})
        self.keys = itertools.cycle(f"floor:{sku}" for sku in known)
        await closed_loop(self.get, CONCURRENCY, WARM_UP_S)  # connections made and warm, as the API's are
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.client.aclose()
        await self.pool.aclose()

    async def get(self) -> bool:
        return await self.client.get(next(self.keys)) is not None


async def measure_variant(variant: str, server: ApiServer, tls: TlsFiles, skus: list[str], pg: PostgresServer,
                          rs: RedisServer) -> VariantResult:
    """The closed loop, then each offered load; for the cache, each load in slices taken in turn with the bare
    Redis GET's, so that both meet the same moments of this shared machine."""
    async with Reader(server.url, tls.ca, skus) as reader:
        cold = await reader.stats()
        await closed_loop(reader.read, CONCURRENCY, WARM_UP_S)  # connections made (TLS); the cache from cold
        warmed = await reader.stats()
        if variant == "cache":
            fill_cache(pg, rs)
        start, db_start = await reader.stats(), database_cpu_s(pg, rs)
        saturated = await closed_loop(reader.read, CONCURRENCY, SECONDS)
        end, db_end = await reader.stats(), database_cpu_s(pg, rs)
        runs, floor_runs = [], []
        async with Floor(rs, tls, skus) as floor:
            for rate in RATES:
                over = rate > saturated.answered_per_s
                if over:  # above capacity the queue only grows: a short run shows it without waiting for the backlog
                    runs.append((OpenLoop.of([await open_loop(reader.read, rate, 3.0)]), True))
                    if variant == "cache":
                        floor_runs.append(OpenLoop.of([await open_loop(floor.get, rate, 3.0)]))
                    continue
                api, bare = [], []
                for _ in range(SLICES):
                    api.append(await open_loop(reader.read, rate, RATE_SECONDS / SLICES))
                    if variant == "cache":
                        bare.append(await open_loop(floor.get, rate, RATE_SECONDS / SLICES))
                runs.append((OpenLoop.of(api), False))
                if bare:
                    floor_runs.append(OpenLoop.of(bare))
        warm = await reader.stats()
        stack = None
        if variant == "cache":
            refused = await closed_loop(reader.refused, CONCURRENCY, 3.0)
            stack = ((await reader.stats())["cpu_s"] - warm["cpu_s"]) / refused.answers * 1e6
    reads = saturated.answers
    cache = variant == "cache"
    return VariantResult(variant, saturated, (end["cpu_s"] - start["cpu_s"]) / reads * 1e6,
                         (db_end - db_start) / reads * 1e6, hit_ratio(cold, warmed) if cache else None,
                         hit_ratio(start, end) if cache else None, runs, hit_ratio(end, warm) if cache else None, stack,
                         floor_runs, sharing(start, end) if cache else None, sharing(end, warm) if cache else None,
                         (warmed["database_reads"] - cold["database_reads"],
                          warmed["database_round_trips"] - cold["database_round_trips"]) if cache else None)


@dataclass(frozen=True)
class Interleaved:
    """Each variant's closed loop in slices taken in turn, both servers up: the two meet the same moments of
    the host, so their ratio does not move with it as the ratio of runs minutes apart does."""

    slices: int
    slice_s: float
    reads_per_s: dict[str, float]
    api_cpu_us: dict[str, float]
    db_cpu_us: dict[str, float]

    def ratio(self) -> float:
        return self.reads_per_s["cache"] / self.reads_per_s["postgres"]

    def per_serving_core(self) -> float:
        return ((self.api_cpu_us["postgres"] + self.db_cpu_us["postgres"])
                / (self.api_cpu_us["cache"] + self.db_cpu_us["cache"]))


async def measure_interleaved(servers: dict[str, ApiServer], tls: TlsFiles, skus: list[str], pg: PostgresServer,
                              rs: RedisServer, slices: int = INTERLEAVED_SLICES,
                              slice_s: float = INTERLEAVED_SLICE_S) -> Interleaved:
    answers = dict.fromkeys(servers, 0)
    wall, api_cpu, db_cpu = dict.fromkeys(servers, 0.0), dict.fromkeys(servers, 0.0), dict.fromkeys(servers, 0.0)
    async with contextlib.AsyncExitStack() as stack:
        readers = {variant: await stack.enter_async_context(Reader(server.url, tls.ca, skus))
                   for variant, server in servers.items()}
        for reader in readers.values():
            await closed_loop(reader.read, CONCURRENCY, 1.0)  # its connections made (TLS) before any slice counts
        for _ in range(slices):
            for variant, reader in readers.items():
                before, db_before = await reader.stats(), database_cpu_s(pg, rs)
                run = await closed_loop(reader.read, CONCURRENCY, slice_s)
                after, db_after = await reader.stats(), database_cpu_s(pg, rs)
                answers[variant] += run.answers
                wall[variant] += run.answers / run.answered_per_s
                api_cpu[variant] += after["cpu_s"] - before["cpu_s"]
                db_cpu[variant] += db_after - db_before
    return Interleaved(slices, slice_s, {v: answers[v] / wall[v] for v in servers},
                       {v: api_cpu[v] / answers[v] * 1e6 for v in servers}, {v: db_cpu[v] / answers[v] * 1e6 for v in servers})


READS_HEADER = (f"{'variant':<24} {'reads/s':>9} {'API CPU/read':>13} {'per API core':>13} {'DB CPU/read':>12} "
                f"{'per serving core':>17}")


def reads_row(name: str, reads_per_s: float, api_cpu_us: float, db_cpu_us: float) -> str:
    """A variant's reads/s, its CPU per read and the reads per core they make, under READS_HEADER."""
    return (f"{name:<24} {reads_per_s:>9,.0f} {api_cpu_us:>10,.0f} us {1e6 / api_cpu_us:>13,.0f} "
            f"{db_cpu_us:>9,.0f} us {1e6 / (api_cpu_us + db_cpu_us):>17,.0f}")


def print_reads(results: dict[str, VariantResult], interleaved: Interleaved | None = None) -> None:
    cache, direct = results["cache"], results.get("postgres")
    floor = cache.floor_runs
    print(f"\nreads/s at saturation (closed loop, {CONCURRENCY} callers, {SECONDS:.0f} s after {WARM_UP_S:.0f} s of "
          f"warm-up; per core = reads over the "
          f"API process's CPU; serving CPU adds Redis and PostgreSQL)")
    print(READS_HEADER + f" {'p50 ms':>7} {'p99 ms':>7} {'client CPU':>11}")
    names = {"cache": "API, Redis cache-aside", "postgres": "API, PostgreSQL per read"}
    for r in results.values():
        s = r.saturated
        print(reads_row(names[r.variant], s.answered_per_s, r.api_cpu_us, r.db_cpu_us)
              + f" {s.p50_ms:>7.2f} {s.p99_ms:>7.2f} {s.client_cpu_share:>10.0%}"
              + (f"  ({s.failed} failed)" if s.failed else ""))
    print(f"{'API, refused before a store':<24} {'':>9} {cache.stack_cpu_us:>10,.0f} us {1e6 / cache.stack_cpu_us:>13,.0f}"
          "   (401 without the token: uvicorn, TLS and Starlette alone)")
    print(f"\ncache hit ratio: {cache.cold_hit_ratio:.1%} over the first {WARM_UP_S:.0f} s from a cold cache; then every "
          f"product filled (as once each was read within the TTL): {cache.loop_hit_ratio:.1%} over the closed loop's "
          f"{cache.saturated.answers:,} reads, {cache.warm_hit_ratio:.1%} over the open-loop runs "
          f"({UNKNOWN_SHARE:.0%} of reads ask for SKUs the catalog does not have: a remembered 404 is a hit)")
    print(f"reads per Redis round trip (the lookups made in the same turn of the API's event loop share one): "
          f"{cache.loop_sharing:.1f} at saturation, {cache.open_sharing:.1f} over the open-loop runs")
    if cache.cold_statements and cache.cold_statements[1]:
        misses, statements = cache.cold_statements
        print(f"misses per PostgreSQL statement (the misses of a turn share one) over the warm-up from a cold cache: "
              f"{misses / statements:.1f} ({misses:,} SKUs in {statements:,} statements)")
    print(f"\nlatency at fixed offered loads (open loop: latency from when each request was due; {RATE_SECONDS:.0f} s a "
          f"load, the cache's and the bare GET's in {SLICES} slices each, taken in turn)")
    print(f"{'variant':<24} {'offered/s':>10} {'answered/s':>11} {'p50 ms':>7} {'p99 ms':>7} {'max ms':>8} "
          f"{'send lag p99':>13} {'client CPU':>11}")
    rows = [(names[r.variant], run, over) for r in results.values() for run, over in r.runs]
    rows += [("bare Redis GET (floor)", run, False) for run in floor]
    for name, run, over in rows:
        print(f"{name:<24} {run.offered_per_s:>10,.0f} {run.answered_per_s:>11,.0f} {run.p50_ms:>7.2f} "
              f"{run.p99_ms:>7.2f} {run.max_ms:>8.1f} {run.send_lag_p99_ms:>10.2f} ms {run.client_cpu_share:>10.0%}"
              + ("  above the closed loop's reads/s: 3 s" if over else "")
              + ("  fell behind" if run.answered_per_s < 0.95 * run.offered_per_s else "")
              + (f"  ({run.failed} failed)" if run.failed else ""))
    if interleaved is not None:
        i = interleaved
        print(f"\nthe two variants interleaved ({i.slices} closed-loop slices of {i.slice_s:g} s each, taken in turn, both "
              f"servers up: both meet the same moments of the host)")
        print(READS_HEADER)
        for variant in ("cache", "postgres"):
            print(reads_row(names[variant], i.reads_per_s[variant], i.api_cpu_us[variant], i.db_cpu_us[variant]))
    print("\ntargets")
    if direct is not None:
        ratio = cache.saturated.answered_per_s / direct.saturated.answered_per_s
        per_core = (direct.api_cpu_us + direct.db_cpu_us) / (cache.api_cpu_us + cache.db_cpu_us)
        if interleaved is not None:
            print(f"  reads/s against PostgreSQL per read, interleaved: {interleaved.ratio():.1f}x (target >= 10x: "
                  f"{'met' if interleaved.ratio() >= 10 else 'MISSED'}); per serving core {interleaved.per_serving_core():.1f}x")
            print(f"    (the runs above, minutes apart: {ratio:.1f}x, per serving core {per_core:.1f}x)")
        else:
            print(f"  reads/s against PostgreSQL per read: {ratio:.1f}x (target >= 10x: "
                  f"{'met' if ratio >= 10 else 'MISSED'}); per serving core {per_core:.1f}x")
    for (run, _), bare in zip(cache.runs, floor, strict=True):
        ratio = run.p99_ms / bare.p99_ms
        target = f" (target <= 3x at 500/s: {'met' if ratio <= 3 else 'MISSED'})" if run.offered_per_s == 500 else ""
        print(f"  p99 at {run.offered_per_s:,.0f}/s against the bare Redis GET: {run.p99_ms:.2f} / {bare.p99_ms:.2f} ms "
              f"= {ratio:.1f}x{target}")
        if max(run.send_lag_p99_ms, bare.send_lag_p99_ms) > 0.5 * bare.p99_ms:
            print(f"    (this client started requests up to {max(run.send_lag_p99_ms, bare.send_lag_p99_ms):.1f} ms late "
                  "(p99): its own core was busy, so this p99 is partly the load generator's)")
    print(f"load average at the end: {os.getloadavg()[0]:.2f} (this benchmark uses ~2; the rest is other work)")


def run_async(work: Coroutine[Any, Any, T]) -> T:
    """The load on uvloop, as the server runs, unless BENCH_CATALOG_PURE_PYTHON=1."""
    if PURE_PYTHON:
        return asyncio.run(work)
    import uvloop
    with asyncio.Runner(loop_factory=uvloop.new_event_loop) as runner:
        return runner.run(work)


def main() -> int:
    where = layout()
    print("catalog read API benchmark: " + where.describe())
    print("server: uvicorn, one worker, " + ("asyncio's loop, h11, redis-py's Python parser (BENCH_CATALOG_PURE_PYTHON=1)"
                                             if PURE_PYTHON else "uvloop, httptools, hiredis (as the service runs)"))
    directory = Path(tempfile.mkdtemp(prefix="bench-catalog-"))
    tls = make_tls(directory / "tls")
    os.sched_setaffinity(0, where.rest)
    pg = PostgresServer(cpus=where.rest, tls=tls, durable=True)
    rs = RedisServer(password="bench", cpus=where.rest, tls=tls)
    try:
        started = time.perf_counter()
        load_catalog(pg)
        print(f"catalog: {SKUS:,} products x {SUPPLIERS} suppliers' quantities loaded in "
              f"{time.perf_counter() - started:.1f} s; PostgreSQL and Redis TLS only, verified; the API over TLS "
              f"with a bearer token")
        skus = sku_mix(200_000)
        # This process is the load generator: a full collection of what the catalog's loading left would
        # stall every due request behind it and count as the API's latency. Out of the collector's reach.
        gc.collect()
        gc.freeze()
        results, servers = {}, {}
        try:
            for variant in ("cache", "postgres"):
                rs.client().flushall()
                servers[variant] = ApiServer(variant, pg, rs, tls, where.api)
                results[variant] = run_async(measure_variant(variant, servers[variant], tls, skus, pg, rs))
            fill_cache(pg, rs)  # the cache's entries again (the PostgreSQL variant's run started from an empty Redis)
            interleaved = run_async(measure_interleaved(servers, tls, skus, pg, rs))
        finally:
            for server in servers.values():
                server.close()
        print_reads(results, interleaved)
    finally:
        pg.close()
        rs.close()
    if GATEWAY_SECONDS > 0:
        gateway_load.run(where.api, where.rest, tls, GATEWAY_SECONDS)
    return 0


if __name__ == "__main__":
    sys.exit(main())
