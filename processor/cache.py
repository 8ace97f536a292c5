"""Redis cache for the retail catalog: cache-aside reads, versioned writes.

Every product entry stores the catalog version it was built from. Writes go through a
compare-and-set script that refuses an older version, so a reader that loaded an old
snapshot can never overwrite the processor's fresher one.

The batch transaction lists the SKUs it changed in `cache_pending` (one row per batch)
and reads their new snapshot; after the commit one script call writes them all. The
pending row is deleted only once Redis has accepted that snapshot, so a Redis outage or
a crash in between leaves it listed and `drain_pending` refreshes those SKUs as soon as
Redis answers again: an entry is never left older than its last committed update.

PostgreSQL builds the entries (one JSON text for the whole batch) and Redis unpacks
them; the processor only passes the text along.
"""
from __future__ import annotations

import json
import logging
from collections.abc import Sequence
from typing import Any

import redis

logger = logging.getLogger(__name__)

KEY_PREFIX = "product:"

# [[sku, version, payload-text or null], ...] for the SKUs in %s, in the order given (not
# the database's collation order: the entries must line up with the caller's keys).
# The payload's format is fixed here (UTC, microseconds, price without trailing zeros)
# so that it does not depend on the session's time zone or on Python's formatting.
SNAPSHOT = """
SELECT coalesce(json_agg(json_build_array(
         s.sku, coalesce(v.version, 0),
         CASE WHEN p.sku IS NOT NULL THEN json_build_object(
           'sku', p.sku, 'name', p.name, 'category', p.category, 'price', trim_scale(p.price)::text,
           'currency', rtrim(p.currency),
           'updated_at', to_char(p.updated_at AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.US"Z"'),
           'total_quantity', coalesce(q.total, 0))::text END)
         ORDER BY s.n), '[]')::text
  FROM unnest(%s::text[]) WITH ORDINALITY AS s(sku, n)
  LEFT JOIN products p ON p.sku = s.sku
  LEFT JOIN catalog_versions v ON v.sku = s.sku
  LEFT JOIN LATERAL (SELECT sum(i.quantity) AS total FROM inventory i WHERE i.sku = s.sku) q ON true
"""

# KEYS: product keys; ARGV[1]: ttl seconds; ARGV[2]: the SNAPSHOT text, entry i for KEYS[i];
# ARGV[3]: the key prefix, to check that entry i really is KEYS[i]'s product.
# A null payload (inventory without a product) stores only the version: nothing to serve,
# but an older snapshot can no longer be written over it. Returns how many were accepted.
COMPARE_AND_SET = """
local entries = cjson.decode(ARGV[2])
local ttl = tonumber(ARGV[1])
local accepted = 0
for i, key in ipairs(KEYS) do
  if entries[i] == nil or key ~= ARGV[3] .. entries[i][1] then
    return redis.error_reply('snapshot entry ' .. i .. ' does not match key ' .. key)
  end
end
for i, key in ipairs(KEYS) do
  local version = tonumber(entries[i][2])
  local payload = entries[i][3]
  local current = redis.call('HGET', key, 'v')
  if not current or tonumber(current) < version then
    if payload == cjson.null then
      redis.call('DEL', key)
      redis.call('HSET', key, 'v', version)
    else
      redis.call('HSET', key, 'v', version, 'p', payload)
    end
    redis.call('EXPIRE', key, ttl)
    accepted = accepted + 1
  end
end
return accepted
"""


def snapshot(cur, skus: Sequence[str]) -> str:  # noqa: ANN001 - a psycopg2 cursor
    """The committed (or, inside a transaction, this transaction's) state of `skus`."""
    cur.execute(SNAPSHOT, (list(skus),))
    return cur.fetchone()[0]


class CatalogCache:
    def __init__(self, client: redis.Redis, ttl_s: int = 3600) -> None:
        self.client = client
        self.ttl_s = ttl_s
        self._cas = client.register_script(COMPARE_AND_SET)
        self.hits = 0
        self.misses = 0

    def write(self, skus: Sequence[str], entries: str) -> int | None:
        """Offer a SNAPSHOT text for `skus` (same order) to Redis.

        Returns how many entries Redis accepted, or None when Redis is unavailable."""
        if not skus:
            return 0
        try:
            return int(self._cas(keys=[KEY_PREFIX + s for s in skus], args=[self.ttl_s, entries, KEY_PREFIX]))
        except redis.RedisError as error:
            logger.warning("cache refresh deferred: Redis unavailable (%s)", error.__class__.__name__)
            return None

    def refresh(self, conn, skus: Sequence[str]) -> bool:  # noqa: ANN001
        """Write the committed state of `skus` to Redis."""
        skus = sorted(set(skus))
        with conn, conn.cursor() as cur:
            entries = snapshot(cur, skus)
        return self.write(skus, entries) is not None

    def drain_pending(self, conn, limit: int = 100) -> int:  # noqa: ANN001
        """Refresh SKUs that a Redis outage or a crash left pending; returns how many batches."""
        with conn, conn.cursor() as cur:
            cur.execute("SELECT id, skus FROM cache_pending ORDER BY id LIMIT %s", (limit,))
            pending = cur.fetchall()
        if not pending:
            return 0
        skus = sorted({sku for _, batch in pending for sku in batch})
        if not self.refresh(conn, skus):
            return 0
        forget_pending(conn, [pending_id for pending_id, _ in pending])
        return len(pending)

    def get(self, sku: str) -> dict[str, Any] | None:
        raw = self.client.hget(KEY_PREFIX + sku, "p")
        return json.loads(raw) if raw else None

    def fill(self, conn, sku: str) -> dict[str, Any] | None:  # noqa: ANN001
        """Cache-aside miss: read one consistent snapshot, offer it to the cache."""
        with conn, conn.cursor() as cur:
            entries = snapshot(cur, [sku])
        payload = json.loads(entries)[0][2]
        if payload is None:
            return None
        self.write([sku], entries)  # a failure only means serving from PostgreSQL, slower
        return json.loads(payload)


def forget_pending(conn, ids: Sequence[int]) -> None:  # noqa: ANN001
    """Redis holds these batches' snapshots (or newer): they are no longer pending."""
    if ids:
        with conn, conn.cursor() as cur:
            cur.execute("DELETE FROM cache_pending WHERE id = ANY(%s)", (list(ids),))
