"""The fleet's lease decisions (processor/balance.py), pure: no database, no stream."""
from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st

from processor.balance import LeaseRow, balance, drained, leaving, loads, targets


def rows(owners: dict[str, str | None], *, tips: set[str] = frozenset(), expired: set[str] = frozenset(),
         steals: dict[str, str] | None = None, blocked: set[str] = frozenset()) -> list[LeaseRow]:
    steals = steals or {}
    return [LeaseRow(shard, owner, owner is not None and shard not in expired, shard not in blocked,
                     steals.get(shard), shard in tips) for shard, owner in sorted(owners.items())]


def test_a_worker_that_holds_nothing_counts_in_the_targets() -> None:
    assert targets(4, {"a": 4, "b": 0}) == {"a": 2, "b": 2}
    assert targets(4, {"a": 4, "b": 0, "c": 0}) == {"a": 2, "b": 1, "c": 1}
    assert targets(9, {"a": 0, "b": 0, "c": 0, "d": 0}) == {"a": 3, "b": 2, "c": 2, "d": 2}


def test_a_settled_fleet_keeps_what_it_holds() -> None:
    assert targets(5, {"a": 2, "b": 3}) == {"a": 2, "b": 3}


def test_a_newcomer_asks_the_busiest_worker_for_one_shard() -> None:
    moves = balance("b", rows({"s0": "a", "s1": "a", "s2": "a", "s3": "a"}), {"a", "b"})
    assert moves.request_steal == ("s3", "a") and not moves.take and not moves.hand_over


def test_the_busiest_worker_hands_its_surplus_to_the_newcomers_at_once() -> None:
    moves = balance("a", rows({"s0": "a", "s1": "a", "s2": "a", "s3": "a"}), {"a", "b", "c", "d"})
    assert moves.hand_over == {"s3": "b", "s2": "c", "s1": "d"}


def test_a_steal_request_is_honoured_when_it_narrows_the_spread() -> None:
    moves = balance("a", rows({"s0": "a", "s1": "a", "s2": "b", "s3": "a"}, steals={"s3": "c"}), {"a", "b", "c"})
    assert moves.hand_over == {"s3": "c"} and not moves.decline


def test_a_steal_request_that_would_not_narrow_the_spread_is_declined() -> None:
    moves = balance("a", rows({"s0": "a", "s1": "a", "s2": "b", "s3": "b"}, steals={"s1": "b"}), {"a", "b"})
    assert moves.decline == ["s1"] and not moves.hand_over


def test_a_steal_request_from_a_dead_worker_is_declined() -> None:
    moves = balance("a", rows({"s0": "a", "s1": "a", "s2": "a"}, steals={"s1": "gone"}), {"a"})
    assert moves.decline == ["s1"] and not moves.hand_over


def test_nobody_asks_when_the_spread_is_one() -> None:
    table = rows({"s0": "a", "s1": "a", "s2": "b", "s3": "b", "s4": "a"})
    assert not balance("b", table, {"a", "b"}) and not balance("a", table, {"a", "b"})


def test_free_and_expired_shards_are_taken_before_anything_is_asked_for() -> None:
    table = rows({"s0": "a", "s1": "a", "s2": None, "s3": "dead"}, expired={"s3"})
    moves = balance("b", table, {"a", "b"})
    assert moves.take == ["s2", "s3"] and moves.request_steal is None


def test_a_dead_workers_live_lease_is_waited_out_not_taken() -> None:
    table = rows({"s0": "a", "s1": "dead"})
    assert not balance("a", table, {"a"}).take


def test_a_child_whose_parent_is_open_is_not_taken() -> None:
    table = rows({"parent": "a", "child": None}, blocked={"child"})
    assert not balance("b", table, {"a", "b"}).take


