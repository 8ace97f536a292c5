"""The catalog read API (processor/catalog_api.py) on uvicorn, against a real PostgreSQL and a real Redis."""
from __future__ import annotations

import asyncio
import socket
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass

import psycopg2
import pytest
import redis
import requests

from localdev.servers import PostgresServer, RedisServer, free_port, wait_for
from processor.cache import KEY_PREFIX, CatalogCache
from processor.catalog_api import MISSING_TTL_S, Catalog, ConnectionPool, create_app, redis_clients
from processor.samples import encode, product, stock
from processor.schema import ensure_catalog_reader
from processor.sinks import run_batch
from processor.sinks.retail import RetailSink
from processor.workloads import RETAIL
from tests.helpers import served_in_thread

TOKEN = "storefront-test-token"
READER = "catalog_reader"  # the API reads as the SELECT-only role the migration makes


@dataclass
class Served:
    url: str
    catalog: Catalog

    def get(self, path: str, token: str | None = TOKEN, **params: object) -> requests.Response:
        headers = {"authorization": f"Bearer {token}"} if token else {}
        return requests.get(self.url + path, params=params, headers=headers, timeout=10)


def commit(conn: psycopg2.extensions.connection, bodies: list[dict], cache: CatalogCache | None) -> None:
    """A processor batch: committed to PostgreSQL, then (with a cache) written into Redis."""
    run_batch(conn, RetailSink(cache), [RETAIL.decode(encode(b)) for b in bodies])


@contextmanager
def serving(catalog: Catalog) -> Iterator[Served]:
    """The app on uvicorn in a thread, until the block ends."""
    try:
        with served_in_thread(create_app(catalog, [TOKEN])) as port:
            yield Served(f"http://127.0.0.1:{port}", catalog)
    finally:
        catalog.pool.close()


def reader_pool(postgres: PostgresServer, database: str) -> ConnectionPool:
    return ConnectionPool(lambda: psycopg2.connect(**{**postgres.dsn(database), "user": READER}), size=2)


@pytest.fixture()
def api(postgres: PostgresServer, database: str, conn: psycopg2.extensions.connection,
        redis_client: redis.Redis, redis_server: RedisServer) -> Iterator[Served]:
    RETAIL.migrate(conn)
    ensure_catalog_reader(conn, READER)
    fills, hits = redis_clients(port=redis_server.port, password=redis_server.password)
    with serving(Catalog(reader_pool(postgres, database), CatalogCache(fills), hits)) as served:
        yield served


def test_a_product_is_served_with_its_total_quantity_and_then_from_redis(
        api: Served, conn: psycopg2.extensions.connection, redis_client: redis.Redis) -> None:
    commit(conn, [product("SKU-1", price="9.50"), stock("SKU-1", "A", 2), stock("SKU-1", "B", 3)], None)
    first = api.get("/v1/products/SKU-1")
    assert first.status_code == 200
    assert (first.json()["sku"], first.json()["price"], first.json()["total_quantity"]) == ("SKU-1", "9.5", 5)
    commit(conn, [stock("SKU-1", "A", 40, at=1)], None)  # PostgreSQL changes behind the cache's back...
    assert api.get("/v1/products/SKU-1").json()["total_quantity"] == 5  # ...the entry answers: no query
    assert redis_client.hget(KEY_PREFIX + "SKU-1", "c") == b"1"


def test_a_commit_by_the_processor_is_served_at_once(api: Served, conn: psycopg2.extensions.connection,
                                                      redis_client: redis.Redis) -> None:
    cache = CatalogCache(redis_client)
    commit(conn, [product("SKU-2"), stock("SKU-2", "A", 1)], cache)
    assert api.get("/v1/products/SKU-2").json()["total_quantity"] == 1
    commit(conn, [stock("SKU-2", "A", 7, at=1)], cache)
    assert api.get("/v1/products/SKU-2").json()["total_quantity"] == 7


def test_an_unknown_sku_is_404_and_is_remembered_in_redis_rather_than_queried_again(
        api: Served, conn: psycopg2.extensions.connection, redis_client: redis.Redis) -> None:
    assert api.get("/v1/products/SKU-404").status_code == 404
    assert 0 < redis_client.ttl(KEY_PREFIX + "SKU-404") <= MISSING_TTL_S
    commit(conn, [product("SKU-404")], None)  # in PostgreSQL, but nothing told the cache
    answer = api.get("/v1/products/SKU-404")
    assert (answer.status_code, answer.json()["message"]) == (404, "no product SKU-404")


