"""Who should read which shard: the fleet's lease decisions, as pure functions.

Every worker of a consumer group runs `balance` on the same snapshot of the lease table
(one worker at a time: the heartbeat holds an advisory lock), so each decision sees the
ones before it. The rules are the KCL's:

* A worker counts once it has registered, whether it holds a shard or not: each live
  worker's target is floor(eligible shards / live workers), one more for the busiest few
  while there is a remainder (`targets`), so no worker ever holds more than the fair share
  ceil(eligible / workers).
* A worker over its target hands the surplus to the live worker furthest under its own (or
  frees it) at a batch boundary: its batch in hand has committed with its checkpoint.
* A worker under its target takes free or expired shards first. Failing that it asks the
  most-loaded worker for one shard (a steal request), but only if that worker holds at
  least two more than it does: every move then narrows the spread, so the fleet settles
  and never flaps. A worker has one request open at a time.
* A shard whose lease is live but whose owner stopped heart-beating is waited out: its
  lease expires (the checkpoint guard refuses the old owner's commits from then on).
"""
from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field


@dataclass(frozen=True)
class LeaseRow:
    """One unfinished shard as the lease table shows it."""

    shard_id: str
    owner: str | None
    leased: bool  # an owner whose lease has not expired
    eligible: bool  # every parent finished: the shard may be read
    steal_requested_by: str | None = None
    at_tip: bool = False  # its owner's last report: read to the tip, everything read committed


@dataclass
class Moves:
    take: list[str] = field(default_factory=list)  # free or expired shards to claim
    hand_over: dict[str, str | None] = field(default_factory=dict)  # my shard -> taker (None: free it)
    request_steal: tuple[str, str] | None = None  # (shard, its owner) to ask for
    decline: list[str] = field(default_factory=list)  # steal requests on my shards to clear

    def __bool__(self) -> bool:
        return bool(self.take or self.hand_over or self.request_steal or self.decline)


def loads(rows: Iterable[LeaseRow], workers: Iterable[str]) -> dict[str, int]:
    """Eligible shards each live worker holds under a live lease."""
    held = {w: 0 for w in workers}
    for row in rows:
        if row.eligible and row.leased and row.owner in held:
            held[row.owner] += 1
    return held


def targets(eligible: int, load: Mapping[str, int]) -> dict[str, int]:
    """How many shards each live worker should hold: floor(eligible / workers), plus one for
    as many workers as the remainder, the busiest first (ties by id), so that a settled fleet
    keeps exactly what it holds."""
    low, extra = divmod(eligible, len(load)) if load else (0, 0)
    ranked = sorted(load, key=lambda w: (-load[w], w))
    return {w: low + (i < extra) for i, w in enumerate(ranked)}


def balance(me: str, rows: Sequence[LeaseRow], live_workers: Iterable[str]) -> Moves:
    """What `me` should do now to move the fleet towards an even spread."""
    workers = set(live_workers) | {me}
    eligible = sum(row.eligible for row in rows)
    load = loads(rows, workers)
    mine = sorted((r for r in rows if r.eligible and r.leased and r.owner == me), key=lambda r: r.shard_id)
    others = sorted(workers - {me})
    moves = Moves()

    def give(shard_id: str, taker: str | None) -> None:
        moves.hand_over[shard_id] = taker
        load[me] -= 1
        if taker is not None:
            load[taker] += 1

    # Steal requests on my shards: honoured when they narrow the spread, declined otherwise.
    for row in mine:
        thief = row.steal_requested_by
        if thief is None:
            continue
        if thief in load and thief != me and load[me] >= load[thief] + 2:
            give(row.shard_id, thief)
        else:
            moves.decline.append(row.shard_id)

    # Over my target: the surplus goes, one shard at a time, to whoever is furthest under theirs.
    keep = [r for r in mine if r.shard_id not in moves.hand_over]
    while keep:
        target = targets(eligible, load)
        if load[me] <= target[me]:
            break
        under = [w for w in others if load[w] < target[w]]
        taker = min(under, key=lambda w: (load[w] - target[w], w), default=None)
        give(keep.pop().shard_id, taker)

    # Under my target: free shards first (a dead worker's, once its lease expired).
    target = targets(eligible, load)
    free = sorted(r.shard_id for r in rows if r.eligible and not r.leased)
    if load[me] < target[me] and free:
        moves.take = free[: target[me] - load[me]]
        return moves
    if free or load[me] >= target[me] or any(r.steal_requested_by == me for r in rows):
        return moves  # free shards are someone else's to take; or my request is still open
    victim = max(others, key=lambda w: (load[w], w), default=None)
    if victim is not None and load[victim] >= load[me] + 2:
        asked = sorted(r.shard_id for r in rows
                       if r.eligible and r.leased and r.owner == victim and r.steal_requested_by is None)
        if asked:
            moves.request_steal = (asked[-1], victim)
    return moves


def leaving(me: str, rows: Sequence[LeaseRow], live_workers: Iterable[str]) -> dict[str, str | None]:
    """`me` is shutting down: each of its shards to the least-loaded other live worker (or freed)."""
    others = set(live_workers) - {me}
    load = loads(rows, others)
    handed: dict[str, str | None] = {}
    for row in sorted((r for r in rows if r.owner == me), key=lambda r: r.shard_id):
        taker = min(sorted(others), key=lambda w: load[w], default=None)
        handed[row.shard_id] = taker
        if taker is not None:
            load[taker] += 1
    return handed


def drained(me: str, rows: Sequence[LeaseRow], live_workers: Iterable[str], my_tips: Mapping[str, bool]) -> bool:
    """Every open shard is read to its tip by this worker (its own, current view) or by a
    live one (its last report). A shard held by a dead worker, a free shard and a child
    whose parents are still open are not drained."""
    if not rows:
        return False  # the lease table does not know the stream's shards yet
    live = set(live_workers) | {me}
    for row in rows:
        if not (row.eligible and row.leased and row.owner in live):
            return False
        at_tip = my_tips.get(row.shard_id, False) if row.owner == me else row.at_tip
        if not at_tip:
            return False
    return True
