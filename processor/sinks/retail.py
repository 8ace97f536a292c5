"""Retail: products and inventory, latest (updated_at, event_id) wins, order-independent."""
from __future__ import annotations

import logging
from collections.abc import Sequence

from processor.records import InventoryUpdate, ProductUpsert
from processor.sinks import Outcome

logger = logging.getLogger(__name__)

UPSERT_PRODUCTS = """
INSERT INTO products AS p (sku, name, category, price, currency, updated_at, event_id)
SELECT * FROM unnest(%s::text[], %s::text[], %s::text[], %s::numeric[], %s::text[], %s::timestamptz[], %s::uuid[])
ON CONFLICT (sku) DO UPDATE
   SET name = excluded.name, category = excluded.category, price = excluded.price,
       currency = excluded.currency, updated_at = excluded.updated_at, event_id = excluded.event_id
 WHERE (excluded.updated_at, excluded.event_id) > (p.updated_at, p.event_id)
RETURNING sku
"""
UPSERT_INVENTORY = """
INSERT INTO inventory AS i (sku, supplier_id, quantity, updated_at, event_id)
SELECT * FROM unnest(%s::text[], %s::text[], %s::int[], %s::timestamptz[], %s::uuid[])
ON CONFLICT (sku, supplier_id) DO UPDATE
   SET quantity = excluded.quantity, updated_at = excluded.updated_at, event_id = excluded.event_id
 WHERE (excluded.updated_at, excluded.event_id) > (i.updated_at, i.event_id)
RETURNING sku
"""
BUMP_VERSIONS = """
INSERT INTO catalog_versions AS v (sku, version) SELECT unnest(%s::text[]), 1
ON CONFLICT (sku) DO UPDATE SET version = v.version + 1
RETURNING sku, version
"""
MARK_DIRTY = """
INSERT INTO cache_dirty (sku) SELECT unnest(%s::text[]) ON CONFLICT DO NOTHING
"""


def _latest(records: Sequence, key) -> list:  # noqa: ANN001
    """One record per key: the greatest (updated_at, event_id); ON CONFLICT may touch a row once."""
    best: dict = {}
    for record in records:
        k = key(record)
        current = best.get(k)
        if current is None or (record.updated_at, record.event_id) > (current.updated_at, current.event_id):
            best[k] = record
    return list(best.values())


class RetailSink:
    workload = "retail"

    def __init__(self, cache=None) -> None:  # noqa: ANN001 - processor.cache.CatalogCache
        self.cache = cache

    def apply(self, cur, records: Sequence) -> Outcome:  # noqa: ANN001
        products = _latest([r for r in records if isinstance(r, ProductUpsert)], lambda r: r.sku)
        stock = _latest([r for r in records if isinstance(r, InventoryUpdate)], lambda r: (r.sku, r.supplier_id))
        changed: set[str] = set()
        if products:
            cur.execute(UPSERT_PRODUCTS, (
                [r.sku for r in products], [r.name for r in products], [r.category for r in products],
                [r.price for r in products], [r.currency for r in products], [r.updated_at for r in products],
                [r.event_id for r in products],
            ))
            changed.update(row[0] for row in cur.fetchall())
        if stock:
            cur.execute(UPSERT_INVENTORY, (
                [r.sku for r in stock], [r.supplier_id for r in stock], [r.quantity for r in stock],
                [r.updated_at for r in stock], [r.event_id for r in stock],
            ))
            changed.update(row[0] for row in cur.fetchall())
        if changed:
            keys = sorted(changed)  # a fixed lock order: concurrent batches cannot deadlock
            cur.execute(BUMP_VERSIONS, (keys,))
            cur.execute(MARK_DIRTY, (keys,))
        return Outcome(changed_keys=sorted(changed))

    def maintain(self, conn) -> None:  # noqa: ANN001
        """Refresh cache entries a Redis outage or a crash left dirty."""
        if self.cache is not None:
            self.cache.drain_dirty(conn)

    def prepare(self, conn, records: Sequence) -> None:  # noqa: ANN001
        """Nothing to do before the batch transaction."""

    def rollback(self) -> None:
        """Nothing held outside the transaction."""

    def after_commit(self, conn, outcome: Outcome) -> None:  # noqa: ANN001
        if self.cache is not None and outcome.changed_keys:
            self.cache.refresh(conn, outcome.changed_keys)
