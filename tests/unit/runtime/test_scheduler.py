"""The scheduler: due times, prompt triggers, one tick at a time per key, bounded concurrency,
fairness between namespaces. Driven on virtual time (virtual_time.py): no test sleeps, every
due time is met exactly."""

from __future__ import annotations

import random
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from agent.scheduler import Scheduler, TickFn, TickRecord

from .virtual_time import HANG, VirtualTime


@contextmanager
def running(
    tick: TickFn, time: VirtualTime | None = None, **options: Any
) -> Iterator[tuple[VirtualTime, Scheduler]]:
    time = time or VirtualTime()
    s = Scheduler(tick, clock=time.clock, condition=time.condition, **options)
    s.start()
    try:
        yield time, s
    finally:
        s.stop()


def test_trigger_runs_now_and_requeue_delay_is_honoured() -> None:
    runs: list[float] = []
    time = VirtualTime()

    def tick(key: str) -> float | None:
        runs.append(time.clock())
        return 0.25 if len(runs) < 3 else None

    with running(tick, time, concurrency=1) as (_, s):
        s.trigger("ns/a")
        time.settle(s.workers)
        assert runs == [0.0]
        time.advance(0.125)
        time.settle(s.workers)
        assert runs == [0.0], "not due yet"
        time.advance(0.125)
        time.settle(s.workers)
        assert runs == [0.0, 0.25]
        time.advance(0.25)
        time.settle(s.workers)
        assert runs == [0.0, 0.25, 0.5]
        time.advance(60)
        time.settle(s.workers)
        assert len(runs) == 3  # returning None forgot the key
        assert s.keys() == set()


def test_earlier_request_wins_over_a_later_one() -> None:
    ran: list[str] = []
    with running(lambda k: ran.append(k), concurrency=1) as (time, s):
        s.schedule("ns/a", 60)
        s.trigger("ns/a")
        time.settle(s.workers)
        assert ran == ["ns/a"], "ran at once, not after 60 s"


class _Gate:
    """Ticks of the keys in `blocked` wait until `release` is set (a tenant's hung webhook);
    every tick is recorded with the number of ticks of its namespace running at that moment."""

    def __init__(self, blocked: set[str]) -> None:
        self.blocked = blocked
        self.release = threading.Event()
        self.changed = threading.Condition()
        self.ran: list[str] = []
        self.active: dict[str, int] = {}
        self.peak: dict[str, int] = {}
        self.peak_total = 0  # ticks running at once, all namespaces

    def tick(self, key: str) -> float | None:
        ns = key.split("/")[0]
        with self.changed:
            self.active[ns] = self.active.get(ns, 0) + 1
            self.peak[ns] = max(self.peak.get(ns, 0), self.active[ns])
            self.peak_total = max(self.peak_total, sum(self.active.values()))
            self.changed.notify_all()
        if key in self.blocked:
            assert self.release.wait(HANG)
        with self.changed:
            self.active[ns] -= 1
            self.ran.append(key)
            self.changed.notify_all()
        return None

    def held(self, count: int) -> None:
        """Wait until `count` ticks run at once (held by the gate)."""
        with self.changed:
            assert self.changed.wait_for(lambda: sum(self.active.values()) == count, HANG)


def test_a_key_never_runs_twice_at_once_and_a_trigger_mid_tick_reruns_it() -> None:
    gate = _Gate({"ns/a"})
    with running(gate.tick, concurrency=4) as (time, s):
        s.trigger("ns/a")
        gate.held(1)
        for _ in range(5):
            s.trigger("ns/a")  # arrives while the first tick runs
        time.settle(s.workers, busy=1)
        assert gate.ran == [] and gate.peak == {"ns": 1}, "three idle workers left it alone"
        gate.blocked.clear()
        gate.release.set()
        time.settle(s.workers)
        assert gate.ran == ["ns/a", "ns/a"]  # the five triggers collapse into one re-run
        assert gate.peak == {"ns": 1}


def test_concurrency_is_bounded_across_keys() -> None:
    gate = _Gate({f"ns{i % 2}/c{i}" for i in range(12)})
    with running(gate.tick, concurrency=3, per_namespace=3) as (time, s):
        for i in range(12):
            s.trigger(f"ns{i % 2}/c{i}")
        gate.held(3)
        time.settle(s.workers, busy=3)
        assert s.workers() == 3 and gate.ran == []
        gate.release.set()
        time.settle(s.workers)
        assert len(gate.ran) == 12
        assert gate.peak_total == 3


