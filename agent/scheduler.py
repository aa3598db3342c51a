"""When each canary ticks: periodically, promptly on relevant changes, one tick at a time.

Keys ("namespace/name") are scheduled at a due time; worker threads run due ticks. A key is
never run by two workers at once: when it becomes due while it runs, it runs again right after
(a change seen mid-tick is never lost). The tick function returns the delay until the key's
next periodic tick, or None to forget the key.

Fairness between namespaces (tenants): a tick can spend its time in a tenant's webhook or
metrics server, so one namespace runs at most `per_namespace` ticks at once; its other due keys
wait aside ("parked") without holding up anyone else's. A busy pool keeps one idle worker on the
lookout for the next due key: when a worker takes a key and none is left idle, another starts,
up to `max_workers`; those beyond `concurrency` leave when idle while another worker waits too.
So a tenant's slow calls delay its own canaries, not another namespace's, until more than
`max_workers / per_namespace` namespaces are slow at once.

Time comes from two injected places: due times and idleness are read from `clock`, and workers
wait for work on `condition` with a timeout. A test gives a virtual clock and a condition whose
timed waits end when that clock is advanced, so every due time is met exactly, without sleeps.
"""

from __future__ import annotations

import heapq
import itertools
import logging
import threading
import time
from collections import defaultdict
from collections.abc import Callable
from dataclasses import dataclass

log = logging.getLogger("agent.scheduler")

TickFn = Callable[[str], float | None]


@dataclass(frozen=True)
class TickRecord:
    key: str
    lag: float  # seconds between the due time and the start of the tick
    duration: float


def _namespace(key: str) -> str:
    return key.split("/", 1)[0]


