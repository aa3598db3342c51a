"""When each canary ticks: periodically, promptly on relevant changes, one tick at a time.

Keys ("namespace/name") are scheduled at a due time; `concurrency` worker threads run due
ticks. A key is never run by two workers at once: when it becomes due while it runs, it runs
again right after (a change seen mid-tick is never lost). The tick function returns the delay
until the key's next periodic tick, or None to forget the key.
"""

from __future__ import annotations

import heapq
import itertools
import logging
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass

log = logging.getLogger("agent.scheduler")

TickFn = Callable[[str], float | None]


@dataclass(frozen=True)
class TickRecord:
    key: str
    lag: float  # seconds between the due time and the start of the tick
    duration: float


class Scheduler:
    def __init__(
        self,
        tick: TickFn,
        concurrency: int = 4,
        clock: Callable[[], float] = time.monotonic,
        on_tick: Callable[[TickRecord], None] | None = None,
        error_delay: float = 5.0,
    ) -> None:
        self._tick = tick
        self._concurrency = max(1, concurrency)
        self._clock = clock
        self._on_tick = on_tick
        self._error_delay = error_delay
        self._cond = threading.Condition()
        self._heap: list[tuple[float, int, str]] = []
        self._due: dict[str, float] = {}  # the live entry per key; heap entries may be stale
        self._running: set[str] = set()
        self._rerun: dict[str, float] = {}  # key -> due time of a request that came mid-tick
        self._seq = itertools.count()
        self._stopping = False
        self._workers: list[threading.Thread] = []

    # ----- requests -----

    def schedule(self, key: str, delay: float) -> None:
        """Run `key` after `delay` seconds, or sooner if it is already due sooner."""
        with self._cond:
            self._schedule_locked(key, self._clock() + max(0.0, delay))

    def trigger(self, key: str) -> None:
        """Run `key` as soon as a worker is free (a relevant change happened)."""
        self.schedule(key, 0.0)

    def forget(self, key: str) -> None:
        with self._cond:
            self._due.pop(key, None)
            self._rerun.pop(key, None)

    def keys(self) -> set[str]:
        with self._cond:
            return set(self._due) | self._running

    def _schedule_locked(self, key: str, at: float) -> None:
        if key in self._running:
            prev = self._rerun.get(key)
            self._rerun[key] = at if prev is None else min(prev, at)
            return
        current = self._due.get(key)
        if current is not None and current <= at:
            return
        self._due[key] = at
        heapq.heappush(self._heap, (at, next(self._seq), key))
        self._cond.notify()

    # ----- workers -----

    def start(self) -> None:
        for i in range(self._concurrency):
            t = threading.Thread(target=self._work, name=f"tick-{i}", daemon=True)
            t.start()
            self._workers.append(t)

    def stop(self, timeout: float = 10.0) -> None:
        """Stop taking work; wait (bounded) for running ticks to finish."""
        with self._cond:
            self._stopping = True
            self._cond.notify_all()
        deadline = time.monotonic() + timeout
        for t in self._workers:
            t.join(max(0.0, deadline - time.monotonic()))

    def _next_locked(self) -> tuple[str, float] | None:
        """Pop the next due key, waiting for it; None when stopping."""
        while not self._stopping:
            while self._heap and self._due.get(self._heap[0][2]) != self._heap[0][0]:
                heapq.heappop(self._heap)  # superseded or forgotten entry
            if not self._heap:
                self._cond.wait()
                continue
            at, _, key = self._heap[0]
            now = self._clock()
            if at > now:
                self._cond.wait(at - now)
                continue
            heapq.heappop(self._heap)
            del self._due[key]
            self._running.add(key)
            return key, at
        return None

    def _work(self) -> None:
        while True:
            with self._cond:
                picked = self._next_locked()
            if picked is None:
                return
            key, due = picked
            start = self._clock()
            try:
                delay = self._tick(key)
            except Exception:  # noqa: BLE001 - one canary's failure must not stop the others
                log.exception("tick failed", extra={"canary": key})
                delay = self._error_delay
            end = self._clock()
            if self._on_tick is not None:
                self._on_tick(TickRecord(key, max(0.0, start - due), end - start))
            with self._cond:
                self._running.discard(key)
                rerun = self._rerun.pop(key, None)
                if delay is not None:
                    self._schedule_locked(key, end + delay)
                if rerun is not None:
                    self._schedule_locked(key, rerun)
