"""A canary taken over from another replica is ticked only once our cache has its last write.

When a shard (or, with one shard, the leadership) changes hands, the previous holder's last
writes reach this replica's caches by their watches, normally within milliseconds. A watch that
lags (reconnecting, re-listing) would let the first tick decide from an older status: it would
repeat a step already taken, and write that weight to the routing object before the status
writer notices that the status moved on (agent/status_writer.py) and drops the decision.

So the first tick of each canary in a new term (each time this replica takes the canary's shard)
first makes sure the cached Canary is at least the live one. That costs nothing when the
namespace's Canaries were listed after the term began: the previous holder stops writing
before its Lease expires (agent/leader.py), and a list made after we took it over holds every
write made before. Otherwise it costs one GET per canary per term; a cache found behind is
asked again shortly, as its watch catches up.
"""

from __future__ import annotations

import threading
from collections.abc import Callable

from agent.cache import resource_version, rv_newer
from kubectl_canary.resources import Obj

# (term number, monotonic time the term began) of the shard a key belongs to.
TermFn = Callable[[str], tuple[int, float]]


class Handover:
    def __init__(
        self,
        term: TermFn,
        listed_at: Callable[[str], float],  # namespace -> when its Canaries were last listed
        live: Callable[[str, str], Obj | None],  # (namespace, name) -> GET of the Canary
        cached: Callable[[str, str], Obj | None],  # (namespace, name) -> the cached Canary
    ) -> None:
        self._term = term
        self._listed_at = listed_at
        self._live = live
        self._cached = cached
        self._checked: dict[str, int] = {}  # key -> the term in which its cache was checked
        self._lock = threading.Lock()

    def caught_up(self, key: str) -> bool:
        """Whether `key` may be ticked: its cached Canary holds every write made before this
        term. Raises what the GET raises (the tick fails and is retried)."""
        term, began = self._term(key)
        with self._lock:
            if self._checked.get(key) == term:
                return True
        ns, name = key.split("/", 1)
        if self._listed_at(ns) < began and not self._same_or_newer(ns, name):
            return False
        with self._lock:
            self._checked[key] = term
        return True

    def forget(self, key: str) -> None:
        with self._lock:
            self._checked.pop(key, None)

    def _same_or_newer(self, ns: str, name: str) -> bool:
        live = self._live(ns, name)
        cached = self._cached(ns, name)
        if live is None or cached is None:
            return live is None and cached is None
        live_rv, cached_rv = resource_version(live), resource_version(cached)
        return live_rv == cached_rv or not rv_newer(live_rv, cached_rv)
