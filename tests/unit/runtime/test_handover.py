"""A canary taken over is ticked only once the cache holds the previous holder's last write
(agent/handover.py); the check costs a GET only when the cache was listed before the term."""

from __future__ import annotations

from agent.handover import Handover
from agent.shards import ShardOwnership
from kubectl_canary.api.sharding import shard_of


def canary(rv: str) -> dict:
    return {"metadata": {"namespace": "ns", "name": "web", "resourceVersion": rv}}


class World:
    def __init__(self) -> None:
        self.now = 100.0
        self.ownership = ShardOwnership(3, clock=lambda: self.now)
        self.listed = 50.0
        self.live: dict | None = canary("7")
        self.cached: dict | None = canary("7")
        self.gets = 0
        self.handover = Handover(
            self.ownership.term, lambda ns: self.listed, self._get, self._cached
        )

    def _get(self, ns: str, name: str) -> dict | None:
        self.gets += 1
        return self.live

    def _cached(self, ns: str, name: str) -> dict | None:
        return self.cached

    def take(self) -> None:
        self.ownership.set(shard_of("ns/web", 3), True)

    def drop(self) -> None:
        self.ownership.set(shard_of("ns/web", 3), False)


def test_a_cache_behind_the_live_canary_waits_then_is_checked_once_per_term() -> None:
    w = World()
    w.take()  # at 100, after the list at 50: the list may miss the last holder's writes
    w.cached = canary("6")
    assert not w.handover.caught_up("ns/web")
    w.cached = canary("7")  # the watch delivered it
    assert w.handover.caught_up("ns/web")
    gets = w.gets
    w.cached = canary("6")  # whatever the cache says now, this term is checked
    assert w.handover.caught_up("ns/web") and w.gets == gets


def test_no_get_when_the_namespace_was_listed_after_the_term_began() -> None:
    w = World()
    w.take()
    w.listed = 101.0
    w.cached = canary("6")  # cannot be: a list after the take holds every earlier write
    assert w.handover.caught_up("ns/web") and w.gets == 0


def test_every_new_term_checks_again_and_a_newer_cache_counts_as_caught_up() -> None:
    w = World()
    w.take()
    assert w.handover.caught_up("ns/web") and w.gets == 1
    w.drop()
    w.now = 200.0
    w.take()  # taken again: a new term
    w.live, w.cached = canary("9"), canary("8")
    assert not w.handover.caught_up("ns/web") and w.gets == 2
    w.cached = canary("10")  # a write after our GET already reached the cache
    assert w.handover.caught_up("ns/web")


def test_a_canary_deleted_or_created_meanwhile_waits_for_the_cache_to_agree() -> None:
    w = World()
    w.take()
    w.live = None
    assert not w.handover.caught_up("ns/web")
    w.cached = None
    assert w.handover.caught_up("ns/web")
    w.handover.forget("ns/web")
    w.live = canary("3")
    assert not w.handover.caught_up("ns/web"), "forgotten: checked again"


def test_terms_count_takes_not_renewals_and_one_shard_is_the_leadership() -> None:
    times = iter([1.0, 2.0, 3.0])
    own = ShardOwnership(1, clock=lambda: next(times))
    assert own.term("ns/a") == (0, 0.0)
    own.set(0, True)
    own.set(0, True)  # still held: the same term
    assert own.term("ns/a") == (1, 1.0) == own.term("other/b")
    own.set(0, False)
    own.set(0, True)
    assert own.term("ns/a") == (2, 2.0)
