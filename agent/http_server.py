"""/metrics, /healthz and /readyz on one small threaded HTTP server.

/healthz: the process is alive and its loops are running (liveness).
/readyz: the caches are synced and the agent is either leading or a ready follower, so a
rolling update waits until the new replica could take over (readiness).
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

from agent.telemetry import CONTENT_TYPE as METRICS_CONTENT_TYPE

log = logging.getLogger("agent.http")


class _Handler(BaseHTTPRequestHandler):
    server: AgentHTTPServer

    def do_GET(self) -> None:  # noqa: N802 - http.server's naming
        path = self.path.split("?", 1)[0]
        if path == "/metrics":
            self._reply(200, self.server.metrics(), METRICS_CONTENT_TYPE)
        elif path == "/healthz":
            ok, why = self.server.healthy()
            self._reply(200 if ok else 503, why + "\n", "text/plain")
        elif path == "/readyz":
            ok, why = self.server.ready()
            self._reply(200 if ok else 503, why + "\n", "text/plain")
        else:
            self._reply(404, "not found\n", "text/plain")

    def _reply(self, code: int, body: str, content_type: str) -> None:
        data = body.encode()
        self.send_response(code)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def log_message(self, format: str, *args: object) -> None:  # noqa: A002
        log.debug("http %s", format % args)


Check = Callable[[], tuple[bool, str]]


class AgentHTTPServer(ThreadingHTTPServer):
    daemon_threads = True

    def __init__(
        self, address: tuple[str, int], metrics: Callable[[], str], healthy: Check, ready: Check
    ) -> None:
        super().__init__(address, _Handler)
        self.metrics = metrics
        self.healthy = healthy
        self.ready = ready
        self._thread: threading.Thread | None = None

    @property
    def port(self) -> int:
        return int(self.server_address[1])

    def start(self) -> None:
        self._thread = threading.Thread(target=self.serve_forever, name="http", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        self.shutdown()
        self.server_close()


def parse_listen(text: str) -> tuple[str, int]:
    """'0.0.0.0:8080' / '127.0.0.1:0' / ':8080' -> (host, port)."""
    host, sep, port = text.rpartition(":")
    if not sep or not port.isdigit():
        raise ValueError(f"--listen must be HOST:PORT, got {text!r}")
    return (host.strip("[]") or "0.0.0.0", int(port))
