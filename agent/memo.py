"""Results kept per canary until what they were computed from changes.

A steady tick re-reads the same cached objects every interval: parsing and validating the
Canary and hashing its target's pod template were most of its CPU (bench/agent_scale.py). Both
are pure functions of objects whose resourceVersion says whether they changed, so each result is
kept with the versions it came from and recomputed only when one differs.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Hashable
from typing import Generic, TypeVar

T = TypeVar("T")


class ByVersion(Generic[T]):
    """One result per key, valid while its `version` is unchanged. Thread-safe: two workers
    never tick the same canary at once, but different canaries share the table."""

    def __init__(self) -> None:
        self._entries: dict[str, tuple[Hashable, T]] = {}
        self._lock = threading.Lock()

    def get(self, key: str, version: Hashable, compute: Callable[[], T]) -> T:
        """The result for `key` at `version`; `compute` runs when there is none (an exception
        it raises is passed on and nothing is kept)."""
        with self._lock:
            entry = self._entries.get(key)
        if entry is not None and entry[0] == version:
            return entry[1]
        value = compute()
        with self._lock:
            self._entries[key] = (version, value)
        return value

    def forget(self, key: str) -> None:
        with self._lock:
            self._entries.pop(key, None)

    def __len__(self) -> int:
        with self._lock:
            return len(self._entries)
