"""Schema migrations, idempotent and safe when several tasks start at once.

Migrations run with the master credentials as their own step (`python -m processor
migrate`, the migrate task); the processor itself connects as an application role that
holds only the DML its workload needs (`GRANTS`) and cannot change the schema: it checks
the schema's version at start and waits for the migration if it is behind.
"""
from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence

import psycopg2
from psycopg2 import sql

logger = logging.getLogger(__name__)

# Serializes concurrent `migrate` calls across tasks: a transaction-level advisory lock.
MIGRATION_LOCK_ID = 0x5EED_0001
# Bumped with every change below. Changes stay backward compatible (add, never drop or rename
# what the running release uses): a rolling deployment runs old and new tasks side by side.
SCHEMA_VERSION = 4

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

COMMON += [
    """
    CREATE TABLE IF NOT EXISTS schema_migrations (
        workload    text        PRIMARY KEY,
        version     integer     NOT NULL,
        migrated_at timestamptz NOT NULL DEFAULT now()
    )
    """,
]
# What the application role may do, object by object: the DML the processor runs, no more.
Grants = Mapping[tuple[str, str], str]  # (TABLE | SEQUENCE | FUNCTION, name) -> privileges
COMMON_GRANTS = {
    ("TABLE", "shard_leases"): "SELECT, INSERT, UPDATE",
    ("TABLE", "consumer_workers"): "SELECT, INSERT, UPDATE, DELETE",
    ("TABLE", "dead_letters"): "INSERT",
    ("TABLE", "schema_migrations"): "SELECT",
}

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

RETAIL_GRANTS = {
    ("TABLE", "products"): "SELECT, INSERT, UPDATE",
    ("TABLE", "inventory"): "SELECT, INSERT, UPDATE",
    ("TABLE", "cache_pending"): "SELECT, INSERT, DELETE",
    ("SEQUENCE", "cache_pending_id_seq"): "USAGE",
}

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
    # The one piece of DDL the processor needs at run time (a month's partition, the first time
    # a reading of that month arrives), as a function owned by the migrating role: the
    # application role may call it, and can create nothing else and drop nothing at all.
    """
    CREATE OR REPLACE FUNCTION ensure_reading_partition(year integer, month integer) RETURNS void
    LANGUAGE plpgsql SECURITY DEFINER SET search_path = public, pg_temp AS $$
    DECLARE
        name text := format('sensor_readings_y%sm%s', year, lpad(month::text, 2, '0'));
        after_year integer := year + (month = 12)::integer;
        after_month integer := month % 12 + 1;
    BEGIN
        IF month NOT BETWEEN 1 AND 12 OR year NOT BETWEEN 1 AND 9998 THEN
            RAISE EXCEPTION 'no partition for %-%', year, month;
        END IF;
        PERFORM pg_advisory_xact_lock(hashtext(name));
        EXECUTE format('CREATE TABLE IF NOT EXISTS %I PARTITION OF sensor_readings FOR VALUES FROM (%L) TO (%L)',
                       name, make_timestamptz(year, month, 1, 0, 0, 0, 'UTC'),
                       make_timestamptz(after_year, after_month, 1, 0, 0, 0, 'UTC'));
    END $$
    """,
    "REVOKE ALL ON FUNCTION ensure_reading_partition(integer, integer) FROM PUBLIC",
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
    # One incident per line at a time (processor/incidents.py): the partial unique index is
    # the rule, whichever worker writes.
    """
    CREATE TABLE IF NOT EXISTS incidents (
        incident_id   uuid             PRIMARY KEY,
        line_id       text             NOT NULL,
        opened_at     timestamptz      NOT NULL,
        last_fired_at timestamptz      NOT NULL,
        closed_at     timestamptz,
        sensors       text[]           NOT NULL,
        kinds         text[]           NOT NULL,
        checks        text[]           NOT NULL,
        peak_score    double precision NOT NULL,
        firings       integer          NOT NULL,
        severity      text             NOT NULL CHECK (severity IN ('warning', 'critical')),
        updated_at    timestamptz      NOT NULL DEFAULT now(),
        CHECK (closed_at IS NULL OR closed_at >= opened_at)
    )
    """,
    "CREATE UNIQUE INDEX IF NOT EXISTS incidents_one_open_per_line ON incidents (line_id) WHERE closed_at IS NULL",
    "CREATE INDEX IF NOT EXISTS incidents_line_opened ON incidents (line_id, opened_at DESC)",
    # The transactional outbox (processor/outbox.py): written with the batch, sent after it.
    """
    CREATE TABLE IF NOT EXISTS incident_outbox (
        message_id  uuid        PRIMARY KEY,
        incident_id uuid        NOT NULL REFERENCES incidents (incident_id),
        event       text        NOT NULL CHECK (event IN ('opened', 'closed')),
        body        jsonb       NOT NULL,
        attributes  jsonb       NOT NULL,
        created_at  timestamptz NOT NULL DEFAULT clock_timestamp(),
        sent_at     timestamptz,
        attempts    integer     NOT NULL DEFAULT 0,
        last_error  text
    )
    """,
    "CREATE INDEX IF NOT EXISTS incident_outbox_unsent ON incident_outbox (created_at) WHERE sent_at IS NULL",
]


