"""An HTTP relay between one client process (the agent, the plugin) and the sandbox that can
SIGKILL that process at one chosen mutating request: before the request reaches the API
server, or after the server applied it but before the answer reaches the client.

The relay is the test's hook on the API server's request handling: neither the agent nor the
sandbox knows about it (the client's kubeconfig names the relay instead of the sandbox).
Every mutating request (POST, PUT, PATCH, DELETE) is recorded in arrival order, so a clean run
discovers the boundaries between the client's actions and a crash run targets one of them by
its signature (method and path, the run's namespace written `{ns}`) and how many requests of
that signature came before it. Events, Leases and access reviews are recorded apart: they are
not actions of the release (Leases are timed renewals, reviews change nothing).

HTTP/1.1 framing: a request is read whole (head, then a Content-Length or chunked body) before
it is forwarded; the answer is relayed as raw bytes. A client sends its next request on a
connection only after reading the previous answer, so bytes arriving after the targeted
request was forwarded belong to its answer.
"""

from __future__ import annotations

import contextlib
import socket
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from kubectl_canary.sandbox.kubeconfig import write_kubeconfig

MUTATING = ("POST", "PUT", "PATCH", "DELETE")
# Paths of mutating requests that are not actions (see the module docstring).
NOT_ACTIONS = ("/events", "/leases", "subjectaccessreviews", "tokenreviews")
BEFORE, AFTER = "before", "after"


@dataclass(frozen=True)
class Request:
    method: str
    signature: str  # "PUT /apis/.../namespaces/{ns}/canaries/web/status"
    ordinal: int  # how many requests of this signature came before it (from 0)
    action: bool  # False for Events, Leases, reviews

    @property
    def key(self) -> tuple[str, int]:
        return self.signature, self.ordinal


@dataclass
class CrashPoint:
    """Kill the client at the request `key` (signature, ordinal), `variant` BEFORE or AFTER."""

    key: tuple[str, int]
    variant: str


class _Closed(Exception):
    """The client or the server closed the connection, or the relay stopped it."""


@dataclass
class CrashProxy:
    upstream_port: int
    namespace: str
    kill: Callable[[], None] = lambda: None  # SIGKILLs the client and waits for it
    crash_at: CrashPoint | None = None
    armed: bool = True  # count (and crash) only while armed; a run arms at its scenario's start
    requests: list[Request] = field(default_factory=list)
    crashed: threading.Event = field(default_factory=threading.Event)
    _lock: threading.Lock = field(default_factory=threading.Lock)
    _seen: dict[str, int] = field(default_factory=dict)
    _sockets: set[socket.socket] = field(default_factory=set)

    def __post_init__(self) -> None:
        self._listener = socket.create_server(("127.0.0.1", 0))
        self.port = int(self._listener.getsockname()[1])
        threading.Thread(target=self._accept, daemon=True).start()

    def kubeconfig(self, path: Path) -> Path:
        return write_kubeconfig(path, f"http://127.0.0.1:{self.port}")

    @property
    def actions(self) -> list[Request]:
        with self._lock:
            return [r for r in self.requests if r.action]

    def close(self) -> None:
        self._listener.close()
        with self._lock:
            sockets = list(self._sockets)
        for sock in sockets:
            _shut(sock)

    # ---- relaying ---------------------------------------------------------------------------

    def _accept(self) -> None:
        while True:
            try:
                client, _ = self._listener.accept()
            except OSError:
                return
            threading.Thread(target=self._serve, args=(client,), daemon=True).start()

    def _serve(self, client: socket.socket) -> None:
        upstream = socket.create_connection(("127.0.0.1", self.upstream_port))
        for sock in (client, upstream):
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        with self._lock:
            self._sockets.update((client, upstream))
        hold = threading.Event()  # set: the next answer on this connection must not arrive
        threading.Thread(target=self._answers, args=(upstream, client, hold), daemon=True).start()
        reader = _Reader(client)
        try:
            while not self.crashed.is_set():
                head, body = reader.request()
                request = self._record(head)
                point = self.crash_at
                if request is not None and point is not None and point.key == request.key:
                    if point.variant == BEFORE:
                        self._crash()
                        return
                    hold.set()
                if self.crashed.is_set():
                    return  # another thread crashed the client: nothing more reaches the server
                upstream.sendall(head + body)
        except (_Closed, OSError):
            pass
        finally:
            _shut(client)
            _shut(upstream)

    def _answers(
        self, upstream: socket.socket, client: socket.socket, hold: threading.Event
    ) -> None:
        try:
            while True:
                data = upstream.recv(65536)
                if not data:
                    break
                if hold.is_set():
                    # The server has applied the request (it answers only afterwards).
                    self._crash()
                if self.crashed.is_set():
                    break
                client.sendall(data)
        except OSError:
            pass
        finally:
            _shut(client)
            _shut(upstream)

    def _record(self, head: bytes) -> Request | None:
        method, target = head.split(b"\r\n", 1)[0].decode("latin-1").split(" ")[:2]
        if method not in MUTATING:
            return None
        path = target.split("?", 1)[0].replace(
            f"/namespaces/{self.namespace}/", "/namespaces/{ns}/"
        )
        action = not any(part in path for part in NOT_ACTIONS)
        signature = f"{method} {path}"
        with self._lock:
            if not self.armed:
                return None
            ordinal = self._seen.get(signature, 0)
            self._seen[signature] = ordinal + 1
            request = Request(method, signature, ordinal, action)
            self.requests.append(request)
        return request

    def _crash(self) -> None:
        with self._lock:
            if self.crashed.is_set():
                return
            self.crashed.set()
        self.kill()


class _Reader:
    """Reads whole HTTP/1.1 requests from a socket."""

    def __init__(self, sock: socket.socket) -> None:
        self._sock = sock
        self._buf = b""

    def _fill(self) -> None:
        data = self._sock.recv(65536)
        if not data:
            raise _Closed
        self._buf += data

    def _take(self, n: int) -> bytes:
        while len(self._buf) < n:
            self._fill()
        out, self._buf = self._buf[:n], self._buf[n:]
        return out

    def _line(self) -> bytes:
        while b"\r\n" not in self._buf:
            self._fill()
        end = self._buf.index(b"\r\n") + 2
        return self._take(end)

    def request(self) -> tuple[bytes, bytes]:
        while b"\r\n\r\n" not in self._buf:
            self._fill()
        end = self._buf.index(b"\r\n\r\n") + 4
        head = self._take(end)
        headers = {}
        for line in head.decode("latin-1").split("\r\n")[1:]:
            if ":" in line:
                name, value = line.split(":", 1)
                headers[name.strip().lower()] = value.strip()
        if "chunked" in headers.get("transfer-encoding", "").lower():
            body = b""
            while True:
                size_line = self._line()
                size = int(size_line.split(b";")[0], 16)
                body += size_line + self._take(size + 2)
                if size == 0:
                    return head, body
        return head, self._take(int(headers.get("content-length", "0")))


def _shut(sock: socket.socket) -> None:
    with contextlib.suppress(OSError):
        sock.shutdown(socket.SHUT_RDWR)
    sock.close()