def test_a_product_the_processor_commits_ends_a_remembered_404_at_once(
        api: Served, conn: psycopg2.extensions.connection, redis_client: redis.Redis) -> None:
    assert api.get("/v1/products/SKU-NEW").status_code == 404
    commit(conn, [product("SKU-NEW", price="3.00"), stock("SKU-NEW", "A", 4)], CatalogCache(redis_client))
    answer = api.get("/v1/products/SKU-NEW")
    assert answer.status_code == 200
    assert (answer.json()["price"], answer.json()["total_quantity"]) == ("3", 4)


def test_the_batch_form_answers_found_products_and_lists_the_missing(
        api: Served, conn: psycopg2.extensions.connection) -> None:
    commit(conn, [product("SKU-A"), product("SKU-B")], None)
    answer = requests.get(api.url + "/v1/products", params=[("sku", "SKU-A"), ("sku", "SKU-X"), ("sku", "SKU-B")],
                          headers={"authorization": f"Bearer {TOKEN}"}, timeout=10)
    assert answer.status_code == 200
    assert sorted(answer.json()["products"]) == ["SKU-A", "SKU-B"] and answer.json()["missing"] == ["SKU-X"]


def test_a_batch_asks_redis_once_and_postgresql_only_for_the_skus_redis_did_not_hold(
        api: Served, conn: psycopg2.extensions.connection) -> None:
    commit(conn, [product("SKU-A"), stock("SKU-A", "S", 2), product("SKU-B"), stock("SKU-B", "S", 5)], None)
    assert api.get("/v1/products/SKU-A").status_code == 200  # SKU-A's entry is filled
    before = api.catalog.database_reads
    params = [("sku", "SKU-A"), ("sku", "SKU-B"), ("sku", "SKU-A"), ("sku", "SKU-Y")]
    answer = requests.get(api.url + "/v1/products", params=params, headers={"authorization": f"Bearer {TOKEN}"},
                          timeout=10)
    assert {sku: p["total_quantity"] for sku, p in answer.json()["products"].items()} == {"SKU-A": 2, "SKU-B": 5}
    assert answer.json()["missing"] == ["SKU-Y"]
    assert api.catalog.database_reads - before == 2  # SKU-B and SKU-Y; SKU-A once, from Redis
    again = requests.get(api.url + "/v1/products", params=params, headers={"authorization": f"Bearer {TOKEN}"},
                         timeout=10)
    assert again.json() == answer.json() and api.catalog.database_reads - before == 2  # all from Redis now


def test_reads_made_together_share_one_redis_round_trip_and_their_misses_one_statement(
        postgres: PostgresServer, database: str, conn: psycopg2.extensions.connection, redis_client: redis.Redis,
        redis_server: RedisServer) -> None:
    RETAIL.migrate(conn)
    ensure_catalog_reader(conn, READER)
    commit(conn, [body for i in range(8) for body in (product(f"SKU-{i}"), stock(f"SKU-{i}", "A", i + 1))], None)
    CatalogCache(redis_client).refresh(conn, [f"SKU-{i}" for i in range(6)])  # SKU-6 and SKU-7 are not cached
    connections = len(redis_client.client_list())
    fills, hits = redis_clients(port=redis_server.port, password=redis_server.password)
    catalog = Catalog(reader_pool(postgres, database), CatalogCache(fills), hits)

    async def together() -> tuple[list, tuple, int]:
        try:
            answers = await asyncio.gather(*(catalog.product(f"SKU-{i}") for i in (0, 1, 2, 3, 6, 6)),
                                           catalog.products(["SKU-4", "SKU-5", "SKU-7", "SKU-NO"]))
            return answers[:6], answers[6], len(redis_client.client_list()) - connections
        finally:
            await catalog.close()

    singles, (found, missing), opened = asyncio.run(together())
    assert [p["total_quantity"] for p in singles] == [1, 2, 3, 4, 7, 7]
    assert {sku: p["total_quantity"] for sku, p in found.items()} == {"SKU-4": 5, "SKU-5": 6, "SKU-7": 8}
    assert missing == ["SKU-NO"]
    assert catalog.redis_round_trips == 1  # every lookup in one pipeline, not seven commands
    assert (catalog.database_round_trips, catalog.database_reads) == (1, 3)  # SKU-6 (asked twice), SKU-7, SKU-NO
    assert opened == 2  # the lookups' one connection, and the fill's cache write's
    assert {sku: CatalogCache(redis_client).lookup(sku)[0] for sku in ("SKU-6", "SKU-7", "SKU-NO")} == {
        "SKU-6": True, "SKU-7": True, "SKU-NO": True}  # the misses are cached now, SKU-NO remembered as missing