FACTORY_GRANTS = {
    ("TABLE", "sensor_readings"): "SELECT, INSERT",
    ("TABLE", "anomalies"): "SELECT, INSERT",
    ("FUNCTION", "ensure_reading_partition"): "EXECUTE",
    ("TABLE", "incidents"): "SELECT, INSERT, UPDATE",
    ("TABLE", "incident_outbox"): "SELECT, INSERT, UPDATE",
}


# The catalog read API's role (processor/catalog_api.py): it reads the catalog and nothing else.
CATALOG_READER_GRANTS = {
    ("TABLE", "products"): "SELECT",
    ("TABLE", "inventory"): "SELECT",
}


class SchemaNotReady(Exception):
    """The database's schema is older than this processor needs: the migration has not run."""


def _ensure_app_role(cur: psycopg2.extensions.cursor, app_user: str, password: str | None = None) -> None:
    """The role, able to connect and use the schema. Without `password` it signs in with IAM tokens
    on RDS; with one, by that password (and never by a token: RDS refuses a password to a member of
    rds_iam)."""
    role = sql.Identifier(app_user)
    # Roles belong to the server, not the database: two migrations may race to create one.
    cur.execute(sql.SQL("DO $$ BEGIN CREATE ROLE {} LOGIN; EXCEPTION WHEN duplicate_object THEN NULL; END $$")
                .format(role))
    cur.execute("SELECT 1 FROM pg_roles WHERE rolname = 'rds_iam'")
    on_rds = cur.fetchone() is not None
    if password is not None:
        cur.execute(sql.SQL("ALTER ROLE {} LOGIN PASSWORD %s").format(role), (password,))
        if on_rds:
            cur.execute(sql.SQL("REVOKE rds_iam FROM {}").format(role))
    elif on_rds:  # on RDS: the role signs in with IAM tokens, never a password
        cur.execute(sql.SQL("GRANT rds_iam TO {}").format(role))
    cur.execute(sql.SQL("GRANT CONNECT ON DATABASE {} TO {}").format(
        sql.Identifier(cur.connection.info.dbname), role))
    cur.execute(sql.SQL("GRANT USAGE ON SCHEMA public TO {}").format(role))


def _grant(cur: psycopg2.extensions.cursor, app_user: str, grants: Grants) -> None:
    for (kind, name), privileges in grants.items():
        cur.execute(sql.SQL("GRANT {} ON {} {} TO {}").format(
            sql.SQL(privileges), sql.SQL(kind), sql.Identifier(name), sql.Identifier(app_user)))


def migrate(conn: psycopg2.extensions.connection, tables: Sequence[str], workload: str, grants: Grants | None = None,
            app_user: str | None = None) -> None:
    """The common tables, then `tables` (the workload's, processor/workloads.py), in one
    transaction; with `app_user`, that role and exactly `grants` (plus the common ones)."""
    with conn:
        with conn.cursor() as cur:
            cur.execute("SELECT pg_advisory_xact_lock(%s)", (MIGRATION_LOCK_ID,))
            for statement in (*COMMON, *tables):
                cur.execute(statement)
            if app_user:
                _ensure_app_role(cur, app_user)
                _grant(cur, app_user, {**COMMON_GRANTS, **(grants or {})})
            cur.execute("INSERT INTO schema_migrations (workload, version) VALUES (%s, %s) ON CONFLICT (workload) "
                        "DO UPDATE SET version = excluded.version, migrated_at = now()", (workload, SCHEMA_VERSION))
    logger.info("schema ready", extra={"workload": workload, "version": SCHEMA_VERSION, "app_user": app_user})


def ensure_catalog_reader(conn: psycopg2.extensions.connection, reader_user: str, password: str | None = None) -> None:
    """The catalog read API's role, made by the migration (master credentials) after the schema:
    SELECT on the catalog's tables, no other privilege. With `password` (the reader's secret) it
    signs in with it, and a new password (a rotated secret) replaces the old at the next migration."""
    with conn, conn.cursor() as cur:
        cur.execute("SELECT pg_advisory_xact_lock(%s)", (MIGRATION_LOCK_ID,))
        _ensure_app_role(cur, reader_user, password)
        _grant(cur, reader_user, CATALOG_READER_GRANTS)


def check_version(conn: psycopg2.extensions.connection, workload: str) -> None:
    """Raises SchemaNotReady unless the schema is at SCHEMA_VERSION or later."""
    try:
        with conn, conn.cursor() as cur:
            cur.execute("SELECT version FROM schema_migrations WHERE workload = %s", (workload,))
            row = cur.fetchone()
    except Exception as error:
        if getattr(error, "pgcode", None) != "42P01":  # undefined_table
            raise
        row = None
    if row is None or row[0] < SCHEMA_VERSION:
        state = "not migrated" if row is None else f"at version {row[0]}"
        raise SchemaNotReady(f"the {workload} schema is {state}; this processor needs version {SCHEMA_VERSION}: "
                             "run the migrate task (python -m processor migrate)")
