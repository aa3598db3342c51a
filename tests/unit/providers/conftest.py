"""A local HTTP stub server: tests script its answers and read what it received."""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest


@dataclass
class Received:
    method: str
    path: str
    headers: dict[str, str]
    body: bytes


@dataclass
class Answer:
    status: int = 200
    body: bytes = b""
    content_type: str = "application/json"
    # True: never answer (until teardown), to provoke client timeouts.
    hold: bool = False
    # Send the body a byte at a time, this many seconds apart (a server that drips).
    drip_seconds: float = 0.0
    # Stream this many bytes of body instead of `body`; Content-Length only if `announce`.
    stream_bytes: int = 0
    announce: bool = True


@dataclass
class HttpStub:
    url: str
    respond: Callable[[Received], Answer] = lambda _: Answer()
    received: list[Received] = field(default_factory=list)
    released: threading.Event = field(default_factory=threading.Event)


@pytest.fixture
def http_stub() -> Iterator[HttpStub]:
    stub = HttpStub(url="")

    class Handler(BaseHTTPRequestHandler):
        def _serve(self) -> None:
            length = int(self.headers.get("Content-Length") or 0)
            request = Received(
                self.command, self.path, dict(self.headers.items()), self.rfile.read(length)
            )
            stub.received.append(request)
            answer = stub.respond(request)
            if answer.hold:
                stub.released.wait(timeout=30)  # bounded; teardown sets it at once
                return
            self.send_response(answer.status)
            self.send_header("Content-Type", answer.content_type)
            size = answer.stream_bytes or len(answer.body)
            if answer.announce:
                self.send_header("Content-Length", str(size))
            self.end_headers()
            try:
                self._body(answer)
            except OSError:
                return  # the client stopped reading: what a bounded client does

        def _body(self, answer: Answer) -> None:
            if answer.drip_seconds:
                for byte in answer.body:
                    if stub.released.wait(answer.drip_seconds):
                        return
                    self.wfile.write(bytes([byte]))
                    self.wfile.flush()
            elif answer.stream_bytes:
                chunk = b"x" * (1 << 16)
                for _ in range(answer.stream_bytes // len(chunk)):
                    self.wfile.write(chunk)
            else:
                self.wfile.write(answer.body)

        do_GET = _serve
        do_POST = _serve

        def log_message(self, format: str, *args: object) -> None:
            pass  # keep test output clean

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    server.daemon_threads = True
    thread = threading.Thread(target=server.serve_forever, args=(0.05,), daemon=True)
    thread.start()
    stub.url = f"http://127.0.0.1:{server.server_address[1]}"
    try:
        yield stub
    finally:
        stub.released.set()
        server.shutdown()
        server.server_close()
        thread.join(timeout=5)
