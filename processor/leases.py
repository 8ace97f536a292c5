"""Shard leases and checkpoints, in PostgreSQL next to the data they protect.

A lease is a row per (consumer group, stream, shard). A worker owns a shard while its
lease has not expired; `acquire`, called every third of the lease duration, re-claims
(renews) the shards it holds, and `release` frees them on shutdown. A dead
worker's leases expire and others take them over. A child shard (after a reshard) is
only taken once all its parents are finished, so records of a key stay in order.
"""
from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass


@dataclass(frozen=True)
class Shard:
    shard_id: str
    parent_shard_ids: tuple[str, ...]


@dataclass
class Lease:
    shard_id: str
    checkpoint: str | None


SYNC = """
INSERT INTO shard_leases (consumer_group, stream, shard_id, parent_shard_ids)
SELECT %s, %s, s.id, s.parents FROM jsonb_to_recordset(%s::jsonb) AS s(id text, parents text[])
ON CONFLICT DO NOTHING
"""
ELIGIBLE = """
SELECT l.shard_id FROM shard_leases l
 WHERE l.consumer_group = %(group)s AND l.stream = %(stream)s AND NOT l.finished
   AND (l.owner IS NULL OR l.lease_expires_at < now() OR l.owner = %(owner)s)
   AND NOT EXISTS (
       SELECT 1 FROM shard_leases p
        WHERE p.consumer_group = l.consumer_group AND p.stream = l.stream
          AND p.shard_id = ANY(l.parent_shard_ids) AND NOT p.finished)
 ORDER BY (l.owner = %(owner)s) DESC NULLS LAST, l.shard_id
"""
LIVE_OWNERS = """
SELECT count(DISTINCT owner) FROM shard_leases
 WHERE consumer_group = %s AND stream = %s AND owner IS NOT NULL AND owner <> %s AND lease_expires_at >= now()
"""
OPEN_SHARDS = "SELECT count(*) FROM shard_leases WHERE consumer_group = %s AND stream = %s AND NOT finished"
HELD_BY_OTHERS = """
SELECT count(*) FROM shard_leases
 WHERE consumer_group = %s AND stream = %s AND NOT finished AND owner <> %s AND lease_expires_at >= now()
"""
CLAIM = """
UPDATE shard_leases SET owner = %(owner)s, lease_expires_at = now() + make_interval(secs => %(secs)s),
       updated_at = now()
 WHERE consumer_group = %(group)s AND stream = %(stream)s AND shard_id = %(shard)s AND NOT finished
   AND (owner IS NULL OR lease_expires_at < now() OR owner = %(owner)s)
RETURNING checkpoint
"""
# Runs inside the batch transaction: no owner match, no checkpoint, no commit.
CHECKPOINT = """
UPDATE shard_leases SET checkpoint = COALESCE(%s, checkpoint), finished = %s, updated_at = now()
 WHERE consumer_group = %s AND stream = %s AND shard_id = %s AND owner = %s AND lease_expires_at >= now()
"""
RELEASE = """
UPDATE shard_leases SET owner = NULL, lease_expires_at = NULL, updated_at = now()
 WHERE consumer_group = %s AND stream = %s AND owner = %s
"""


class LeaseLost(Exception):
    """The lease expired or was taken over: the batch in hand must not commit."""


class LeaseTable:
    def __init__(self, group: str, stream: str, owner: str, lease_duration_s: float) -> None:
        self.group, self.stream, self.owner, self.duration = group, stream, owner, lease_duration_s

    def sync(self, conn, shards: Sequence[Shard]) -> None:  # noqa: ANN001
        import json

        payload = json.dumps([{"id": s.shard_id, "parents": list(s.parent_shard_ids)} for s in shards])
        with conn, conn.cursor() as cur:
            cur.execute(SYNC, (self.group, self.stream, payload))

    def acquire(self, conn, held: Sequence[str]) -> list[Lease]:  # noqa: ANN001
        """Claim this worker's fair share of eligible shards (and renew the ones it holds)."""
        with conn, conn.cursor() as cur:
            cur.execute(OPEN_SHARDS, (self.group, self.stream))
            open_shards = cur.fetchone()[0]
            cur.execute(LIVE_OWNERS, (self.group, self.stream, self.owner))
            others = cur.fetchone()[0]
            share = max(1, math.ceil(open_shards / (others + 1)))
            cur.execute(ELIGIBLE, {"group": self.group, "stream": self.stream, "owner": self.owner})
            candidates = [row[0] for row in cur.fetchall()]
            leases = []
            for shard_id in candidates:
                if len(leases) >= share and shard_id not in held:
                    continue
                cur.execute(CLAIM, {"owner": self.owner, "secs": self.duration, "group": self.group,
                                    "stream": self.stream, "shard": shard_id})
                row = cur.fetchone()
                if row is not None:
                    leases.append(Lease(shard_id, row[0]))
            return leases

    def held_by_others(self, conn) -> int:  # noqa: ANN001
        """Open shards another (possibly dead) worker still holds a live lease on."""
        with conn, conn.cursor() as cur:
            cur.execute(HELD_BY_OTHERS, (self.group, self.stream, self.owner))
            return cur.fetchone()[0]

    def checkpoint(self, cur, shard_id: str, sequence_number: str | None, finished: bool) -> None:  # noqa: ANN001
        cur.execute(CHECKPOINT, (sequence_number, finished, self.group, self.stream, shard_id, self.owner))
        if cur.rowcount != 1:
            raise LeaseLost(shard_id)

    def release(self, conn) -> None:  # noqa: ANN001
        with conn, conn.cursor() as cur:
            cur.execute(RELEASE, (self.group, self.stream, self.owner))
