"""`status -w`: a tiny controller that redraws a view only when its text changes.

A thread lists the Canaries, then watches from the list's resourceVersion (relisting on 410
Gone, reconnecting when the server ends the stream) and hands snapshots to the drawing loop,
which renders at most every 200 ms and prints only text that changed.
"""

from __future__ import annotations

import queue
import sys
import threading
from collections.abc import Callable
from typing import Any

from kubectl_canary.cli.api_names import CANARY_API_VERSION as API_VERSION
from kubectl_canary.cli.options import Session
from kubectl_canary.kube import Kube
from kubectl_canary.resources import GoneError

Obj = dict[str, Any]

MIN_REDRAW_SECONDS = 0.2  # at most five frames a second, like argo's watch view
REFRESH_SECONDS = 1.0  # the detail view also shows Deployments, which the Canary watch misses
WATCH_TIMEOUT_SECONDS = 300  # the server ends each watch after this; the loop reconnects


def _watch_thread(
    kube: Kube, namespace: str | None, events: queue.Queue[Any], stop: threading.Event
) -> None:
    """List, then watch from the list's resourceVersion; relist on 410; reconnect on close."""
    while not stop.is_set():
        try:
            listed, rv = kube.list(API_VERSION, "Canary", namespace)
            items = {_key(o): o for o in listed}
            events.put(("SNAPSHOT", dict(items)))
            while not stop.is_set():
                for etype, obj in kube.watch(
                    API_VERSION, "Canary", namespace, rv, WATCH_TIMEOUT_SECONDS
                ):
                    if etype == "BOOKMARK":
                        rv = obj.get("metadata", {}).get("resourceVersion", rv)
                        continue
                    rv = obj.get("metadata", {}).get("resourceVersion", rv)
                    if etype == "DELETED":
                        items.pop(_key(obj), None)
                    else:
                        items[_key(obj)] = obj
                    events.put(("SNAPSHOT", dict(items)))
                    if stop.is_set():
                        return
        except GoneError:
            continue
        except BaseException as e:  # surfaced in the main thread, which owns the exit
            events.put(("ERROR", e))
            return


def _key(obj: Obj) -> tuple[str, str]:
    meta = obj.get("metadata", {})
    return meta.get("namespace", ""), meta.get("name", "")


class Redraw:
    """When a watch view prints: only text that changed, at most once per `min_interval`."""

    def __init__(self, write: Callable[[str], None], min_interval: float) -> None:
        self.write = write
        self.min_interval = min_interval
        self.shown: str | None = None
        self.pending: str | None = None
        self.last = float("-inf")

    def offer(self, text: str, now: float) -> float | None:
        """Draw now if allowed; else keep it pending and return how long until it may be."""
        if text == self.shown:
            self.pending = None
            return None
        if now - self.last >= self.min_interval:
            self._draw(text, now)
            return None
        self.pending = text
        return self.last + self.min_interval - now

    def flush(self, now: float) -> None:
        if self.pending is not None:
            self._draw(self.pending, now)

    def _draw(self, text: str, now: float) -> None:
        self.write(text)
        self.shown, self.pending, self.last = text, None, now


def follow(
    session: Session,
    render: Callable[[dict[tuple[str, str], Obj]], str],
    namespace: str | None,
    write: Callable[[str], None],
) -> None:
    """Redraw `render(objects)` whenever its text changes, at most every 200 ms, until Ctrl-C.

    A thread lists and watches the Canaries; this loop owns rendering. It also re-renders every
    second without an event, since the detail view shows Deployments the watch does not cover.
    """
    clock = session.runtime.monotonic
    events: queue.Queue[Any] = queue.Queue()
    stop = threading.Event()
    thread = threading.Thread(
        target=_watch_thread, args=(session.kube, namespace, events, stop), daemon=True
    )
    thread.start()
    redraw = Redraw(write, MIN_REDRAW_SECONDS)
    objects: dict[tuple[str, str], Obj] | None = None
    deadline: float | None = None
    try:
        while True:
            timeout = REFRESH_SECONDS if deadline is None else max(0.0, deadline - clock())
            try:
                kind, payload = events.get(timeout=timeout)
            except queue.Empty:
                kind, payload = "TICK", None
            if kind == "ERROR":
                redraw.flush(clock())
                if isinstance(payload, KeyboardInterrupt):
                    return
                raise payload
            if kind == "SNAPSHOT":
                objects = payload
            if objects is None:
                continue
            wait = redraw.offer(render(objects), clock())
            deadline = None if wait is None else clock() + wait
    except KeyboardInterrupt:
        return
    finally:
        stop.set()


def fit(text: str, columns: int, lines: int) -> str:
    """`text` as a terminal of this size shows it without scrolling: each line cut to the
    width, and the lines past the height (one is kept for the cursor) said, not drawn."""
    from kubectl_canary.cli.colour import cut

    rows = [cut(line, columns) for line in text.splitlines()]
    room = max(1, lines - 1)
    if len(rows) > room:
        hidden = len(rows) - room + 1
        note = f"… {hidden} more lines (a taller terminal shows them)"
        rows = [*rows[: room - 1], cut(note, columns)]
    return "\n".join(rows)


def terminal_writer(session: Session) -> Callable[[str], None]:
    out = sys.stdout  # click.get_text_stream is deprecated (click 8.5)
    tty = session.runtime.is_terminal()

    def write(text: str) -> None:
        if tty:
            out.write("\x1b[H\x1b[2J" + text + "\n")
        else:
            out.write(text + "\n\n")
        out.flush()

    return write
