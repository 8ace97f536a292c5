"""Schema migrations, idempotent and safe when several tasks start at once."""
from __future__ import annotations

import logging
from collections.abc import Sequence

logger = logging.getLogger(__name__)

# Serializes concurrent `migrate` calls across tasks: a transaction-level advisory lock.
MIGRATION_LOCK_ID = 0x5EED_0001

COMMON = [
    """
    CREATE TABLE IF NOT EXISTS shard_leases (
        consumer_group   text        NOT NULL,
        stream           text        NOT NULL,
        shard_id         text        NOT NULL,
        parent_shard_ids text[]      NOT NULL DEFAULT '{}',
        owner            text,
        lease_expires_at timestamptz,
        checkpoint       text,
        finished         boolean     NOT NULL DEFAULT false,
        updated_at       timestamptz NOT NULL DEFAULT now(),
        PRIMARY KEY (consumer_group, stream, shard_id)
    )
    """,
    # Added for the fleet (processor/balance.py): who asked for a shard, whether its owner
    # has read it to the tip, when a record of it last committed.
    "ALTER TABLE shard_leases ADD COLUMN IF NOT EXISTS steal_requested_by text",
    "ALTER TABLE shard_leases ADD COLUMN IF NOT EXISTS at_tip boolean NOT NULL DEFAULT false",
    "ALTER TABLE shard_leases ADD COLUMN IF NOT EXISTS last_record_at timestamptz",
    # One row per running worker: a worker that holds nothing still counts in the fair share.
    """
    CREATE TABLE IF NOT EXISTS consumer_workers (
        consumer_group text        NOT NULL,
        stream         text        NOT NULL,
        worker_id      text        NOT NULL,
        started_at     timestamptz NOT NULL DEFAULT now(),
        heartbeat_at   timestamptz NOT NULL DEFAULT now(),
        PRIMARY KEY (consumer_group, stream, worker_id)
    )
    """,
    """
    CREATE TABLE IF NOT EXISTS dead_letters (
        stream          text        NOT NULL,
        shard_id        text        NOT NULL,
        sequence_number text        NOT NULL,
        payload         bytea       NOT NULL,
        reason          text        NOT NULL,
        received_at     timestamptz NOT NULL DEFAULT now(),
        PRIMARY KEY (stream, shard_id, sequence_number)
    )
    """,
]

RETAIL_TABLES = [
    """
    CREATE TABLE IF NOT EXISTS products (
        sku        text           PRIMARY KEY,
        name       text           NOT NULL,
        category   text           NOT NULL,
        price      numeric(14, 4) NOT NULL,
        currency   char(3)        NOT NULL,
        updated_at timestamptz    NOT NULL,
        event_id   uuid           NOT NULL
    )
    """,
    """
    CREATE TABLE IF NOT EXISTS inventory (
        sku         text        NOT NULL,
        supplier_id text        NOT NULL,
        quantity    integer     NOT NULL CHECK (quantity >= 0),
        updated_at  timestamptz NOT NULL,
        event_id    uuid        NOT NULL,
        PRIMARY KEY (sku, supplier_id)
    )
    """,
    # Cache entries used to carry a per-SKU version from this table; they now carry each
    # row's own (updated_at, event_id) (processor/cache.py). Tasks of the old release fail
    # their batches once it is gone and retry until ECS replaces them: nothing is lost.
    "DROP TABLE IF EXISTS catalog_versions",
    # SKU lists whose cache entries may be stale: one row per batch, written with the
    # batch, deleted once Redis holds (at least) that batch's rows. Survives a Redis
    # outage and a crash in between; one row per batch, not per SKU, keeps it cheap.
    """
    CREATE TABLE IF NOT EXISTS cache_pending (
        id         bigserial   PRIMARY KEY,
        skus       text[]      NOT NULL,
        created_at timestamptz NOT NULL DEFAULT now()
    )
    """,
]

FACTORY_TABLES = [
    # Partitioned by month so years of readings stay manageable (detach/drop old months).
    # A replayed reading carries the same event_id *and* ts, so (event_id, ts) dedupes it.
    """
    CREATE TABLE IF NOT EXISTS sensor_readings (
        event_id  uuid             NOT NULL,
        ts        timestamptz      NOT NULL,
        sensor_id text             NOT NULL,
        line_id   text             NOT NULL,
        kind      text             NOT NULL,
        value     double precision,
        status    text,
        unit      text,
        PRIMARY KEY (event_id, ts)
    ) PARTITION BY RANGE (ts)
    """,
    "CREATE INDEX IF NOT EXISTS sensor_readings_sensor_ts ON sensor_readings (sensor_id, ts)",
    """
    CREATE TABLE IF NOT EXISTS anomalies (
        event_id    uuid             PRIMARY KEY,
        sensor_id   text             NOT NULL,
        line_id     text             NOT NULL,
        ts          timestamptz      NOT NULL,
        kind        text             NOT NULL,
        value       double precision,
        score       double precision NOT NULL,
        reason      text             NOT NULL,
        detected_at timestamptz      NOT NULL DEFAULT now()
    )
    """,
]


def migrate(conn, tables: Sequence[str], workload: str) -> None:  # noqa: ANN001 - a psycopg2 connection
    """The common tables, then `tables` (the workload's, processor/workloads.py), in one transaction."""
    with conn:
        with conn.cursor() as cur:
            cur.execute("SELECT pg_advisory_xact_lock(%s)", (MIGRATION_LOCK_ID,))
            for statement in (*COMMON, *tables):
                cur.execute(statement)
    logger.info("schema ready", extra={"workload": workload})
