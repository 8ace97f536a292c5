"""Redis cache for the retail catalog: cache-aside reads, versioned writes.

Every product entry stores the catalog version it was built from. Writes go through a
compare-and-set script that refuses an older version, so a reader that loaded an old
snapshot can never overwrite the processor's fresher one. SKUs the processor changed
are listed in `cache_dirty` in the batch transaction and only cleared once Redis has
the new version: a Redis outage leaves them listed, and `drain_dirty` refreshes them
as soon as Redis answers again.
"""
from __future__ import annotations

import json
import logging
from collections.abc import Sequence
from decimal import Decimal
from typing import Any

import redis

logger = logging.getLogger(__name__)

KEY_PREFIX = "product:"
SNAPSHOT = """
SELECT p.sku, p.name, p.category, p.price, p.currency, p.updated_at,
       COALESCE((SELECT sum(quantity) FROM inventory i WHERE i.sku = p.sku), 0) AS total_quantity,
       COALESCE(v.version, 0) AS version
  FROM products p LEFT JOIN catalog_versions v ON v.sku = p.sku
 WHERE p.sku = ANY(%s)
"""
VERSIONS = "SELECT sku, version FROM catalog_versions WHERE sku = ANY(%s)"
# KEYS[1] product key; ARGV: version, payload (or "" to delete), ttl seconds.
COMPARE_AND_SET = """
local current = redis.call('HGET', KEYS[1], 'v')
if current and tonumber(current) >= tonumber(ARGV[1]) then return 0 end
if ARGV[2] == '' then
  redis.call('DEL', KEYS[1])
  redis.call('HSET', KEYS[1], 'v', ARGV[1])
else
  redis.call('HSET', KEYS[1], 'v', ARGV[1], 'p', ARGV[2])
end
redis.call('EXPIRE', KEYS[1], ARGV[3])
return 1
"""


def _payload(row: Sequence[Any]) -> dict[str, Any]:
    sku, name, category, price, currency, updated_at, total, _version = row
    return {"sku": sku, "name": name, "category": category, "price": str(Decimal(price).normalize()),
            "currency": currency.strip(), "updated_at": updated_at.isoformat(), "total_quantity": int(total)}


class CatalogCache:
    def __init__(self, client: redis.Redis, ttl_s: int = 3600) -> None:
        self.client = client
        self.ttl_s = ttl_s
        self._cas = client.register_script(COMPARE_AND_SET)
        self.hits = 0
        self.misses = 0

    def _write(self, rows: list[Sequence[Any]], missing: dict[str, int]) -> None:
        pipe = self.client.pipeline(transaction=False)
        for row in rows:
            self._cas(keys=[KEY_PREFIX + row[0]], args=[row[-1], json.dumps(_payload(row)), self.ttl_s],
                      client=pipe)
        for sku, version in missing.items():  # inventory without a product: nothing to serve
            self._cas(keys=[KEY_PREFIX + sku], args=[version, "", self.ttl_s], client=pipe)
        pipe.execute()

    def refresh(self, conn, skus: Sequence[str]) -> bool:  # noqa: ANN001
        """Write the committed state of `skus` to Redis, then clear their dirty marks."""
        skus = sorted(set(skus))
        with conn:
            with conn.cursor() as cur:
                cur.execute(SNAPSHOT, (skus,))
                rows = cur.fetchall()
                cur.execute(VERSIONS, (skus,))
                versions = dict(cur.fetchall())
        versions = {s: versions.get(s, 0) for s in skus}
        found = {row[0] for row in rows}
        try:
            self._write(rows, {s: v for s, v in versions.items() if s not in found})
        except redis.RedisError as error:
            logger.warning("cache refresh deferred: Redis unavailable (%s)", error.__class__.__name__)
            return False
        with conn:
            with conn.cursor() as cur:
                # Only clear marks we refreshed at (or past) their current version.
                cur.execute(
                    "DELETE FROM cache_dirty d USING catalog_versions v, jsonb_each_text(%s::jsonb) AS r(sku, ver) "
                    "WHERE d.sku = r.sku AND v.sku = d.sku AND v.version <= r.ver::bigint",
                    (json.dumps(versions),),
                )
        return True

    def drain_dirty(self, conn, limit: int = 1000) -> int:  # noqa: ANN001
        """Refresh SKUs left dirty by a Redis outage or a crash; returns how many."""
        with conn:
            with conn.cursor() as cur:
                cur.execute("SELECT sku FROM cache_dirty ORDER BY sku LIMIT %s", (limit,))
                skus = [row[0] for row in cur.fetchall()]
        if skus and self.refresh(conn, skus):
            return len(skus)
        return 0

    def get(self, sku: str) -> dict[str, Any] | None:
        raw = self.client.hget(KEY_PREFIX + sku, "p")
        return json.loads(raw) if raw else None

    def fill(self, conn, sku: str) -> dict[str, Any] | None:  # noqa: ANN001
        """Cache-aside miss: read one consistent snapshot, offer it to the cache."""
        with conn:
            with conn.cursor() as cur:
                cur.execute(SNAPSHOT, ([sku],))
                row = cur.fetchone()
        if row is None:
            return None
        try:
            self._cas(keys=[KEY_PREFIX + sku], args=[row[-1], json.dumps(_payload(row)), self.ttl_s])
        except redis.RedisError:
            pass  # serving from PostgreSQL is correct, just slower
        return _payload(row)