def test_one_request_at_a_time() -> None:
    table = rows({"s0": "a", "s1": "a", "s2": "a", "s3": "a", "s4": "a", "s5": "a"}, steals={"s5": "b"})
    assert balance("b", table, {"a", "b"}).request_steal is None


def test_a_leaving_worker_spreads_its_shards_over_the_least_loaded() -> None:
    table = rows({"s0": "a", "s1": "a", "s2": "b", "s3": "c", "s4": "c"})
    assert leaving("a", table, {"b", "c"}) == {"s0": "b", "s1": "b"}
    assert leaving("a", table, set()) == {"s0": None, "s1": None}


def test_drained_needs_every_open_shard_at_its_tip_with_a_live_owner() -> None:
    table = rows({"s0": "a", "s1": "b"}, tips={"s1"})
    assert drained("a", table, {"a", "b"}, {"s0": True})
    assert not drained("a", table, {"a", "b"}, {"s0": False})
    assert not drained("a", table, {"a"}, {"s0": True})  # b stopped heart-beating: wait its lease out
    assert not drained("a", rows({"s0": "a", "s1": None}), {"a"}, {"s0": True})
    assert not drained("a", rows({"s0": "a", "child": None}, blocked={"child"}), {"a"}, {"s0": True})
    assert not drained("a", [], {"a"}, {})


def simulate(owners: dict[str, str | None], workers: list[str], rounds: int) -> list[dict[str, str | None]]:
    """Each round every worker heart-beats once, in turn, on the table the others left."""
    history = [dict(owners)]
    steals: dict[str, str] = {}
    for _ in range(rounds):
        for me in workers:
            table = [LeaseRow(s, o, o is not None, True, steals.get(s)) for s, o in sorted(owners.items())]
            moves = balance(me, table, workers)
            for shard in moves.take:
                assert owners[shard] is None
                owners[shard] = me
                steals.pop(shard, None)
            for shard, taker in moves.hand_over.items():
                assert owners[shard] == me  # only the owner ever gives a shard away
                owners[shard] = taker
                steals.pop(shard, None)
            for shard in moves.decline:
                steals.pop(shard, None)
            if moves.request_steal:
                steals.setdefault(moves.request_steal[0], me)
        history.append(dict(owners))
    return history


def spread(owners: dict[str, str | None], workers: list[str]) -> int:
    held = loads([LeaseRow(s, o, o is not None, True) for s, o in owners.items()], workers)
    return max(held.values()) - min(held.values())


@settings(max_examples=400, deadline=None)
@given(st.integers(1, 12), st.integers(1, 6), st.data())
def test_any_fleet_settles_within_two_rounds_into_an_even_spread_and_stays_there(
        shards: int, n: int, data: st.DataObject) -> None:
    workers = [f"w{i}" for i in range(n)]
    start = {f"s{i:02d}": data.draw(st.sampled_from([None, *workers])) for i in range(shards)}
    history = simulate(start, workers, rounds=5)
    settled = history[2]
    assert None not in settled.values()
    assert spread(settled, workers) <= 1
    assert all(h == settled for h in history[2:])  # no flapping once settled


@settings(max_examples=200, deadline=None)
@given(st.integers(1, 10), st.lists(st.integers(1, 6), min_size=2, max_size=5), st.data())
def test_a_fleet_that_grows_and_shrinks_settles_again_within_two_rounds_each_time(shards: int, sizes: list[int],
                                                                                data: st.DataObject) -> None:
    owners: dict[str, str | None] = {f"s{i:02d}": None for i in range(shards)}
    for size in sizes:
        workers = [f"w{i}" for i in sorted(data.draw(st.sets(st.integers(0, 9), min_size=size, max_size=size)))]
        owners = {s: (o if o in workers else None) for s, o in owners.items()}  # the gone ones' leases expired
        history = simulate(owners, workers, rounds=4)
        owners = history[-1]
        assert None not in history[2].values() and spread(history[2], workers) <= 1
        assert all(h == history[2] for h in history[2:])
