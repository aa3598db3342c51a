"""A de-duplicating work queue with delayed items, like client-go's rate-limited queue.

Store events only mark keys dirty; the worker drains the set, so a burst of events for one
Deployment costs one sync, and 1,000 idle Deployments cost nothing.
"""

from __future__ import annotations

import heapq
import threading
import time

Item = tuple[str, str, str]  # (what, namespace, name), e.g. ("deployment", "test", "mhs")


class WorkQueue:
    def __init__(self) -> None:
        self._condition = threading.Condition()
        self._dirty: dict[Item, None] = {}  # insertion-ordered set
        self._delayed: list[tuple[float, Item]] = []
        self._stopped = False

    def add(self, item: Item) -> None:
        with self._condition:
            self._dirty[item] = None
            self._condition.notify()

    def add_after(self, item: Item, delay_seconds: float) -> None:
        with self._condition:
            heapq.heappush(self._delayed, (time.monotonic() + max(0.0, delay_seconds), item))
            self._condition.notify()

    def stop(self) -> None:
        with self._condition:
            self._stopped = True
            self._condition.notify_all()

    def take(self, max_wait: float) -> list[Item] | None:
        """All items due now (waiting up to `max_wait`); None once stopped."""
        with self._condition:
            deadline = time.monotonic() + max_wait
            while not self._stopped:
                now = time.monotonic()
                while self._delayed and self._delayed[0][0] <= now:
                    self._dirty[heapq.heappop(self._delayed)[1]] = None
                if self._dirty:
                    items = list(self._dirty)
                    self._dirty.clear()
                    return items
                if now >= deadline:
                    return []
                wait = deadline - now
                if self._delayed:
                    wait = min(wait, self._delayed[0][0] - now)
                self._condition.wait(wait)
            return None