def test_when_redis_fails_every_read_that_shared_its_round_trip_is_answered_from_postgresql(
        postgres: PostgresServer, database: str, conn: psycopg2.extensions.connection) -> None:
    RETAIL.migrate(conn)
    ensure_catalog_reader(conn, READER)
    commit(conn, [body for i in range(3) for body in (product(f"SKU-{i}"), stock(f"SKU-{i}", "A", 10 * i))], None)
    fills, hits = redis_clients(port=free_port(), socket_connect_timeout=1)  # nothing listens
    catalog = Catalog(reader_pool(postgres, database), CatalogCache(fills), hits)

    async def together() -> list:
        try:
            return await asyncio.gather(*(catalog.product(f"SKU-{i}") for i in range(3)))
        finally:
            await catalog.close()

    assert [p["total_quantity"] for p in asyncio.run(together())] == [0, 10, 20]
    assert (catalog.redis_round_trips, catalog.database_reads, catalog.redis_skipped) == (1, 3, 0)


def test_with_redis_down_products_are_read_from_postgresql_and_the_task_stays_healthy_but_degraded(
        postgres: PostgresServer, database: str, conn: psycopg2.extensions.connection) -> None:
    RETAIL.migrate(conn)
    ensure_catalog_reader(conn, READER)
    commit(conn, [product("SKU-D", price="4.25"), stock("SKU-D", "A", 3)], None)
    nowhere = free_port()  # nothing listens: every Redis call fails to connect
    fills, hits = redis_clients(port=nowhere, socket_connect_timeout=1)
    with serving(Catalog(reader_pool(postgres, database), CatalogCache(fills), hits)) as api:
        answer = api.get("/v1/products/SKU-D")
        assert (answer.status_code, answer.json()["total_quantity"], answer.json()["price"]) == (200, 3, "4.25")
        assert api.get("/v1/products/SKU-NONE").status_code == 404
        assert api.catalog.database_reads == 2
        health = requests.get(api.url + "/healthz", timeout=10)
        assert (health.status_code, health.json()) == (200, {"status": "degraded", "postgres": "ok",
                                                              "redis": "unavailable"})


class SilentRedis:
    """A port that accepts connections and never answers: Redis in a partition or a failover."""

    def __init__(self) -> None:
        self.listener = socket.create_server(("127.0.0.1", 0))
        self.port = self.listener.getsockname()[1]
        self.held: list[socket.socket] = []
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self) -> None:
        while True:
            try:
                self.held.append(self.listener.accept()[0])
            except OSError:
                return

    def close(self) -> None:
        self.listener.close()
        for held in self.held:
            held.close()


def test_a_redis_that_does_not_answer_is_asked_once_and_then_rested_while_postgresql_answers(
        postgres: PostgresServer, database: str, conn: psycopg2.extensions.connection) -> None:
    RETAIL.migrate(conn)
    ensure_catalog_reader(conn, READER)
    commit(conn, [product("SKU-H"), stock("SKU-H", "A", 3)], None)
    silent = SilentRedis()
    fills, hits = redis_clients(port=silent.port, socket_timeout=0.3, socket_connect_timeout=0.3)
    try:
        with serving(Catalog(reader_pool(postgres, database), CatalogCache(fills), hits, redis_rest_s=600)) as api:
            for _ in range(5):
                assert api.get("/v1/products/SKU-H").json()["total_quantity"] == 3
            assert api.catalog.database_reads == 5
            assert api.catalog.redis_skipped == 4  # only the first read waited for Redis (and its one retry)
            assert len(silent.held) <= 2  # the fills offered nothing to it either
    finally:
        silent.close()


