"""Shard leases, workers and checkpoints, in PostgreSQL next to the data they protect.

A lease is a row per (consumer group, stream, shard); a worker is a row per running task,
with the time of its last heartbeat. Every heartbeat (one transaction, one worker at a time
per stream: an advisory lock) a worker renews the leases it holds, reports which of them
it has read to the tip, and carries out what `processor.balance` decides on that snapshot:
take free or expired shards, hand shards over to a named worker, ask another for one, or
decline such a request. A worker's checkpoint commits in its batch transaction, guarded by
the lease (`checkpoint` below): once a lease has expired or moved, the old owner's batch
cannot commit, so no two workers ever commit for one shard. A child shard (after a
reshard) is only taken once all its parents are finished, so records of a key stay in order.
"""
from __future__ import annotations

import json
from collections.abc import Collection, Sequence
from dataclasses import dataclass

import psycopg2

from processor import balance
from processor.balance import LeaseRow, Moves


@dataclass(frozen=True)
class Shard:
    shard_id: str
    parent_shard_ids: tuple[str, ...]


@dataclass(frozen=True)
class Heartbeat:
    """What one heartbeat found and did."""

    held: dict[str, str | None]  # shard -> committed checkpoint: every lease this worker holds now
    handed_over: dict[str, str | None]  # my shards now another's (None: freed)
    moves: Moves
    rows: tuple[LeaseRow, ...]  # the snapshot the moves were decided on
    live_workers: frozenset[str]
    idle_s: float | None  # seconds since any worker last committed a record of the stream


SYNC = """
INSERT INTO shard_leases (consumer_group, stream, shard_id, parent_shard_ids)
SELECT %s, %s, s.id, s.parents FROM jsonb_to_recordset(%s::jsonb) AS s(id text, parents text[])
ON CONFLICT DO NOTHING
"""
# Workers of a stream decide one at a time, each on the result of the one before.
LOCK = "SELECT pg_advisory_xact_lock(hashtext(%s), hashtext(%s))"
BEAT = """
INSERT INTO consumer_workers (consumer_group, stream, worker_id) VALUES (%s, %s, %s)
ON CONFLICT (consumer_group, stream, worker_id) DO UPDATE SET heartbeat_at = now()
"""
RENEW = """
UPDATE shard_leases SET lease_expires_at = now() + make_interval(secs => %(secs)s),
       at_tip = shard_id = ANY(%(tips)s::text[])
 WHERE consumer_group = %(group)s AND stream = %(stream)s AND owner = %(me)s AND NOT finished
RETURNING shard_id, checkpoint
"""
SNAPSHOT = """
SELECT l.shard_id, l.owner, l.owner IS NOT NULL AND l.lease_expires_at >= now(),
       NOT EXISTS (SELECT 1 FROM shard_leases p
                    WHERE p.consumer_group = l.consumer_group AND p.stream = l.stream
                      AND p.shard_id = ANY(l.parent_shard_ids) AND NOT p.finished),
       l.steal_requested_by, l.at_tip
  FROM shard_leases l
 WHERE l.consumer_group = %s AND l.stream = %s AND NOT l.finished
 ORDER BY l.shard_id
"""
LIVE_WORKERS = """
SELECT worker_id FROM consumer_workers
 WHERE consumer_group = %s AND stream = %s AND heartbeat_at >= now() - make_interval(secs => %s)
"""
IDLE = """
SELECT extract(epoch FROM now() - max(last_record_at)) FROM shard_leases WHERE consumer_group = %s AND stream = %s
"""
CLAIM = """
UPDATE shard_leases SET owner = %(me)s, lease_expires_at = now() + make_interval(secs => %(secs)s),
       steal_requested_by = NULL, at_tip = false, updated_at = now()
 WHERE consumer_group = %(group)s AND stream = %(stream)s AND shard_id = %(shard)s AND NOT finished
   AND (owner IS NULL OR lease_expires_at < now())
RETURNING checkpoint
"""
# A named taker gets a live lease at once: it is its shard from this commit on.
HAND_OVER = """
UPDATE shard_leases SET owner = %(to)s,
       lease_expires_at = CASE WHEN %(to)s::text IS NULL THEN NULL ELSE now() + make_interval(secs => %(secs)s) END,
       steal_requested_by = NULL, at_tip = false, updated_at = now()
 WHERE consumer_group = %(group)s AND stream = %(stream)s AND shard_id = %(shard)s AND owner = %(me)s
"""
REQUEST_STEAL = """
UPDATE shard_leases SET steal_requested_by = %(me)s
 WHERE consumer_group = %(group)s AND stream = %(stream)s AND shard_id = %(shard)s AND owner = %(victim)s
   AND steal_requested_by IS NULL AND NOT finished
"""
DECLINE = """
UPDATE shard_leases SET steal_requested_by = NULL
 WHERE consumer_group = %(group)s AND stream = %(stream)s AND shard_id = ANY(%(shards)s::text[]) AND owner = %(me)s
"""
LEAVE = "DELETE FROM consumer_workers WHERE consumer_group = %s AND stream = %s AND worker_id = %s"
FORGET_DEAD = """
DELETE FROM consumer_workers WHERE consumer_group = %s AND stream = %s AND heartbeat_at < now() - interval '1 day'
"""
# Runs inside the batch transaction: no owner match, no checkpoint, no commit.
CHECKPOINT = """
UPDATE shard_leases SET checkpoint = COALESCE(%(sequence)s, checkpoint), finished = %(finished)s, updated_at = now(),
       last_record_at = CASE WHEN %(sequence)s::text IS NULL THEN last_record_at ELSE now() END
 WHERE consumer_group = %(group)s AND stream = %(stream)s AND shard_id = %(shard)s AND owner = %(me)s
   AND lease_expires_at >= now()
"""


