"""Virtual time for threaded code: a clock that moves only when told, and a condition whose
timed waits end when it moves.

Code under test reads `clock()` and waits on `condition` as it would on a real
`threading.Condition` with a timeout. A waiter wakes on `notify` or on `advance` (the code reads
the clock again and decides whether its time has come), never because wall time passed. The
test learns when the threads are done with the present moment from `settle`: every thread that
is not busy in a tick sleeps in `condition.wait` and none has been notified without having
woken.
"""

from __future__ import annotations

import threading
from collections.abc import Callable

# Wall-clock seconds `settle` allows before it calls the code under test hung.
HANG = 10.0


class VirtualCondition(threading.Condition):
    def __init__(self, time: VirtualTime) -> None:
        super().__init__(time.lock)
        self._time = time

    def wait(self, timeout: float | None = None) -> bool:
        # The timeout is virtual: `advance` wakes every waiter, which then reads the clock.
        self._time.sleeping(threading.current_thread())
        super().wait()
        return True

    def notify(self, n: int = 1) -> None:  # notify_all calls this with the waiter count
        self._time.woken(n)
        super().notify(n)


class VirtualTime:
    def __init__(self) -> None:
        self.lock = threading.RLock()
        self.condition = VirtualCondition(self)
        self._changed = threading.Condition(self.lock)
        self._now = 0.0
        self._asleep = 0  # threads in condition.wait that no notify has woken yet
        self.threads: set[threading.Thread] = set()  # every thread that ever waited

    def clock(self) -> float:
        return self._now

    def advance(self, seconds: float) -> None:
        with self.lock:
            self._now += seconds
            self.condition.notify_all()

    def sleeping(self, thread: threading.Thread) -> None:
        self._asleep += 1
        self.threads.add(thread)
        self._changed.notify_all()

    def woken(self, n: int) -> None:
        self._asleep -= min(n, self._asleep)

    def settle(self, workers: Callable[[], int], busy: int = 0) -> None:
        """Return once all `workers()` but `busy` (ticks the test holds) sleep undisturbed."""
        with self.lock:
            settled = self._changed.wait_for(lambda: self._asleep == workers() - busy, HANG)
        assert settled, f"{workers()} workers, {busy} busy, {self._asleep} asleep: hung?"

    def join(self, suffix: str) -> None:
        """Wait for the threads named `...suffix` to end (workers leaving the pool)."""
        for thread in [t for t in self.threads if t.name.endswith(suffix)]:
            thread.join(HANG)
            assert not thread.is_alive(), f"{thread.name} did not leave"
