"""`doctor`'s metrics-server probe against a local HTTP server: a failed answer must say why."""

from __future__ import annotations

import json
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from threading import Thread
from typing import Any

import pytest

from kubectl_canary.cli.doctor_checks.metrics import probe_prometheus

ANSWERS: dict[str, tuple[int, bytes]] = {
    "/ok": (200, json.dumps({"status": "success", "data": {"resultType": "vector"}}).encode()),
    # The sandbox's own query endpoint: HTTP 200 with an error body.
    "/sandbox": (
        200,
        json.dumps(
            {"status": "error", "errorType": "bad_data", "error": "only built-in queries"}
        ).encode(),
    ),
    # A real Prometheus rejects a query with 400 and a JSON body.
    "/prometheus": (
        400,
        json.dumps({"status": "error", "errorType": "bad_data", "error": "parse error"}).encode(),
    ),
    "/proxy": (502, b"<html>bad gateway</html>"),
}


@pytest.fixture
def server() -> Iterator[str]:
    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:  # noqa: N802 (http.server's naming)
            prefix = "/" + self.path.split("/")[1]
            code, body = ANSWERS[prefix]
            self.send_response(code)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *_: Any) -> None:
            pass

    httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{httpd.server_address[1]}"
    finally:
        httpd.shutdown()
        httpd.server_close()
        thread.join(timeout=10)


def test_success(server: str) -> None:
    assert probe_prometheus(None, f"{server}/ok") == (True, "answered")  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("path", "detail"),
    [
        ("/sandbox", "answered with an error: only built-in queries"),
        ("/prometheus", "answered with an error: parse error"),
        ("/proxy", "answered HTTP 502 Bad Gateway"),
    ],
)
def test_a_failed_answer_says_why(server: str, path: str, detail: str) -> None:
    # A direct URL never touches the cluster client.
    assert probe_prometheus(None, server + path) == (False, detail)  # type: ignore[arg-type]
