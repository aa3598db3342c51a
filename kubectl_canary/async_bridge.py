"""One asyncio loop for every thread of the process, in a daemon thread.

kr8s is async; its sync facade keeps one event loop per thread, but the plugin's watch views
call from several threads. So every call is submitted to this one loop, and all threads share
its connection pool.
"""

from __future__ import annotations

import contextlib
import threading
from collections.abc import AsyncIterator, Awaitable, Iterator
from typing import TypeVar

T = TypeVar("T")


class Loop:
    def __init__(self) -> None:
        import asyncio

        self.loop = asyncio.new_event_loop()
        thread = threading.Thread(target=self.loop.run_forever, name="kr8s-loop", daemon=True)
        thread.start()

    def run(self, coro: Awaitable[T], timeout: float | None = None) -> T:
        import asyncio

        async def wrapped() -> T:
            return await coro

        future = asyncio.run_coroutine_threadsafe(wrapped(), self.loop)
        try:
            return future.result(timeout)
        except BaseException:
            future.cancel()
            raise

    def iterate(self, agen: AsyncIterator[T]) -> Iterator[T]:
        """A sync iterator over an async one running on the loop."""
        try:
            while True:
                try:
                    item = self.run(agen.__anext__())
                except StopAsyncIteration:
                    return
                yield item
        finally:
            aclose = getattr(agen, "aclose", None)
            if aclose is not None:
                # After Ctrl-C the generator may still be running its cancelled step: give up
                # quietly, the process is about to end.
                with contextlib.suppress(Exception):
                    self.run(aclose(), timeout=5)


_loop: Loop | None = None
_loop_lock = threading.Lock()


def the_loop() -> Loop:
    global _loop
    with _loop_lock:
        if _loop is None:
            _loop = Loop()
        return _loop
