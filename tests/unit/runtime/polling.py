"""Waiting for a background thread's effect in tests whose code under test runs on real time
(informers, leader election); the scheduler's tests use virtual time instead."""

from __future__ import annotations

import time
from collections.abc import Callable


def wait_until(cond: Callable[[], object], timeout: float = 5.0) -> None:
    deadline = time.monotonic() + timeout
    while not cond():
        assert time.monotonic() < deadline, "condition not met in time"
        time.sleep(0.005)