def test_a_redis_that_stops_answering_is_asked_again_once_its_rest_is_over(
        postgres: PostgresServer, database: str, conn: psycopg2.extensions.connection, redis_client: redis.Redis,
        redis_server: RedisServer) -> None:
    RETAIL.migrate(conn)
    ensure_catalog_reader(conn, READER)
    commit(conn, [product("SKU-P"), stock("SKU-P", "A", 8)], None)
    CatalogCache(redis_client).refresh(conn, ["SKU-P"])
    fills, hits = redis_clients(port=redis_server.port, password=redis_server.password, socket_timeout=0.3)
    with serving(Catalog(reader_pool(postgres, database), CatalogCache(fills), hits, redis_rest_s=0.5)) as api:
        assert api.get("/v1/products/SKU-P").status_code == 200 and api.catalog.database_reads == 0
        redis_client.execute_command("CLIENT", "PAUSE", "1500", "ALL")  # Redis stops answering every client
        try:
            assert api.get("/v1/products/SKU-P").json()["total_quantity"] == 8  # from PostgreSQL
            assert api.catalog.database_reads == 1
        finally:
            redis_client.execute_command("CLIENT", "UNPAUSE")
        served_before = api.catalog.cache.hits
        wait_for(lambda: api.get("/v1/products/SKU-P").status_code == 200 and api.catalog.cache.hits > served_before,
                 10, "a read served from Redis again")
        health = requests.get(api.url + "/healthz", timeout=10)
        assert health.json()["redis"] == "ok"


def test_with_postgresql_down_a_cached_product_is_served_and_a_miss_is_503_with_retry_after(
        postgres: PostgresServer, database: str, conn: psycopg2.extensions.connection, redis_client: redis.Redis,
        redis_server: RedisServer) -> None:
    RETAIL.migrate(conn)
    commit(conn, [product("SKU-C", price="2.00"), stock("SKU-C", "A", 6)], None)
    CatalogCache(redis_client).refresh(conn, ["SKU-C"])  # SKU-C's entry is complete in Redis
    nowhere = free_port()  # nothing listens: every PostgreSQL connection is refused
    pool = ConnectionPool(lambda: psycopg2.connect(**{**postgres.dsn(database), "port": nowhere}), size=2)
    fills, hits = redis_clients(port=redis_server.port, password=redis_server.password)
    with serving(Catalog(pool, CatalogCache(fills), hits)) as api:
        assert api.get("/v1/products/SKU-C").json()["total_quantity"] == 6
        miss = api.get("/v1/products/SKU-OTHER")
        assert (miss.status_code, miss.headers["retry-after"]) == (503, "1")
        assert miss.json() == {"message": "the catalog's database is unavailable: retry shortly"}
        batch = requests.get(api.url + "/v1/products", params=[("sku", "SKU-C"), ("sku", "SKU-OTHER")],
                             headers={"authorization": f"Bearer {TOKEN}"}, timeout=10)
        assert batch.status_code == 503
        health = requests.get(api.url + "/healthz", timeout=10)
        assert (health.status_code, health.json()) == (503, {"status": "unavailable", "postgres": "unavailable",
                                                              "redis": "ok"})


@pytest.mark.parametrize("token", [None, "someone-elses-token"])
def test_a_caller_without_a_valid_token_is_refused_with_401(api: Served, token: str | None) -> None:
    answer = api.get("/v1/products/SKU-1", token=token)
    assert answer.status_code == 401 and answer.headers["www-authenticate"] == "Bearer"


def test_a_path_that_is_not_a_sku_and_an_oversized_batch_are_refused_with_400(api: Served) -> None:
    assert api.get("/v1/products/-bad").status_code == 400
    oversized = requests.get(api.url + "/v1/products", params=[("sku", f"S{i}") for i in range(101)],
                             headers={"authorization": f"Bearer {TOKEN}"}, timeout=10)
    assert oversized.status_code == 400


