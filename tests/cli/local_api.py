"""A tiny local API server for the plugin client's tests: records every request and answers
through a handler the test sets; optionally HTTPS with certificates made by `openssl`, and a
CONNECT proxy in front of it."""

from __future__ import annotations

import json
import select
import shutil
import socket
import ssl
import subprocess
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

Reply = tuple[int, Any]  # status, JSON body (None: empty; bytes: sent as they are)


@dataclass
class Seen:
    method: str
    path: str
    headers: Any  # email.message.Message: get_all() sees repeated headers
    body: bytes
    peer_cn: str = ""


@dataclass
class LocalApi:
    url: str
    calls: list[Seen] = field(default_factory=list)
    answer: Callable[[Seen], Reply] = lambda seen: (200, {"kind": "Status", "status": "ok"})

    def last(self) -> Seen:
        return self.calls[-1]


class _Handler(BaseHTTPRequestHandler):
    api: LocalApi

    def log_message(self, *args: object) -> None:  # keep test output clean
        pass

    def _handle(self) -> None:
        length = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(length) if length else b""
        peer = ""
        if isinstance(self.connection, ssl.SSLSocket):
            cert = self.connection.getpeercert() or {}
            peer = dict(x[0] for x in cert.get("subject", ())).get("commonName", "")
        seen = Seen(self.command, self.path, self.headers, body, peer)
        self.api.calls.append(seen)
        status, doc = self.api.answer(seen)
        data = doc if isinstance(doc, bytes) else b"" if doc is None else json.dumps(doc).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    do_GET = do_PATCH = do_POST = do_PUT = do_DELETE = _handle


@contextmanager
def local_api(tls: ssl.SSLContext | None = None) -> Iterator[LocalApi]:
    api = LocalApi(url="")
    handler = type("Handler", (_Handler,), {"api": api})
    httpd = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    if tls is not None:
        httpd.socket = tls.wrap_socket(httpd.socket, server_side=True)
    scheme = "https" if tls else "http"
    api.url = f"{scheme}://127.0.0.1:{httpd.server_address[1]}"
    thread = threading.Thread(target=httpd.serve_forever, args=(0.05,), daemon=True)
    thread.start()
    try:
        yield api
    finally:
        httpd.shutdown()
        httpd.server_close()
        thread.join(timeout=5)


class _Tunnel(BaseHTTPRequestHandler):
    targets: list[str]

    def log_message(self, *args: object) -> None:
        pass

    def do_CONNECT(self) -> None:  # noqa: N802 (http.server's naming)
        self.targets.append(self.path)
        host, _, port = self.path.rpartition(":")
        upstream = socket.create_connection((host, int(port)), timeout=10)
        self.send_response(200, "Connection established")
        self.end_headers()
        ends = [self.connection, upstream]
        try:
            while True:
                ready, _, _ = select.select(ends, [], [], 5)
                if not ready:
                    return
                for end in ready:
                    data = end.recv(65536)
                    if not data:
                        return
                    (upstream if end is self.connection else self.connection).sendall(data)
        finally:
            upstream.close()


@contextmanager
def connect_proxy() -> Iterator[tuple[str, list[str]]]:
    """An HTTPS (CONNECT) proxy; yields its URL and the targets it was asked to tunnel to."""
    targets: list[str] = []
    handler = type("Tunnel", (_Tunnel,), {"targets": targets})
    httpd = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=httpd.serve_forever, args=(0.05,), daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{httpd.server_address[1]}", targets
    finally:
        httpd.shutdown()
        httpd.server_close()
        thread.join(timeout=5)


def _openssl(cwd: Path, *args: str) -> None:
    binary = shutil.which("openssl")
    assert binary, "these tests make certificates with the openssl command: install openssl"
    subprocess.run([binary, *args], cwd=cwd, check=True, capture_output=True, timeout=60)


def make_cert(cwd: Path, name: str, ca: str | None = None, san: str | None = None) -> None:
    """`name`.crt/.key in `cwd`: self-signed (a CA) when `ca` is None, else signed by `ca`."""
    key = ["-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes"]
    out = ["-keyout", f"{name}.key"]
    if ca is None:
        subject = ["-subj", f"/CN={name}"]
        _openssl(cwd, "req", "-x509", *key, *out, "-out", f"{name}.crt", "-days", "1", *subject)
        return
    _openssl(cwd, "req", *key, *out, "-out", f"{name}.csr", "-subj", f"/CN={name}")
    extra: list[str] = []
    if san:
        (cwd / f"{name}.ext").write_text(f"subjectAltName={san}\n")
        extra = ["-extfile", f"{name}.ext"]
    signer = ["-CA", f"{ca}.crt", "-CAkey", f"{ca}.key", "-CAcreateserial"]
    _openssl(
        cwd,
        "x509",
        "-req",
        "-in",
        f"{name}.csr",
        *signer,
        "-out",
        f"{name}.crt",
        "-days",
        "1",
        *extra,
    )


def server_tls(cwd: Path, name: str, ca: str, require_client_cert: bool = False) -> ssl.SSLContext:
    ctx = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    ctx.load_cert_chain(cwd / f"{name}.crt", cwd / f"{name}.key")
    if require_client_cert:
        ctx.load_verify_locations(cwd / f"{ca}.crt")
        ctx.verify_mode = ssl.CERT_REQUIRED
    return ctx
