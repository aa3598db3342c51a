"""The scheduler: due times, prompt triggers, one tick at a time per key, bounded concurrency,
fairness between namespaces."""

from __future__ import annotations

import threading
import time

from agent.scheduler import Scheduler, TickRecord


def wait_until(cond, timeout: float = 5.0) -> None:
    deadline = time.monotonic() + timeout
    while not cond():
        assert time.monotonic() < deadline, "condition not met in time"
        time.sleep(0.005)


def test_trigger_runs_now_and_requeue_delay_is_honoured() -> None:
    runs: list[tuple[str, float]] = []

    def tick(key: str) -> float | None:
        runs.append((key, time.monotonic()))
        return 0.2 if len(runs) < 3 else None

    s = Scheduler(tick, concurrency=1)
    s.start()
    try:
        s.trigger("ns/a")
        wait_until(lambda: len(runs) == 3)
        gaps = [b[1] - a[1] for a, b in zip(runs, runs[1:], strict=False)]
        assert all(g >= 0.19 for g in gaps), gaps
        time.sleep(0.3)
        assert len(runs) == 3  # returning None forgot the key
        assert s.keys() == set()
    finally:
        s.stop()


def test_earlier_request_wins_over_a_later_one() -> None:
    ran = threading.Event()
    s = Scheduler(lambda k: (ran.set(), None)[1], concurrency=1)
    s.start()
    try:
        s.schedule("ns/a", 60)
        s.trigger("ns/a")
        assert ran.wait(2)
    finally:
        s.stop()


def test_a_key_never_runs_twice_at_once_and_a_trigger_mid_tick_reruns_it() -> None:
    active = 0
    max_active = 0
    runs = 0
    lock = threading.Lock()
    release = threading.Event()

    def tick(key: str) -> float | None:
        nonlocal active, max_active, runs
        with lock:
            active += 1
            runs += 1
            max_active = max(max_active, active)
        if runs == 1:
            release.wait(2)
        with lock:
            active -= 1
        return None

    s = Scheduler(tick, concurrency=4)
    s.start()
    try:
        s.trigger("ns/a")
        wait_until(lambda: runs == 1)
        for _ in range(5):
            s.trigger("ns/a")  # arrives while the first tick runs
        release.set()
        wait_until(lambda: runs == 2)
        time.sleep(0.1)
        assert runs == 2  # the five triggers collapse into one re-run
        assert max_active == 1
    finally:
        s.stop()


def test_concurrency_is_bounded_across_keys() -> None:
    active = 0
    peak = 0
    done = 0
    lock = threading.Lock()

    def tick(key: str) -> float | None:
        nonlocal active, peak, done
        with lock:
            active += 1
            peak = max(peak, active)
        time.sleep(0.05)
        with lock:
            active -= 1
            done += 1
        return None

    s = Scheduler(tick, concurrency=3, per_namespace=3)
    s.start()
    try:
        for i in range(12):
            s.trigger(f"ns{i % 2}/c{i}")
        wait_until(lambda: done == 12)
        assert peak == 3
    finally:
        s.stop()


def test_a_failing_tick_is_retried_and_reported() -> None:
    calls = 0
    records: list[TickRecord] = []

    def tick(key: str) -> float | None:
        nonlocal calls
        calls += 1
        if calls == 1:
            raise RuntimeError("boom")
        return None

    s = Scheduler(tick, concurrency=1, error_delay=0.05, on_tick=records.append)
    s.start()
    try:
        s.trigger("ns/a")
        wait_until(lambda: calls == 2)
        wait_until(lambda: len(records) == 2)
        assert all(r.key == "ns/a" and r.lag >= 0 and r.duration >= 0 for r in records)
    finally:
        s.stop()


def test_forget_drops_a_scheduled_key() -> None:
    ran = threading.Event()
    s = Scheduler(lambda k: (ran.set(), None)[1], concurrency=1)
    s.start()
    try:
        s.schedule("ns/a", 0.1)
        s.forget("ns/a")
        assert not ran.wait(0.3)
    finally:
        s.stop()


class _Gate:
    """Ticks of the keys in `blocked` wait until `release` is set (a tenant's hung webhook);
    every tick is recorded with the number of ticks of its namespace running at that moment."""

    def __init__(self, blocked: set[str]) -> None:
        self.blocked = blocked
        self.release = threading.Event()
        self.lock = threading.Lock()
        self.ran: list[str] = []
        self.active: dict[str, int] = {}
        self.peak: dict[str, int] = {}

    def tick(self, key: str) -> float | None:
        ns = key.split("/")[0]
        with self.lock:
            self.active[ns] = self.active.get(ns, 0) + 1
            self.peak[ns] = max(self.peak.get(ns, 0), self.active[ns])
        if key in self.blocked:
            self.release.wait(10)
        with self.lock:
            self.active[ns] -= 1
            self.ran.append(key)
        return None


def test_a_namespace_with_hung_ticks_leaves_workers_for_the_others() -> None:
    hung = {f"tenant-a/c{i}" for i in range(4)}
    gate = _Gate(hung)
    s = Scheduler(gate.tick, concurrency=4, per_namespace=2)
    s.start()
    try:
        for key in sorted(hung):
            s.trigger(key)
        wait_until(lambda: gate.active.get("tenant-a") == 2)
        s.trigger("tenant-b/app")
        wait_until(lambda: "tenant-b/app" in gate.ran)
        assert gate.peak["tenant-a"] == 2  # the other two waited aside
        gate.release.set()
        wait_until(lambda: len(gate.ran) == 5)
    finally:
        gate.release.set()
        s.stop()


def test_the_pool_grows_when_every_worker_waits_on_slow_tenants() -> None:
    hung = {"tenant-a/x", "tenant-c/y"}
    gate = _Gate(hung)
    s = Scheduler(gate.tick, concurrency=2, per_namespace=1, max_workers=3, spare_idle=0.2)
    s.start()
    try:
        for key in sorted(hung):
            s.trigger(key)
        wait_until(lambda: sum(gate.active.values()) == 2)
        s.trigger("tenant-b/app")
        wait_until(lambda: "tenant-b/app" in gate.ran)
        assert s.workers() == 3
        # At the limit the pool does not grow further: a fourth tenant waits its turn.
        gate.blocked.add("tenant-b/app")
        s.trigger("tenant-b/app")
        wait_until(lambda: sum(gate.active.values()) == 3)
        s.trigger("tenant-d/app")
        time.sleep(0.2)
        assert "tenant-d/app" not in gate.ran and s.workers() == 3
        gate.release.set()
        wait_until(lambda: "tenant-d/app" in gate.ran)
        # The spare worker leaves once idle; the base pool stays.
        wait_until(lambda: s.workers() == 2)
    finally:
        gate.release.set()
        s.stop()


def test_a_parked_key_keeps_its_place_and_its_latest_due_time() -> None:
    gate = _Gate({"ns/slow"})
    s = Scheduler(gate.tick, concurrency=2, per_namespace=1)
    s.start()
    try:
        s.trigger("ns/slow")
        wait_until(lambda: gate.active.get("ns") == 1)
        s.schedule("ns/later", 60)
        s.trigger("ns/later")  # the earlier request wins, even while parked
        s.trigger("ns/other")
        s.forget("ns/other")  # a forgotten parked key never runs
        gate.release.set()
        wait_until(lambda: "ns/later" in gate.ran)
        time.sleep(0.1)
        assert "ns/other" not in gate.ran
        assert gate.peak["ns"] == 1
    finally:
        gate.release.set()
        s.stop()