class Scheduler:
    def __init__(
        self,
        tick: TickFn,
        concurrency: int = 4,
        clock: Callable[[], float] = time.monotonic,
        on_tick: Callable[[TickRecord], None] | None = None,
        error_delay: float = 5.0,
        per_namespace: int | None = None,
        max_workers: int | None = None,
        spare_idle: float = 30.0,
        condition: threading.Condition | None = None,
    ) -> None:
        self._tick = tick
        self._concurrency = max(1, concurrency)
        self._per_namespace = max(1, per_namespace or max(1, self._concurrency // 2))
        self._max_workers = max(self._concurrency, max_workers or self._concurrency)
        # How long a worker beyond `concurrency` waits for work before it leaves the pool.
        self._spare_idle = spare_idle
        self._clock = clock
        self._on_tick = on_tick
        self._error_delay = error_delay
        self._cond = condition if condition is not None else threading.Condition()
        # Two levels, so that a pick costs O(log n) however many keys wait in a busy namespace:
        # a heap of due entries per namespace, and a heap of the heads of namespaces that may
        # run another tick. Entries are never removed in place: one is live while `_due` (key)
        # or the namespace's heap head (namespace) still says so, and stale ones are dropped
        # when they surface.
        self._queued: defaultdict[str, list[tuple[float, int, str]]] = defaultdict(list)
        self._heads: list[tuple[float, int, str]] = []  # (due, seq, namespace)
        self._due: dict[str, tuple[float, int]] = {}  # the live (due, seq) per key
        self._running: set[str] = set()
        self._running_in: defaultdict[str, int] = defaultdict(int)  # namespace -> ticks running
        self._rerun: dict[str, float] = {}  # key -> due time of a request that came mid-tick
        self._seq = itertools.count()
        self._stopping = False
        self._workers: list[threading.Thread] = []
        self._idle = 0  # workers waiting for work

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

    def workers(self) -> int:
        with self._cond:
            return sum(1 for t in self._workers if t.is_alive())

    def _schedule_locked(self, key: str, at: float) -> None:
        if key in self._running:
            prev = self._rerun.get(key)
            self._rerun[key] = at if prev is None else min(prev, at)
            return
        current = self._due.get(key)
        if current is not None and current[0] <= at:
            return
        entry = (at, next(self._seq), key)
        self._due[key] = entry[:2]
        ns = _namespace(key)
        heapq.heappush(self._queued[ns], entry)
        if self._queued[ns][0] is entry:
            self._offer_locked(ns)
        self._cond.notify()

    def _offer_locked(self, ns: str) -> None:
        """Put namespace `ns`'s earliest live entry among the heads, if it may run a tick."""
        queue = self._queued.get(ns)
        while queue and self._due.get(queue[0][2]) != queue[0][:2]:
            heapq.heappop(queue)  # superseded or forgotten entry
        if not queue:
            self._queued.pop(ns, None)
            return
        if self._running_in.get(ns, 0) < self._per_namespace:
            at, seq, _ = queue[0]
            heapq.heappush(self._heads, (at, seq, ns))

    # ----- workers -----

    def start(self) -> None:
        with self._cond:
            for _ in range(self._concurrency):
                self._spawn_locked(spare=False)

    def _spawn_locked(self, spare: bool) -> None:
        # A spare's name says it leaves again (thread dumps, tests waiting for it to go).
        name = f"tick-{len(self._workers)}{'-spare' if spare else ''}"
        t = threading.Thread(target=self._work, args=(spare,), name=name, daemon=True)
        self._workers = [w for w in self._workers if w.is_alive()]
        self._workers.append(t)
        t.start()

    def stop(self, timeout: float = 10.0) -> None:
        """Stop taking work; wait (bounded) for running ticks to finish."""
        with self._cond:
            self._stopping = True
            self._cond.notify_all()
            workers = list(self._workers)
        deadline = time.monotonic() + timeout
        for t in workers:
            t.join(max(0.0, deadline - time.monotonic()))

    def _next_locked(self, spare: bool) -> tuple[str, float] | None:
        """Pop the next due key of a namespace below its limit, waiting for one; None when
        stopping (or, for a spare worker, when it has been idle long enough)."""
        idle_since = self._clock()
        while not self._stopping:
            head = self._head_locked()
            now = self._clock()
            if head is None or head[0] > now:
                if spare and self._idle and now - idle_since >= self._spare_idle:
                    return None  # another worker is on the lookout
                wait = self._spare_idle if head is None else head[0] - now
                self._idle += 1
                try:
                    self._cond.wait(min(wait, self._spare_idle))
                finally:
                    self._idle -= 1
                continue
            _, _, ns = heapq.heappop(self._heads)
            at, _, key = heapq.heappop(self._queued[ns])
            del self._due[key]
            self._running.add(key)
            self._running_in[ns] += 1
            self._offer_locked(ns)
            return key, at
        return None

    def _head_locked(self) -> tuple[float, int, str] | None:
        """The earliest live entry (due, seq, namespace) of a namespace that may run another
        tick. A namespace at its limit has no head until one of its ticks ends."""
        while self._heads:
            at, seq, ns = self._heads[0]
            queue = self._queued.get(ns)
            live = (
                queue
                and queue[0][:2] == (at, seq)
                and self._due.get(queue[0][2]) == (at, seq)
                and self._running_in.get(ns, 0) < self._per_namespace
            )
            if live:
                return self._heads[0]
            heapq.heappop(self._heads)
            if queue and (at, seq) == queue[0][:2]:
                self._offer_locked(ns)  # its head was forgotten: offer the next live one
        return None

    def _finished_locked(self, key: str) -> None:
        self._running.discard(key)
        ns = _namespace(key)
        self._running_in[ns] -= 1
        if self._running_in[ns] <= 0:
            del self._running_in[ns]
        self._offer_locked(ns)
        self._cond.notify()

    def _grow_locked(self) -> None:
        """Another worker when none is left idle: the busy ones may be waiting on a slow tenant,
        and a key that falls due meanwhile needs someone to take it."""
        alive = sum(1 for t in self._workers if t.is_alive())
        if not self._idle and alive < self._max_workers and not self._stopping:
            self._spawn_locked(spare=True)

    def _work(self, spare: bool) -> None:
        while True:
            with self._cond:
                picked = self._next_locked(spare)
                if picked is not None:
                    self._grow_locked()
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
                self._finished_locked(key)
                rerun = self._rerun.pop(key, None)
                if delay is not None:
                    self._schedule_locked(key, end + delay)
                if rerun is not None:
                    self._schedule_locked(key, rerun)
