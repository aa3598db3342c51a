"""Sharding canaries across replicas (`--shards N`).

Each canary belongs to one of N shards by a stable hash of "namespace/name", the same in every
replica and every release of the agent. Each shard has a Lease
(`kubectl-canary-agent-shard-<i>`) that every replica competes for with the leader election
of agent/leader.py; a replica ticks only
the canaries of the shards it holds. So no canary is ticked by two replicas at once: a replica
stops starting ticks of a shard at the renew deadline and lets its running ones finish, before
its Lease can expire (agent/main.py). When a replica dies, its shards' Leases expire and the
others take them over.

Balance without a membership list: a free shard is taken first by the replica holding the
fewest shards. A replica holding `held` shards waits until the shard has been free for `held`
steps (retry periods), plus one step per place the shard has in its own order of preference
(a hash of its identity), so replicas starting together each take a different shard, and a
lone replica still ends up holding them all. A replica that comes later (or back) and sees
another holding at least two more shards than itself asks for one: it writes its identity on
that Lease, and the holder, at its next renewal, stops ticking the shard, then releases the
Lease for the asker to take. Nobody else takes it first: the others hold more shards and wait
longer, and the giver leaves it alone for a lease duration.
"""

from __future__ import annotations

import functools
import threading
import time
from collections import Counter
from collections.abc import Callable, Mapping

from agent.leader import LeaderElector, LeaseTiming
from kubectl_canary.api.sharding import shard_lease_name, shard_of
from kubectl_canary.resources import ResourceClient


def preference(identity: str, shards: int) -> list[int]:
    """The shards in the order this replica prefers them: from its own hash onwards."""
    first = shard_of(identity, shards)
    return [(first + i) % shards for i in range(shards)]


def may_take(held: int, rank: int, free_for: float, step: float) -> bool:
    """Whether a replica holding `held` shards takes a shard that has been free for `free_for`
    seconds and is its `rank`-th preference (0 = its favourite)."""
    return free_for >= (held + rank) * step


class ShardOwnership:
    """The shards this replica holds now (written by the electors' threads, read by ticks)."""

    def __init__(self, shards: int, clock: Callable[[], float] = time.monotonic) -> None:
        self.shards = shards
        self._held: set[int] = set()
        # shard -> (how many times this replica has taken it, when it last did): a new term
        # asks for the caches to have caught up with the previous holder (agent/handover.py).
        self._terms: dict[int, tuple[int, float]] = {}
        self._clock = clock
        self._lock = threading.Lock()

    def owns(self, key: str) -> bool:
        """With one shard there is nothing to split: the single leader's scheduler only runs
        while it leads, as before sharding existed."""
        if self.shards == 1:
            return True
        with self._lock:
            return shard_of(key, self.shards) in self._held

    def held(self) -> tuple[int, ...]:
        with self._lock:
            return tuple(sorted(self._held))

    def count(self) -> int:
        with self._lock:
            return len(self._held)

    def set(self, shard: int, holding: bool) -> None:
        """Take or drop `shard`; with one shard, taking it is winning the leadership."""
        with self._lock:
            if holding:
                if shard not in self._held:
                    count = self._terms.get(shard, (0, 0.0))[0]
                    self._terms[shard] = (count + 1, self._clock())
                self._held.add(shard)
            else:
                self._held.discard(shard)

    def term(self, key: str) -> tuple[int, float]:
        """(term number, monotonic start) of the shard `key` belongs to; (0, 0.0) before any."""
        shard = shard_of(key, self.shards) if self.shards > 1 else 0
        with self._lock:
            return self._terms.get(shard, (0, 0.0))

    def describe(self) -> str:
        held = self.held()
        if not held:
            return f"no shard of {self.shards} held"
        return f"shards {','.join(map(str, held))} of {self.shards}"


def wanted_shard(holders: Mapping[int, str], me: str) -> int | None:
    """The shard to ask its holder for, by the holders of every shard as this replica last saw
    them: the lowest of the busiest other replica's, when it holds at least two more than we
    do (one more would only move the imbalance to us). None when the split is fair."""
    counts = Counter(h for h in holders.values() if h)
    mine = counts.pop(me, 0)
    if not counts:
        return None
    busiest, most = max(counts.items(), key=lambda item: (item[1], item[0]))
    if most < mine + 2:
        return None
    return min(s for s, h in holders.items() if h == busiest)


class ShardSharing:
    """The Sharing of one shard's Lease (agent/leader.py), judged from what this replica's
    electors last saw of every shard's Lease."""

    def __init__(
        self,
        shard: int,
        identity: str,
        ownership: ShardOwnership,
        electors: list[LeaderElector],
        step: float,
    ) -> None:
        self._shard = shard
        self._identity = identity
        self._rank = preference(identity, ownership.shards).index(shard)
        self._ownership = ownership
        self._electors = electors  # every shard's, filled in once all exist
        self._step = step

    def may_acquire(self, free_for: float) -> bool:
        return may_take(self._ownership.count(), self._rank, free_for, self._step)

    def ask(self) -> bool:
        holders = {i: e.holder for i, e in enumerate(self._electors)}
        return wanted_shard(holders, self._identity) == self._shard

    def give(self, requester: str) -> bool:
        return self._ownership.count() >= 2  # never our last shard


def shard_electors(
    client: ResourceClient,
    namespace: str,
    identity: str,
    timing: LeaseTiming,
    ownership: ShardOwnership,
    on_change: Callable[[int, bool], None],
    clock: Callable[[], float] = time.monotonic,
) -> list[LeaderElector]:
    """One elector per shard Lease; a step of holding back is one retry period, the pace at
    which every replica looks at the Leases."""
    electors: list[LeaderElector] = []
    for shard in range(ownership.shards):
        sharing = ShardSharing(shard, identity, ownership, electors, timing.retry_period)
        electors.append(
            LeaderElector(
                client,
                namespace,
                shard_lease_name(shard),
                identity,
                timing,
                functools.partial(on_change, shard),
                clock=clock,
                sharing=sharing,
            )
        )
    return electors
