"""Retail: products and inventory, latest (updated_at, event_id) wins, order-independent."""
from __future__ import annotations

import logging
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import msgspec
import psycopg2
import redis

from processor.cache import CatalogCache, forget_pending, product_field, quantity_field, utc_z_text
from processor.records import InventoryUpdate, ProductUpsert
from processor.redis_rest import PROCESSOR_REDIS_REST_S, RedisRest

logger = logging.getLogger(__name__)
_encode = msgspec.json.Encoder().encode

# One round trip for the whole batch, sent as JSON arrays of positional rows (PostgreSQL
# parses jsonb far faster than psycopg2 adapts one Python list per column): both upserts,
# the deferred delete of pending rows already in Redis, and this batch's pending row. A
# row only changes when the event is newer than what it holds; the statement returns
# which rows changed, so that the processor writes exactly those to Redis.
APPLY_BATCH = """
WITH
new_products AS (
  SELECT r->>0 AS sku, r->>1 AS name, r->>2 AS category, (r->>3)::numeric AS price, r->>4 AS currency,
         (r->>5)::timestamptz AS updated_at, (r->>6)::uuid AS event_id
    FROM jsonb_array_elements(%(products)s::jsonb) AS r
),
new_stock AS (
  SELECT r->>0 AS sku, r->>1 AS supplier_id, (r->>2)::int AS quantity, (r->>3)::timestamptz AS updated_at,
         (r->>4)::uuid AS event_id
    FROM jsonb_array_elements(%(stock)s::jsonb) AS r
),
changed_products AS (
  INSERT INTO products AS p (sku, name, category, price, currency, updated_at, event_id)
  SELECT sku, name, category, price, currency, updated_at, event_id FROM new_products
  ON CONFLICT (sku) DO UPDATE
     SET name = excluded.name, category = excluded.category, price = excluded.price,
         currency = excluded.currency, updated_at = excluded.updated_at, event_id = excluded.event_id
   WHERE (excluded.updated_at, excluded.event_id) > (p.updated_at, p.event_id)
  RETURNING sku
),
changed_stock AS (
  INSERT INTO inventory AS i (sku, supplier_id, quantity, updated_at, event_id)
  SELECT sku, supplier_id, quantity, updated_at, event_id FROM new_stock
  ON CONFLICT (sku, supplier_id) DO UPDATE
     SET quantity = excluded.quantity, updated_at = excluded.updated_at, event_id = excluded.event_id
   WHERE (excluded.updated_at, excluded.event_id) > (i.updated_at, i.event_id)
  RETURNING sku, supplier_id
),
cached AS (
  DELETE FROM cache_pending WHERE id = ANY(%(cached)s::bigint[])
),
pending AS (
  INSERT INTO cache_pending (skus)
  SELECT array_agg(DISTINCT sku) FROM (SELECT sku FROM changed_products UNION ALL SELECT sku FROM changed_stock) AS c
  HAVING count(*) > 0 AND %(track)s
  RETURNING id
)
SELECT (SELECT id FROM pending),
       (SELECT coalesce(array_agg(sku), '{}') FROM changed_products),
       (SELECT coalesce(array_agg(sku), '{}') FROM changed_stock),
       (SELECT coalesce(array_agg(supplier_id), '{}') FROM changed_stock)
"""


def _latest(records: Sequence, key: Callable[[Any], object]) -> list:
    """One record per key: the greatest (updated_at, event_id); ON CONFLICT may touch a row once."""
    best: dict = {}
    for record in records:
        k = key(record)
        current = best.get(k)
        if current is None or (record.updated_at, record.event_id) > (current.updated_at, current.event_id):
            best[k] = record
    return list(best.values())


@dataclass(frozen=True)
class RetailOutcome:
    """The batch's cache_pending row (None when nothing changed) and, per SKU, the cache
    fields of the rows it changed."""

    pending_id: int | None = None
    entries: dict[str, list] = field(default_factory=dict)

    def metrics(self) -> Mapping[str, int]:
        return {}


