"""Sharding: a stable hash of each canary, and how free shards are handed out (pure)."""

from __future__ import annotations

from collections import Counter

from agent.leader import REQUEST_ANNOTATION, LeaderElector, LeaseTiming
from agent.shards import (
    ShardOwnership,
    may_take,
    preference,
    shard_electors,
    wanted_shard,
)
from kubectl_canary.api.sharding import shard_of
from tests.store_client import StoreClient

from .test_leader import Clock


def test_shard_of_is_stable_and_spreads_keys_evenly() -> None:
    # Pinned: a change of hash would move canaries between replicas mid-release on upgrade.
    assert shard_of("ns/app-0", 3) == 1
    assert shard_of("team-b/checkout", 3) == 0
    counts = Counter(shard_of(f"bench/app-{i:05d}", 3) for i in range(3000))
    assert set(counts) == {0, 1, 2}
    assert all(900 <= n <= 1100 for n in counts.values()), counts
    assert {shard_of(f"ns/app-{i}", 1) for i in range(50)} == {0}


def test_preference_starts_at_the_replicas_own_shard_and_covers_all() -> None:
    order = preference("agent-a", 4)
    assert sorted(order) == [0, 1, 2, 3]
    assert order[0] == shard_of("agent-a", 4)
    assert order == [(order[0] + i) % 4 for i in range(4)]


def test_a_replica_holding_fewer_shards_takes_a_free_one_first() -> None:
    step = 2.0
    assert may_take(held=0, rank=0, free_for=0.0, step=step)
    assert not may_take(held=1, rank=0, free_for=1.9, step=step)
    assert may_take(held=1, rank=0, free_for=2.0, step=step)
    # Its own less favoured shards wait one step per place.
    assert not may_take(held=0, rank=2, free_for=3.9, step=step)
    assert may_take(held=0, rank=2, free_for=4.0, step=step)


def test_ownership_with_one_shard_owns_everything_and_otherwise_only_held_shards() -> None:
    assert ShardOwnership(1).owns("ns/anything")
    own = ShardOwnership(3)
    key = "ns/app-0"
    assert not own.owns(key) and own.describe() == "no shard of 3 held"
    own.set(shard_of(key, 3), True)
    assert own.owns(key) and own.count() == 1
    own.set(shard_of(key, 3), False)
    assert not own.owns(key)


def electors(k: StoreClient, ident: str, clock: Clock, own: ShardOwnership) -> list[LeaderElector]:
    return shard_electors(
        k, "kc", ident, LeaseTiming.for_duration(15), own, lambda s, h: None, clock
    )


def round_of(k: StoreClient, clock: Clock, agents: dict[str, tuple]) -> None:
    """One round of every replica's electors at the same virtual moment."""
    for own, els in agents.values():
        for shard, el in enumerate(els):
            own.set(shard, el.try_acquire_or_renew())


def test_replicas_starting_together_split_the_shards_and_take_over_a_dead_ones() -> None:
    k, clock = StoreClient(namespace="kc"), Clock()
    agents = {}
    for ident in ("a", "b", "c"):
        own = ShardOwnership(3)
        agents[ident] = (own, electors(k, ident, clock, own))
    retry = LeaseTiming.for_duration(15).retry_period
    for _ in range(10):
        round_of(k, clock, agents)
        clock.t += retry
    held = {ident: own.held() for ident, (own, _) in agents.items()}
    assert sorted(s for shards in held.values() for s in shards) == [0, 1, 2], held
    assert all(len(shards) == 1 for shards in held.values()), held
    dead = "b"
    survivors = {i: agents[i] for i in agents if i != dead}
    t0 = clock.t
    while clock.t - t0 < 30:
        round_of(k, clock, survivors)
        if sum(own.count() for own, _ in survivors.values()) == 3:
            break
        clock.t += retry
    taken_after = clock.t - t0
    assert sum(own.count() for own, _ in survivors.values()) == 3
    # Expiry (15 s) plus the holding-back of a replica that holds one shard already.
    assert 15 <= taken_after <= 15 + 3 * retry + retry, taken_after


def test_a_lone_replica_ends_up_holding_every_shard() -> None:
    k, clock = StoreClient(namespace="kc"), Clock()
    own = ShardOwnership(3)
    agents = {"a": (own, electors(k, "a", clock, own))}
    retry = LeaseTiming.for_duration(15).retry_period
    for _ in range(12):
        round_of(k, clock, agents)
        clock.t += retry
    assert own.held() == (0, 1, 2)


def test_a_replica_asks_the_busiest_for_its_lowest_shard_only_when_that_evens_things() -> None:
    assert wanted_shard({0: "a", 1: "a", 2: "a"}, "b") == 0
    assert wanted_shard({0: "a", 1: "b", 2: "a", 3: "a"}, "c") == 0
    assert wanted_shard({0: "a", 1: "a", 2: "b"}, "c") == 0
    # One more than us: moving one would only turn the imbalance round.
    assert wanted_shard({0: "a", 1: "a", 2: "b"}, "b") is None
    assert wanted_shard({0: "a", 1: "b", 2: "c"}, "c") is None
    assert wanted_shard({0: "", 1: "", 2: ""}, "a") is None


def test_replicas_coming_later_are_handed_a_share() -> None:
    k, clock = StoreClient(namespace="kc"), Clock()
    retry = LeaseTiming.for_duration(15).retry_period
    agents: dict[str, tuple] = {}

    def rounds(n: int) -> dict[str, tuple[int, ...]]:
        for _ in range(n):
            round_of(k, clock, agents)
            clock.t += retry
        return {ident: own.held() for ident, (own, _) in agents.items()}

    for ident in ("a", "b", "c"):
        own = ShardOwnership(3)
        agents[ident] = (own, electors(k, ident, clock, own))
        held = rounds(20)
        # Never a shard held twice, never one left free.
        assert sorted(s for shards in held.values() for s in shards) == [0, 1, 2], held
    assert sorted(len(shards) for shards in held.values()) == [1, 1, 1], held
    requests = [k.find("Lease", f"kubectl-canary-agent-shard-{i}", "kc") for i in range(3)]
    assert not any(REQUEST_ANNOTATION in (r["metadata"].get("annotations") or {}) for r in requests)


def test_a_request_the_holder_declines_is_cleared_on_its_renewal() -> None:
    k, clock = StoreClient(namespace="kc"), Clock()
    agents: dict[str, tuple] = {}
    for ident in ("a", "b"):
        own = ShardOwnership(2)
        agents[ident] = (own, electors(k, ident, clock, own))
    for _ in range(10):
        round_of(k, clock, agents)
        clock.t += 1
    mine = agents["a"][0].held()
    assert len(mine) == 1, mine
    name = f"kubectl-canary-agent-shard-{mine[0]}"
    lease = k.find("Lease", name, "kc")
    lease["metadata"]["annotations"] = {REQUEST_ANNOTATION: "gone-replica"}
    k.replace(lease)
    round_of(k, clock, agents)
    assert agents["a"][0].held() == mine  # one shard only: never given away
    assert REQUEST_ANNOTATION not in (
        k.find("Lease", name, "kc")["metadata"].get("annotations") or {}
    )
