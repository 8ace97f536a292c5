"""Read side of the retail catalog: `get_product(sku)`, Redis first, PostgreSQL on a miss."""
from __future__ import annotations

from typing import Any

import psycopg2
import redis

from processor.cache import CatalogCache


def get_product(sku: str, *, conn: psycopg2.extensions.connection | None = None, cache: CatalogCache | None = None) -> dict[str,
        Any] | None:
    """The product with `total_quantity` across suppliers, or None when unknown.

    Without `conn`/`cache`, connections are made from the environment (see processor.config).
    """
    if conn is None or cache is None:
        from processor.config import ProcessorConfig
        from processor.connections import connect_postgres, connect_redis

        settings = ProcessorConfig.from_env()
        conn = conn or connect_postgres(settings)
        cache = cache or CatalogCache(connect_redis(settings), settings.cache_ttl_s)
    try:
        cached = cache.get(sku)
    except redis.RedisError:
        cached = None
    if cached is not None:
        cache.hits += 1
        return cached
    cache.misses += 1
    return cache.fill(conn, sku)