class RetailSink:

    def __init__(self, cache: CatalogCache | None = None) -> None:
        self.cache = cache
        self._cached: list[int] = []  # pending rows Redis already has, deleted with the next batch
        self._deleting: list[int] = []

    @classmethod
    def from_settings(cls, redis_client: redis.Redis | None, settings: Any) -> RetailSink:
        """As the processor runs it: entries kept CACHE_TTL_S, and a Redis that failed rested
        (processor/redis_rest.py): meanwhile each batch's entries wait in cache_pending for housekeeping."""
        if redis_client is None:
            return cls()
        rest = RedisRest(PROCESSOR_REDIS_REST_S, away="cache writes wait in cache_pending",
                         back="cache writes and housekeeping resume")
        ttl = {"ttl_s": settings.cache_ttl_s} if settings is not None else {}
        return cls(CatalogCache(redis_client, rest=rest, **ttl))

    def apply(self, cur: psycopg2.extensions.cursor, records: Sequence) -> RetailOutcome:
        products = _latest([r for r in records if isinstance(r, ProductUpsert)], lambda r: r.sku)
        stock = _latest([r for r in records if isinstance(r, InventoryUpdate)], lambda r: (r.sku, r.supplier_id))
        if not products and not stock:
            return RetailOutcome()
        self._deleting = list(self._cached)
        # Each time as fixed-width UTC text, once: PostgreSQL parses it, Redis orders by it.
        product_rows = {r.sku: (r, utc_z_text(r.updated_at)) for r in products}
        stock_rows = {(r.sku, r.supplier_id): (r, utc_z_text(r.updated_at)) for r in stock}
        cur.execute(APPLY_BATCH, {
            "products": _encode([(r.sku, r.name, r.category, str(r.price), r.currency, at, r.event_id)
                                 for r, at in product_rows.values()]).decode(),
            "stock": _encode([(r.sku, r.supplier_id, r.quantity, at, r.event_id)
                              for r, at in stock_rows.values()]).decode(),
            "cached": self._deleting,
            "track": self.cache is not None,
        })
        pending_id, changed_products, stock_skus, stock_suppliers = cur.fetchone()
        if pending_id is None:
            return RetailOutcome()
        # The rows this batch changed are exactly these records: Redis gets them as they are.
        entries: dict[str, list] = {}
        for sku in changed_products:
            r, at = product_rows[sku]
            entries.setdefault(sku, []).append(product_field(sku, r.name, r.category, r.price, r.currency, at,
                                                             r.event_id))
        for sku, supplier in zip(stock_skus, stock_suppliers, strict=True):
            r, at = stock_rows[sku, supplier]
            entries.setdefault(sku, []).append(quantity_field(supplier, r.quantity, at, r.event_id))
        return RetailOutcome(pending_id, entries)

    def maintain(self, conn: psycopg2.extensions.connection) -> None:
        """Forget pending rows Redis has; refresh those a Redis outage or a crash left."""
        if self.cache is None:
            return
        forget_pending(conn, self._cached)
        self._cached = []
        self.cache.drain_pending(conn)

    def prepare(self, conn: psycopg2.extensions.connection, records: Sequence) -> None:
        """Nothing to do before the batch transaction."""

    def release(self) -> None:
        """Nothing per key is held in memory: every batch reads and writes its rows in PostgreSQL."""

    def rollback(self) -> None:
        """The pending deletes did not commit: they go with the next batch."""
        self._deleting = []

    def after_commit(self, conn: psycopg2.extensions.connection, outcome: RetailOutcome) -> None:
        committed = set(self._deleting)
        self._cached = [i for i in self._cached if i not in committed]
        self._deleting = []
        if self.cache is None or outcome.pending_id is None:
            return
        if self.cache.write(outcome.entries) is not None:
            self._cached.append(outcome.pending_id)
