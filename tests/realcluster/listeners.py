"""Local HTTP listeners that play a tenant's (or an attacker's) endpoints in the abuse suite:
each records every connection and request it gets, and answers in one of a few ways.

- `answer`: a fixed status and body (a Prometheus vector, a marker body to spot reflection);
- `hang`: reads the request and never answers (a hung webhook) until the listener stops;
- `huge`: streams `size` bytes of body as fast as the client reads them.
"""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer


@dataclass
class Seen:
    method: str
    path: str
    headers: dict[str, str]
    body: bytes


@dataclass
class Listener:
    mode: str = "answer"
    status: int = 200
    body: bytes = b""
    size: int = 0
    connections: int = 0
    requests: list[Seen] = field(default_factory=list)
    stopping: threading.Event = field(default_factory=threading.Event)
    port: int = 0

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def everything_received(self) -> str:
        """All the bytes of every request, for "did this secret arrive here?" checks."""
        parts = []
        for seen in self.requests:
            parts.append(f"{seen.method} {seen.path}")
            parts += [f"{k}: {v}" for k, v in seen.headers.items()]
            parts.append(seen.body.decode(errors="replace"))
        return "\n".join(parts)


def prometheus_vector(value: float) -> bytes:
    """A Prometheus instant-query answer with one sample."""
    sample = {"metric": {}, "value": [0, str(value)]}
    document = {"status": "success", "data": {"resultType": "vector", "result": [sample]}}
    return json.dumps(document).encode()


def _handler(state: Listener) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def setup(self) -> None:
            super().setup()
            state.connections += 1

        def log_message(self, format: str, *args: object) -> None:
            return

        def _serve(self) -> None:
            length = int(self.headers.get("Content-Length") or 0)
            body = self.rfile.read(length) if length else b""
            headers = {k: v for k, v in self.headers.items()}
            state.requests.append(Seen(self.command, self.path, headers, body))
            if state.mode == "hang":
                state.stopping.wait()
                return
            if state.mode == "huge":
                self.send_response(state.status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(state.size))
                self.end_headers()
                chunk = b"x" * (1 << 16)
                sent = 0
                try:
                    while sent < state.size and not state.stopping.is_set():
                        part = chunk[: state.size - sent]
                        self.wfile.write(part)
                        sent += len(part)
                except OSError:
                    return  # the client hung up: what a bounded reader does
                return
            self.send_response(state.status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(state.body)))
            self.end_headers()
            self.wfile.write(state.body)

        do_GET = _serve
        do_POST = _serve

    return Handler


@contextmanager
def listening(mode: str = "answer", **kw: object) -> Iterator[Listener]:
    state = Listener(mode=mode, **kw)  # type: ignore[arg-type]
    server = ThreadingHTTPServer(("127.0.0.1", 0), _handler(state))
    server.daemon_threads = True
    state.port = server.server_address[1]
    thread = threading.Thread(target=server.serve_forever, name=f"listener-{mode}", daemon=True)
    thread.start()
    try:
        yield state
    finally:
        state.stopping.set()
        server.shutdown()
        server.server_close()