@pytest.mark.parametrize(("path", "named"), [("/v1/products/", "''"), ("/v1/products/SKU-1/", "'SKU-1/'"),
                                            ("/v1/products/SKU-1%2Fx", "'SKU-1/x'"), ("/v1/products/%20", "' '"),
                                            ("/v1/products/SKU-1%0A", "'SKU-1\\n'")])
def test_an_empty_sku_a_trailing_slash_or_an_encoded_slash_is_refused_400_naming_it_and_never_redirected(
        api: Served, path: str, named: str) -> None:
    answer = requests.get(api.url + path, headers={"authorization": f"Bearer {TOKEN}"}, allow_redirects=False,
                          timeout=10)
    assert answer.status_code == 400 and "location" not in answer.headers
    assert answer.json()["message"].startswith(f"not a SKU: {named} (a SKU is a letter or digit")
    assert api.catalog.database_reads == 0


def test_a_caller_without_a_token_is_refused_401_not_redirected_to_the_host_it_names(api: Served) -> None:
    answer = requests.get(api.url + "/v1/products/", headers={"host": "elsewhere.example"}, allow_redirects=False,
                          timeout=10)
    assert (answer.status_code, answer.headers.get("location")) == (401, None)


def test_a_lookalike_sku_is_refused_with_the_character_that_is_not_ascii_spelt_out(api: Served) -> None:
    cyrillic = api.get("/v1/products/SKU-\u0410")  # a Cyrillic capital A, drawn as the Latin one
    assert cyrillic.status_code == 400
    assert cyrillic.json()["message"].startswith("not a SKU: 'SKU-\\u0410'")
    batch = api.get("/v1/products", sku=["SKU-1", "SKU-\uff11"])  # a fullwidth digit one
    assert batch.status_code == 400 and "(not: 'SKU-\\uff11';" in batch.json()["message"]


def test_a_long_refused_sku_is_named_by_its_first_80_characters_and_its_length(api: Served) -> None:
    answer = api.get("/v1/products/" + "S" * 79 + "А" + "S" * 4000)
    assert answer.status_code == 400
    assert answer.json()["message"].startswith("not a SKU: '" + "S" * 79 + "\\u0410'... (4080 characters) (")


def test_a_query_parameter_an_endpoint_does_not_take_is_refused_with_400_naming_it(api: Served) -> None:
    misspelt = api.get("/v1/products", skus="SKU-1")
    assert (misspelt.status_code, misspelt.json()) == (400, {"message": "unknown query parameter(s) 'skus': it takes only sku"})
    extra = api.get("/v1/products/SKU-1", fields="name")
    assert (extra.status_code, extra.json()) == (400, {"message": "unknown query parameter(s) 'fields': it takes none"})


def test_an_unknown_path_or_method_is_refused_in_json_naming_what_the_api_serves(api: Served) -> None:
    path = api.get("/v2/products/SKU-1")
    assert path.status_code == 404 and path.json()["message"].startswith("no such resource: /v2/products/SKU-1;")
    method = requests.post(api.url + "/v1/products/SKU-1", headers={"authorization": f"Bearer {TOKEN}"}, timeout=10)
    assert (method.status_code, set(method.headers["allow"].split(", "))) == (405, {"GET", "HEAD"})
    assert "GET /v1/products/{sku}" in method.json()["message"]


def test_the_health_check_answers_200_while_postgres_and_redis_answer(api: Served) -> None:
    answer = requests.get(api.url + "/healthz", timeout=10)
    assert (answer.status_code, answer.json()) == (200, {"status": "ok", "postgres": "ok", "redis": "ok"})


def test_the_api_reads_as_a_role_that_can_select_the_catalog_and_change_nothing(
        api: Served, postgres: PostgresServer, database: str) -> None:
    reader = psycopg2.connect(**{**postgres.dsn(database), "user": READER})
    try:
        with reader.cursor() as cur:
            cur.execute("SELECT count(*) FROM products")
            reader.rollback()
            for statement in ("INSERT INTO inventory (sku, supplier_id, quantity, updated_at, event_id) "
                              "VALUES ('S', 'A', 1, now(), gen_random_uuid())",
                              "DELETE FROM products", "SELECT count(*) FROM cache_pending"):
                with pytest.raises(psycopg2.errors.InsufficientPrivilege):
                    cur.execute(statement)
                reader.rollback()
    finally:
        reader.close()
