"""Watch history: a small ring of recent events per kind, like the API server's watch cache.

A watch resumes from a resourceVersion by replaying the ring; when that version has already
been evicted, the server must answer 410 Gone ("too old resource version") so that clients
re-list, exactly the path an informer must handle. A small window makes that path easy to hit.
"""

from __future__ import annotations

import threading
from collections import deque
from dataclasses import dataclass
from typing import Any


class TooOld(Exception):
    """The requested resourceVersion is older than the oldest event kept."""


@dataclass(frozen=True)
class WatchEvent:
    rv: int
    type: str  # ADDED | MODIFIED | DELETED
    obj: dict[str, Any]  # never mutated once recorded
    old: dict[str, Any] | None  # previous state, to turn selector transitions into ADDED/DELETED


class _Ring:
    def __init__(self, window: int) -> None:
        self.events: deque[WatchEvent] = deque(maxlen=window)
        self.evicted_upto = 0  # rv of the newest event that fell out of the ring


class EventLog:
    """Per-kind rings of events; `wait_since` blocks until newer events of its kind exist.

    Each kind has its own condition (all sharing one lock): an event wakes only the watches of
    its kind. One condition for all once woke every watch on every event, and at 10 watched
    namespaces (~90 open watches) those wake-ups were most of the sandbox's time.
    """

    def __init__(self, window: int) -> None:
        self.window = max(1, window)
        self._rings: dict[tuple[str, str], _Ring] = {}
        self._lock = threading.Lock()
        self._conds: dict[tuple[str, str], threading.Condition] = {}

    def _cond(self, kind_key: tuple[str, str]) -> threading.Condition:
        """The condition of a kind; the caller holds the lock."""
        cond = self._conds.get(kind_key)
        if cond is None:
            cond = self._conds[kind_key] = threading.Condition(self._lock)
        return cond

    def record(self, kind_key: tuple[str, str], event: WatchEvent) -> None:
        with self._lock:
            ring = self._rings.get(kind_key)
            if ring is None:
                ring = self._rings[kind_key] = _Ring(self.window)
            if len(ring.events) == ring.events.maxlen:
                ring.evicted_upto = ring.events[0].rv
            ring.events.append(event)
            self._cond(kind_key).notify_all()

    def since(self, kind_key: tuple[str, str], rv: int) -> list[WatchEvent]:
        """Events of a kind newer than rv; TooOld when some of them were evicted."""
        with self._lock:
            return self._since(kind_key, rv)

    def _since(self, kind_key: tuple[str, str], rv: int) -> list[WatchEvent]:
        ring = self._rings.get(kind_key)
        if ring is None:
            return []
        if rv < ring.evicted_upto:
            raise TooOld(rv)
        # A watch that keeps up asks for the last few: a reverse scan stops at the first
        # event already seen.
        newer = []
        for ev in reversed(ring.events):
            if ev.rv <= rv:
                break
            newer.append(ev)
        newer.reverse()
        return newer

    def wait_since(self, kind_key: tuple[str, str], rv: int, timeout: float) -> list[WatchEvent]:
        """Like `since`, but blocks up to `timeout` seconds while there is nothing newer."""
        with self._lock:
            events = self._since(kind_key, rv)
            if not events:
                self._cond(kind_key).wait(timeout)
                events = self._since(kind_key, rv)
            return events

    def forget(self, kind_key: tuple[str, str], rv: int) -> None:
        """Drop a kind's history (its CRD was deleted): older watches must re-list."""
        with self._lock:
            ring = self._rings.pop(kind_key, None)
            if ring is not None:
                fresh = self._rings[kind_key] = _Ring(self.window)
                fresh.evicted_upto = rv
            self._cond(kind_key).notify_all()
