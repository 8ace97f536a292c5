"""Redis cache for the retail catalog: cache-aside reads, last-writer-wins fields.

A product's entry is one hash, `product:<sku>`, with one field per piece of state that
PostgreSQL keeps in its own row, each next to the order key of the event that wrote it:

    p        the product (JSON: sku, name, category, price, currency, updated_at)
    q:<sup>  supplier <sup>'s quantity
    ~<f>     the order key of field <f>: "<updated_at as fixed-width UTC>|<event_id>"
    c        "1" once the entry was filled from PostgreSQL with every supplier

A field is only written when its order key is greater than the one it holds: the same
rule PostgreSQL applies to the row (greatest `(updated_at, event_id)` wins), so each
field converges to its row whatever the order the processor, a cache-aside fill and a
repair write in. An entry is served only once it is complete (`c`) and has a product;
the total quantity is summed from the `q:` fields when it is read.

The processor writes the fields of the rows a batch changed, after the commit, straight
from the records it already holds: no read-back from PostgreSQL. When the SKU has no
entry it creates an incomplete one, so that a fill that read PostgreSQL just before that
commit cannot put the older row back. The batch lists the SKUs it changed in
`cache_pending` (one row per batch); the row is deleted once Redis has the batch, so a
Redis outage or a crash in between leaves it, and `drain_pending` rewrites those SKUs
from PostgreSQL as soon as Redis answers again: an entry is never left older than its
last committed update.
"""
from __future__ import annotations

import json
import logging
from collections.abc import Iterable, Mapping, Sequence
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

import msgspec
import psycopg2
import redis

from processor.redis_rest import RedisRest

logger = logging.getLogger(__name__)

KEY_PREFIX = "product:"
PRODUCT = "p"
QUANTITY_PREFIX = "q:"
COMPLETE = "c"

# KEYS: product keys. ARGV[1]: ttl seconds; ARGV[2]: "1" when the entries are complete
# (read from PostgreSQL with all suppliers); ARGV[3]: JSON, one list per key of its
# fields as flat (field, order, value) triples. The layout is checked before anything is
# written. Returns how many fields were accepted.
WRITE_FIELDS = """
local ttl = tonumber(ARGV[1])
local complete = ARGV[2] == '1'
local entries = cjson.decode(ARGV[3])
if #entries ~= #KEYS then return redis.error_reply('cache write: entries do not match the keys') end
for k, fields in ipairs(entries) do
  if type(fields) ~= 'table' or #fields % 3 ~= 0 then
    return redis.error_reply('cache write: malformed fields for ' .. KEYS[k])
  end
end
local accepted = 0
for k, key in ipairs(KEYS) do
  local fields = entries[k]
  for i = 1, #fields, 3 do
    local order = fields[i + 1]
    local current = redis.call('HGET', key, '~' .. fields[i])
    if not current or current < order then
      redis.call('HSET', key, fields[i], fields[i + 2], '~' .. fields[i], order)
      accepted = accepted + 1
    end
  end
  if complete then redis.call('HSET', key, 'c', '1') end
  redis.call('EXPIRE', key, ttl)
end
return accepted
"""

Field = tuple[str, str, str]  # (field, order, value)
_encode = msgspec.json.Encoder().encode  # compact UTF-8 JSON, ~5x faster than json.dumps


def utc_z_text(ts: datetime) -> str:
    """Fixed-width UTC text with microseconds, ending in Z: lexical order is time order (years 1-9999)."""
    if ts.tzinfo is not UTC:
        ts = ts.astimezone(UTC)
    return ts.isoformat(timespec="microseconds")[:-6] + "Z"


def price_text(price: Decimal) -> str:
    """A price without trailing zeros ("19.90" -> "19.9", "20.00" -> "20")."""
    text = format(price, "f")
    return text.rstrip("0").rstrip(".") if "." in text else text


def product_field(sku: str, name: str, category: str, price: Decimal, currency: str, at: str, event_id: str) -> Field:
    """`at`: the row's updated_at as `utc_z_text`."""
    payload = _encode({"sku": sku, "name": name, "category": category, "price": price_text(price),
                       "currency": currency.rstrip(), "updated_at": at}).decode()
    return PRODUCT, f"{at}|{event_id}", payload


def quantity_field(supplier_id: str, quantity: int, at: str, event_id: str) -> Field:
    return QUANTITY_PREFIX + supplier_id, f"{at}|{event_id}", str(quantity)


def read_entries(cur: psycopg2.extensions.cursor, skus: Sequence[str]) -> dict[str, list[Field]]:
    """Every field of `skus` as PostgreSQL holds them (one statement: one snapshot)."""
    cur.execute("""
        SELECT sku, NULL, name, category, price, currency, updated_at, event_id::text, NULL
          FROM products WHERE sku = ANY(%(skus)s)
        UNION ALL
        SELECT sku, supplier_id, NULL, NULL, NULL, NULL, updated_at, event_id::text, quantity
          FROM inventory WHERE sku = ANY(%(skus)s)
    """, {"skus": list(skus)})
    entries: dict[str, list[Field]] = {sku: [] for sku in skus}
    for sku, supplier, name, category, price, currency, updated_at, event_id, quantity in cur.fetchall():
        if supplier is None:
            entries[sku].append(product_field(sku, name, category, price, currency, utc_z_text(updated_at), event_id))
        else:
            entries[sku].append(quantity_field(supplier, quantity, utc_z_text(updated_at), event_id))
    return entries


