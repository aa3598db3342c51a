"""The scheduler: due times, prompt triggers, one tick at a time per key, bounded concurrency."""

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

    s = Scheduler(tick, concurrency=3)
    s.start()
    try:
        for i in range(12):
            s.trigger(f"ns/c{i}")
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