class LeaseLost(Exception):
    """The lease expired or was taken over: the batch in hand must not commit."""


class LeaseTable:
    def __init__(self, group: str, stream: str, owner: str, lease_duration_s: float) -> None:
        self.group, self.stream, self.owner, self.duration = group, stream, owner, lease_duration_s

    def _key(self, **extra: object) -> dict[str, object]:
        return {"group": self.group, "stream": self.stream, "me": self.owner, "secs": self.duration, **extra}

    def sync(self, conn: psycopg2.extensions.connection, shards: Sequence[Shard]) -> None:
        """Every shard of the stream has a lease row (new ones free)."""
        payload = json.dumps([{"id": s.shard_id, "parents": list(s.parent_shard_ids)} for s in shards])
        with conn, conn.cursor() as cur:
            cur.execute(SYNC, (self.group, self.stream, payload))
            cur.execute(FORGET_DEAD, (self.group, self.stream))

    def heartbeat(self, conn: psycopg2.extensions.connection, at_tip: Collection[str] = ()) -> Heartbeat:
        """Register or refresh this worker, renew its leases, and balance (processor/balance.py).
        `at_tip`: the shards this worker holds that it has read to the tip and committed."""
        with conn, conn.cursor() as cur:
            cur.execute(LOCK, (self.group, self.stream))
            cur.execute(BEAT, (self.group, self.stream, self.owner))
            cur.execute(RENEW, self._key(tips=list(at_tip)))
            held = dict(cur.fetchall())
            rows, live = self._snapshot(cur)
            moves = balance.balance(self.owner, rows, live)
            for shard_id in moves.take:
                cur.execute(CLAIM, self._key(shard=shard_id))
                claimed = cur.fetchone()
                if claimed is not None:
                    held[shard_id] = claimed[0]
            for shard_id, taker in moves.hand_over.items():
                cur.execute(HAND_OVER, self._key(shard=shard_id, to=taker))
                held.pop(shard_id, None)
            if moves.request_steal is not None:
                shard_id, victim = moves.request_steal
                cur.execute(REQUEST_STEAL, self._key(shard=shard_id, victim=victim))
            if moves.decline:
                cur.execute(DECLINE, self._key(shards=moves.decline))
            cur.execute(IDLE, (self.group, self.stream))
            idle = cur.fetchone()[0]
        return Heartbeat(held, dict(moves.hand_over), moves, rows, live, None if idle is None else float(idle))

    def _snapshot(self, cur: psycopg2.extensions.cursor) -> tuple[tuple[LeaseRow, ...], frozenset[str]]:
        cur.execute(SNAPSHOT, (self.group, self.stream))
        rows = tuple(LeaseRow(*row) for row in cur.fetchall())
        cur.execute(LIVE_WORKERS, (self.group, self.stream, self.duration))
        return rows, frozenset(row[0] for row in cur.fetchall())

    def leave(self, conn: psycopg2.extensions.connection) -> dict[str, str | None]:
        """Shutting down: hand every lease this worker holds to the least-loaded live worker
        (or free it), and deregister, so the others' share counts it out at once."""
        with conn, conn.cursor() as cur:
            cur.execute(LOCK, (self.group, self.stream))
            cur.execute(LEAVE, (self.group, self.stream, self.owner))
            rows, live = self._snapshot(cur)
            handed = balance.leaving(self.owner, rows, live)
            for shard_id, taker in handed.items():
                cur.execute(HAND_OVER, self._key(shard=shard_id, to=taker))
            return handed

    def checkpoint(self, cur: psycopg2.extensions.cursor, shard_id: str, sequence_number: str | None, finished: bool) -> None:
        cur.execute(CHECKPOINT, self._key(shard=shard_id, sequence=sequence_number, finished=finished))
        if cur.rowcount != 1:
            raise LeaseLost(shard_id)