def served(fields: Mapping[bytes, bytes]) -> dict[str, Any] | None:
    """The product an entry serves, with its total quantity; None unless it is complete."""
    payload = fields.get(PRODUCT.encode())
    if payload is None or COMPLETE.encode() not in fields:
        return None
    prefix = QUANTITY_PREFIX.encode()
    product = json.loads(payload)
    product["total_quantity"] = sum(int(v) for k, v in fields.items() if k.startswith(prefix))
    return product


class CatalogCache:
    def __init__(self, client: redis.Redis, ttl_s: int = 3600, rest: RedisRest | None = None) -> None:
        self.client = client
        self.ttl_s = ttl_s
        self.rest = rest  # the processor's: writes skip a Redis that failed, for its rest (they stay pending)
        self._write = client.register_script(WRITE_FIELDS)
        self.hits = 0
        self.misses = 0

    def write(self, entries: Mapping[str, Iterable[Field]], complete: bool = False) -> int | None:
        """Offer fields to Redis, each kept only if newer than what the entry holds.

        Returns how many fields Redis accepted, or None when Redis is unavailable (or resting)."""
        if not entries:
            return 0
        if self.rest is not None and self.rest.resting():
            return None
        keys = [(KEY_PREFIX + sku).encode() for sku in entries]  # bytes: redis-py packs them as they are
        packed = _encode([[part for field in fields for part in field] for fields in entries.values()])
        try:
            accepted = int(self._write(keys=keys, args=[self.ttl_s, "1" if complete else "0", packed]))
        except redis.RedisError as error:
            if self.rest is not None:
                self.rest.failed(error)
            else:
                logger.warning("cache refresh deferred: Redis unavailable (%s)", error.__class__.__name__)
            return None
        if self.rest is not None:
            self.rest.answered()
        return accepted

    def refresh(self, conn: psycopg2.extensions.connection, skus: Sequence[str]) -> bool:
        """Write the committed state of `skus` to Redis (complete entries)."""
        with conn, conn.cursor() as cur:
            entries = read_entries(cur, sorted(set(skus)))
        return self.write(entries, complete=True) is not None

    def drain_pending(self, conn: psycopg2.extensions.connection, limit: int = 100) -> int:
        """Refresh SKUs that a Redis outage or a crash left pending; returns how many batches."""
        if self.rest is not None and self.rest.resting():
            return 0
        with conn, conn.cursor() as cur:
            cur.execute("SELECT id, skus FROM cache_pending ORDER BY id LIMIT %s", (limit,))
            pending = cur.fetchall()
        if not pending:
            return 0
        if not self.refresh(conn, {sku for _, batch in pending for sku in batch}):
            return 0
        forget_pending(conn, [pending_id for pending_id, _ in pending])
        return len(pending)

    def get(self, sku: str) -> dict[str, Any] | None:
        return served(self.client.hgetall(KEY_PREFIX + sku))

    def lookup(self, sku: str) -> tuple[bool, dict[str, Any] | None]:
        """(known, product): a complete entry with a product is (True, product); a complete entry
        without one, written by `fill(remember_missing=...)`, is (True, None): no such product as of
        the last commit; anything else is (False, None), a miss."""
        fields = self.client.hgetall(KEY_PREFIX + sku)
        if COMPLETE.encode() not in fields:
            return False, None
        return True, served(fields)

    def fill(self, conn: psycopg2.extensions.connection, sku: str,
             remember_missing_s: int | None = None, offer: bool = True) -> dict[str, Any] | None:
        """Cache-aside miss of one SKU (`fill_many`)."""
        return self.fill_many(conn, [sku], remember_missing_s, offer)[sku]

    def fill_many(self, conn: psycopg2.extensions.connection, skus: Sequence[str],
                  remember_missing_s: int | None = None, offer: bool = True) -> dict[str, dict[str, Any] | None]:
        """Cache-aside misses: read the SKUs' rows in one statement (one snapshot), offer them to the cache
        in one write (unless not `offer`: Redis is known to be away), serve them; None for an unknown SKU.

        With `remember_missing_s`, an unknown SKU leaves a complete entry without a product for that
        long, so that SKUs that keep missing do not each cost a query. It is never stale after a
        commit: the processor writes a new product's fields into the entry it finds (`write`)."""
        unique = list(dict.fromkeys(skus))
        with conn, conn.cursor() as cur:
            entries = read_entries(cur, unique)
        known = {sku: fields for sku, fields in entries.items() if any(f == PRODUCT for f, _, _ in fields)}
        unknown = {sku: fields for sku, fields in entries.items() if sku not in known}
        if offer:
            offered = {**known, **unknown} if remember_missing_s else known
            # a failure only means serving from PostgreSQL, slower
            if self.write(offered, complete=True) is not None and unknown and remember_missing_s:
                try:
                    with self.client.pipeline(transaction=False) as pipe:
                        for sku in unknown:
                            pipe.expire(KEY_PREFIX + sku, remember_missing_s, lt=True)
                        pipe.execute()
                except redis.RedisError:
                    pass  # the entries keep the cache's TTL: still right, only longer
        complete = {COMPLETE.encode(): b"1"}
        return {sku: served({f.encode(): v.encode() for f, _, v in known[sku]} | complete) if sku in known else None
                for sku in unique}


def forget_pending(conn: psycopg2.extensions.connection, ids: Sequence[int]) -> None:
    """Redis holds these batches' fields (or newer): they are no longer pending."""
    if ids:
        with conn, conn.cursor() as cur:
            cur.execute("DELETE FROM cache_pending WHERE id = ANY(%s)", (list(ids),))