def test_a_failing_tick_is_retried_and_reported() -> None:
    calls = 0
    records: list[TickRecord] = []

    def tick(key: str) -> float | None:
        nonlocal calls
        calls += 1
        if calls == 1:
            raise RuntimeError("boom")
        return None

    with running(tick, concurrency=1, error_delay=0.5, on_tick=records.append) as (time, s):
        s.trigger("ns/a")
        time.settle(s.workers)
        assert calls == 1
        time.advance(0.25)
        time.settle(s.workers)
        assert calls == 1, "retried after error_delay, not before"
        time.advance(0.25)
        time.settle(s.workers)
        assert calls == 2
        assert records == [TickRecord("ns/a", 0.0, 0.0), TickRecord("ns/a", 0.0, 0.0)]


def test_forget_drops_a_scheduled_key() -> None:
    ran: list[str] = []
    with running(lambda k: ran.append(k), concurrency=1) as (time, s):
        s.schedule("ns/a", 0.25)
        s.forget("ns/a")
        time.advance(1)
        time.settle(s.workers)
        assert ran == []


def test_a_namespace_with_hung_ticks_leaves_workers_for_the_others() -> None:
    hung = {f"tenant-a/c{i}" for i in range(4)}
    gate = _Gate(hung)
    with running(gate.tick, concurrency=4, per_namespace=2) as (time, s):
        for key in sorted(hung):
            s.trigger(key)
        gate.held(2)
        time.settle(s.workers, busy=2)
        s.trigger("tenant-b/app")
        time.settle(s.workers, busy=2)
        assert gate.ran == ["tenant-b/app"]
        assert gate.peak["tenant-a"] == 2  # the other two waited aside
        gate.release.set()
        time.settle(s.workers)
        assert len(gate.ran) == 5 and gate.peak["tenant-a"] == 2


def test_the_pool_grows_when_every_worker_waits_on_slow_tenants() -> None:
    hung = {"tenant-a/x", "tenant-c/y"}
    gate = _Gate(hung)
    options = {"concurrency": 2, "per_namespace": 1, "max_workers": 3, "spare_idle": 30.0}
    with running(gate.tick, **options) as (time, s):
        for key in sorted(hung):
            s.trigger(key)
        gate.held(2)
        time.settle(s.workers, busy=2)
        assert s.workers() == 3, "a spare joined when no worker was left idle"
        s.trigger("tenant-b/app")
        time.settle(s.workers, busy=2)
        assert gate.ran == ["tenant-b/app"]
        # At the limit the pool does not grow further: a fourth tenant waits its turn.
        gate.blocked.add("tenant-b/app")
        s.trigger("tenant-b/app")
        gate.held(3)
        s.trigger("tenant-d/app")
        time.settle(s.workers, busy=3)
        assert "tenant-d/app" not in gate.ran and s.workers() == 3
        gate.release.set()
        time.settle(s.workers)
        assert "tenant-d/app" in gate.ran
        # The spare leaves once idle for `spare_idle`; the base pool stays.
        time.advance(29)
        time.settle(s.workers)
        assert s.workers() == 3
        time.advance(1)
        time.join("-spare")
        assert s.workers() == 2


def test_a_parked_key_keeps_its_place_and_its_latest_due_time() -> None:
    gate = _Gate({"ns/slow"})
    with running(gate.tick, concurrency=2, per_namespace=1) as (time, s):
        s.trigger("ns/slow")
        gate.held(1)
        s.schedule("ns/later", 60)
        s.trigger("ns/later")  # the earlier request wins, even while parked
        s.trigger("ns/other")
        s.forget("ns/other")  # a forgotten parked key never runs
        time.settle(s.workers, busy=1)
        assert gate.ran == []
        gate.release.set()
        time.settle(s.workers)
        assert gate.ran == ["ns/slow", "ns/later"], "no time passed: the trigger won"
        assert gate.peak["ns"] == 1


def test_due_keys_run_in_due_order_across_namespaces_after_reschedules_and_forgets() -> None:
    """One worker runs due keys strictly by due time (then by request order), whatever the
    namespaces, superseded requests and forgotten keys: the reference is a plain sort."""
    rng = random.Random(7)
    ran: list[str] = []
    time = VirtualTime()
    s = Scheduler(ran.append, 1, time.clock, condition=time.condition, per_namespace=1)
    expected: dict[str, tuple[float, int]] = {}
    for seq in range(600):  # all requested before the worker starts: the order is the queue's
        key = f"ns-{rng.randrange(4)}/app-{rng.randrange(150)}"
        if rng.random() < 0.1:
            s.forget(key)
            expected.pop(key, None)
            continue
        at = float(rng.randrange(1000))
        s.schedule(key, at)
        if key not in expected or at < expected[key][0]:
            expected[key] = (at, seq)
    time.advance(1000)  # all due at once
    s.start()
    try:
        time.settle(s.workers)
    finally:
        s.stop()
    assert ran == sorted(expected, key=lambda k: expected[k])
