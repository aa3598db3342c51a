"""Handing committed changes to subscribers (the simulated controllers), in commit order.

Changes are queued under the store's lock as they commit, and delivered outside it, so a
callback may write to the store itself; its own changes are delivered after the current one.
"""

from __future__ import annotations

import logging
import threading
from collections import deque
from collections.abc import Callable
from typing import Any

from .stored import copy_json

log = logging.getLogger("kubectl_canary.sandbox.store")

Obj = dict[str, Any]
Callback = Callable[[str, Obj], None]


class Fanout:
    def __init__(self, store_lock: threading.RLock) -> None:
        # The queue is filled under the store's lock, so its order is the commit order.
        self._store_lock = store_lock
        self._subscribers: list[Callback] = []
        self._pending: deque[tuple[str, Obj]] = deque()
        self._dispatch_lock = threading.Lock()
        self._local = threading.local()

    def subscribe(self, callback: Callback) -> Callable[[], None]:
        with self._store_lock:
            self._subscribers.append(callback)

        def unsubscribe() -> None:
            with self._store_lock:
                if callback in self._subscribers:
                    self._subscribers.remove(callback)

        return unsubscribe

    def publish(self, event_type: str, obj: Obj) -> None:
        """Queue a committed change (store lock held); nothing when nobody listens."""
        if self._subscribers:
            self._pending.append((event_type, obj))

    def dispatch(self) -> None:
        """Deliver pending events in commit order, outside the store lock.

        Only one thread delivers at a time; a write made from inside a callback (same thread)
        just queues its event, which the running loop delivers next. A thread that finds the
        delivery lock taken leaves its event to the thread holding it, which re-checks the
        queue after releasing the lock, so no event is stranded.
        """
        if getattr(self._local, "dispatching", False):
            return
        while True:
            if not self._dispatch_lock.acquire(blocking=False):
                return
            self._local.dispatching = True
            try:
                while True:
                    with self._store_lock:
                        if not self._pending:
                            break
                        event_type, obj = self._pending.popleft()
                        subscribers = list(self._subscribers)
                    for cb in subscribers:
                        try:
                            cb(event_type, copy_json(obj))
                        except Exception:
                            log.exception("store subscriber failed on %s event", event_type)
            finally:
                self._local.dispatching = False
                self._dispatch_lock.release()
            with self._store_lock:
                if not self._pending:
                    return
