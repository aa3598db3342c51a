"""HTTP front of the sandbox API server: routing, content negotiation, watch streams.

A ThreadingHTTPServer speaking HTTP/1.1 with keep-alive: one thread per connection, which
suits long-lived watch streams (each blocks in the event log's condition, not in a poll loop).
"""

from __future__ import annotations

import json
import logging
import select
import socket
import threading
import time
import urllib.parse
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, Protocol

from . import discovery, openapi, rest, tables
from .errors import BadRequest, NotFound, StoreError
from .rest import MethodNotAllowed, Target
from .selectors import SelectorError, labels_match, parse_label_selector
from .store import Store
from .stored import encode
from .watch import TooOld

log = logging.getLogger(__name__)

Obj = dict[str, Any]
MAX_WATCH_SECONDS = 1800  # a real server ends watches after 30-60 minutes


class SimulationHooks(Protocol):
    def render_metrics(self) -> str: ...
    def answer_query(self, query: str) -> dict[str, Any]: ...


def status_object(code: int, reason: str, message: str, details: Obj | None = None) -> Obj:
    body: Obj = {
        "kind": "Status",
        "apiVersion": "v1",
        "metadata": {},
        "status": "Failure",
        "message": message,
        "reason": reason,
        "code": code,
    }
    if details:
        body["details"] = details
    return body


def _error_status(err: StoreError) -> Obj:
    details: Obj = {}
    if err.name:
        details["name"] = err.name
    if err.group:
        details["group"] = err.group
    if err.kind:
        details["kind"] = err.kind
    causes = getattr(err, "causes", None)
    if causes:
        details["causes"] = [
            {"reason": c.reason, "message": c.message, "field": c.field} for c in causes
        ]
    return status_object(err.code, err.reason, err.message, details or None)


def _wants_table(accept: str) -> bool:
    return "as=Table" in accept


class SandboxHTTPServer(ThreadingHTTPServer):
    daemon_threads = True
    allow_reuse_address = True
    request_queue_size = 128

    def __init__(
        self,
        address: tuple[str, int],
        store: Store,
        *,
        simulation: SimulationHooks | None = None,
        bookmark_interval: float = 5.0,
    ) -> None:
        super().__init__(address, _Handler)
        self.store = store
        self.simulation = simulation
        self.bookmark_interval = bookmark_interval
        self.stopping = threading.Event()

    def shutdown(self) -> None:
        self.stopping.set()
        super().shutdown()


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    # Headers and body go out in separate writes; with Nagle's algorithm on, each response
    # would then wait for the client's delayed ACK (~40 ms).
    disable_nagle_algorithm = True
    server: SandboxHTTPServer
    _body: bytes | None = None  # the current request's, once read (see _read_body)

    def log_message(self, format: str, *args: Any) -> None:  # noqa: A002 - stdlib signature
        log.debug("%s " + format, self.address_string(), *args)

    # ---- responses -----------------------------------------------------------------------

    def _send(self, code: int, body: bytes, content_type: str = "application/json") -> None:
        self.send_response(code)
        for warning in self.server.store.take_warnings():
            self.send_header("Warning", f'299 - "{warning}"')
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(body)))
        self.send_header("Cache-Control", "no-cache, private")
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(body)

    def _json(self, code: int, obj: Any) -> None:
        self._send(code, encode(obj).encode())

    def _status(self, code: int, reason: str, message: str) -> None:
        self._json(code, status_object(code, reason, message))

    def _read_body(self) -> bytes:
        """The request's body, read once (an error answer drains it too: left unread, it would
        be parsed as the next request on this keep-alive connection)."""
        if self._body is None:
            self._body = self._receive_body()
        return self._body

    def _receive_body(self) -> bytes:
        length = int(self.headers.get("Content-Length") or 0)
        if length:
            return self.rfile.read(length)
        if self.headers.get("Transfer-Encoding", "").lower() == "chunked":
            chunks = []
            while True:
                size = int(self.rfile.readline().strip().split(b";")[0], 16)
                if size == 0:
                    self.rfile.readline()
                    break
                chunks.append(self.rfile.read(size))
                self.rfile.readline()
            return b"".join(chunks)
        return b""

    # ---- dispatch ------------------------------------------------------------------------

    def do_GET(self) -> None:
        self._handle("GET")

    def do_HEAD(self) -> None:
        self._handle("GET")

    def do_POST(self) -> None:
        self._handle("POST")

    def do_PUT(self) -> None:
        self._handle("PUT")

    def do_PATCH(self) -> None:
        self._handle("PATCH")

    def do_DELETE(self) -> None:
        self._handle("DELETE")

    def _handle(self, method: str) -> None:
        url = urllib.parse.urlsplit(self.path)
        params = {k: v[-1] for k, v in urllib.parse.parse_qs(url.query).items()}
        path = url.path.rstrip("/") or "/"
        self._body = None
        try:
            if not self._handle_fixed(method, path, params):
                self._handle_resource(method, path, params)
        except StoreError as err:
            self._read_body()
            self._json(err.code, _error_status(err))
        except (BrokenPipeError, ConnectionResetError):
            self.close_connection = True
        except Exception as exc:  # a bug must not kill the connection thread silently
            log.exception("internal error on %s %s", method, self.path)
            self._read_body()
            self._status(500, "InternalError", f"sandbox internal error: {exc}")

    def _handle_fixed(self, method: str, path: str, params: dict[str, str]) -> bool:
        store = self.server.store
        types = store.resource_types()
        if path in ("/healthz", "/readyz", "/livez"):
            self._send(200, b"ok", "text/plain; charset=utf-8")
        elif path == "/version":
            self._json(200, discovery.VERSION_INFO)
        elif path == "/api":
            self._json(200, discovery.core_versions())
        elif path == "/apis":
            self._json(200, discovery.group_list(types))
        elif path == "/api/v1":
            self._json(200, discovery.resource_list(types, "", "v1"))
        elif path.startswith("/apis/") and path.count("/") in (2, 3):
            parts = path.split("/")[2:]
            doc = (
                discovery.group(types, parts[0])
                if len(parts) == 1
                else discovery.resource_list(types, parts[0], parts[1])
            )
            if doc is None:
                raise NotFound("the server could not find the requested resource")
            self._json(200, doc)
        elif path.startswith("/sandbox/"):
            self._handle_sandbox(method, path, params)
        elif path == "/openapi/v3":
            self._json(200, openapi.root(types, store.types_generation))
        elif path.startswith("/openapi/v3/"):
            parts = path[len("/openapi/v3/") :].split("/")
            doc = None
            if parts[0] == "api" and len(parts) == 2:
                doc = openapi.group_version(types, "", parts[1])
            elif parts[0] == "apis" and len(parts) == 3:
                doc = openapi.group_version(types, parts[1], parts[2])
            if doc is None:
                raise NotFound("the server could not find the requested resource")
            self._json(200, doc)
        elif path.startswith("/openapi"):
            raise NotFound("the server could not find the requested resource")
        else:
            return False
        return True

    def _handle_sandbox(self, method: str, path: str, params: dict[str, str]) -> None:
        sim = self.server.simulation
        if sim is None:
            raise NotFound("the simulation is not running in this sandbox")
        if path == "/sandbox/metrics":
            body = sim.render_metrics().encode()
            self._send(200, body, "text/plain; version=0.0.4; charset=utf-8")
        elif path == "/sandbox/prometheus/api/v1/query":
            if method == "POST":
                form = urllib.parse.parse_qs(self._read_body().decode())
                params = {**params, **{k: v[-1] for k, v in form.items()}}
            self._json(200, sim.answer_query(params.get("query", "")))
        else:
            raise NotFound("the server could not find the requested resource")

    def _target(self, path: str, params: dict[str, str]) -> Target:
        parts = path.strip("/").split("/")
        if parts[0] == "api" and len(parts) >= 3:
            group, version, rest_parts = "", parts[1], parts[2:]
        elif parts[0] == "apis" and len(parts) >= 4:
            group, version, rest_parts = parts[1], parts[2], parts[3:]
        else:
            raise NotFound("the server could not find the requested resource")
        store = self.server.store
        namespace = None
        if rest_parts[0] == "namespaces" and len(rest_parts) >= 3:
            t = store.type_for_resource(group, version, rest_parts[2])
            if t is not None and t.namespaced:
                namespace, rest_parts = rest_parts[1], rest_parts[2:]
        t = store.type_for_resource(group, version, rest_parts[0])
        if t is None or len(rest_parts) > 3:
            raise NotFound("the server could not find the requested resource")
        name = rest_parts[1] if len(rest_parts) > 1 else None
        sub = rest_parts[2] if len(rest_parts) > 2 else None
        if sub is not None and not (
            (sub == "status" and t.has_status) or (sub == "scale" and t.scale is not None)
        ):
            raise NotFound("the server could not find the requested resource")
        return Target(t, version, namespace, name, sub, params)

    def _handle_resource(self, method: str, path: str, params: dict[str, str]) -> None:
        t = self._target(path, params)
        store = self.server.store
        content_type = self.headers.get("Content-Type", "application/json")
        if t.name is None:
            if method == "GET":
                if params.get("watch") in ("true", "1"):
                    self._watch(t)
                else:
                    self._list(t)
            elif method == "POST":
                body = rest.parse_body(self._read_body(), content_type)
                self._json(201, rest.create(store, t, body))
            elif method == "DELETE":
                self._read_body()
                self._json(200, rest.delete_collection(store, t))
            else:
                raise MethodNotAllowed(f"{method} is not supported on a collection")
            return
        if method == "GET":
            if params.get("watch") in ("true", "1"):
                t.params["fieldSelector"] = f"metadata.name={t.name}"
                t.name = None
                self._watch(t)
                return
            obj = rest.get(store, t)
            if _wants_table(self.headers.get("Accept", "")) and not t.subresource:
                obj = tables.table(
                    t.type,
                    t.version,
                    [obj],
                    obj["metadata"].get("resourceVersion", ""),
                    params.get("includeObject", "Metadata"),
                )
            self._json(200, obj)
        elif method == "PUT":
            body = rest.parse_body(self._read_body(), content_type)
            self._json(200, rest.replace(store, t, body))
        elif method == "PATCH":
            obj, created = rest.patch(store, t, self._read_body(), content_type)
            self._json(201 if created else 200, obj)
        elif method == "DELETE":
            raw = self._read_body()
            options = rest.parse_body(raw, "application/json") if raw.strip() else None
            self._json(200, rest.delete(store, t, options if isinstance(options, dict) else None))
        else:
            raise MethodNotAllowed(f"{method} is not supported")

    def _list(self, t: Target) -> None:
        page = rest.list_page(self.server.store, t)
        list_meta: Obj = {"resourceVersion": str(page.resource_version)}
        if page.continue_token:
            list_meta["continue"] = page.continue_token
            list_meta["remainingItemCount"] = page.remaining
        if _wants_table(self.headers.get("Accept", "")):
            include = t.params.get("includeObject", "Metadata")
            table = tables.table(t.type, t.version, page.items, "", include)
            table["metadata"] = list_meta
            self._json(200, table)
            return
        # Assembled from the stored objects' cached encodings: listing 1,000 objects then
        # costs a string join instead of re-encoding every object on every request.
        head = json.dumps(
            {"kind": t.type.list_kind, "apiVersion": t.api_version, "metadata": list_meta},
            separators=(",", ":"),
        )
        body = head[:-1] + ',"items":[' + ",".join(encode(o) for o in page.items) + "]}"
        self._send(200, body.encode())

    # ---- watch ---------------------------------------------------------------------------

    def _write_chunk(self, data: bytes) -> None:
        self.wfile.write(f"{len(data):x}\r\n".encode() + data + b"\r\n")
        self.wfile.flush()

    def _client_gone(self) -> bool:
        try:
            readable, _, _ = select.select([self.connection], [], [], 0)
            if readable:
                return bool(self.connection.recv(1, socket.MSG_PEEK) == b"")
        except (OSError, ValueError):
            return True
        return False

    def _watch(self, t: Target) -> None:
        store = self.server.store
        params = t.params
        try:
            reqs = parse_label_selector(params.get("labelSelector"))
        except SelectorError as e:
            raise BadRequest(str(e)) from e
        field_match = rest.field_predicate(t)

        def matches(obj: Obj | None) -> bool:
            if obj is None:
                return False
            if t.namespace and obj["metadata"].get("namespace") != t.namespace:
                return False
            if reqs and not labels_match(reqs, obj):
                return False
            return field_match is None or field_match(obj)

        as_table = _wants_table(self.headers.get("Accept", ""))
        include = params.get("includeObject", "Metadata")

        def event_line(event_type: str, obj: Obj) -> bytes:
            body = rest._with_version(t, obj) if event_type != "ERROR" else obj
            if as_table and event_type not in ("ERROR", "BOOKMARK"):
                rv = obj["metadata"].get("resourceVersion", "")
                body = tables.table(t.type, t.version, [body], rv, include)
            return f'{{"type":"{event_type}","object":{encode(body)}}}\n'.encode()

        requested = params.get("resourceVersion", "")
        initial: list[Obj] = []
        if requested in ("", "0"):
            initial, cursor = rest.list_objects(store, t)
        else:
            try:
                cursor = int(requested)
            except ValueError as e:
                raise BadRequest(f"invalid resourceVersion {requested!r}") from e

        timeout = float(params.get("timeoutSeconds") or MAX_WATCH_SECONDS)
        deadline = time.monotonic() + min(timeout, MAX_WATCH_SECONDS)
        bookmarks = params.get("allowWatchBookmarks") in ("true", "1")
        interval = self.server.bookmark_interval
        next_bookmark = time.monotonic() + interval

        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Transfer-Encoding", "chunked")
        self.send_header("Cache-Control", "no-cache, private")
        self.end_headers()
        try:
            for obj in initial:
                self._write_chunk(event_line("ADDED", obj))
            while not self.server.stopping.is_set():
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    break
                safe_rv = store.resource_version
                try:
                    events = store.events.wait_since(t.type.key, cursor, min(remaining, 1.0))
                except TooOld:
                    err = status_object(
                        410,
                        "Expired",
                        f"too old resource version: {cursor} ({store.resource_version})",
                    )
                    self._write_chunk(event_line("ERROR", err))
                    break
                for ev in events:
                    cursor = ev.rv
                    now_in, was_in = matches(ev.obj), matches(ev.old)
                    if ev.type == "DELETED":
                        if was_in or now_in:
                            self._write_chunk(event_line("DELETED", ev.obj))
                    elif now_in and (was_in or ev.type == "ADDED"):
                        self._write_chunk(event_line(ev.type, ev.obj))
                    elif now_in:
                        self._write_chunk(event_line("ADDED", ev.obj))
                    elif was_in:
                        self._write_chunk(event_line("DELETED", ev.obj))
                if not events:
                    # Nothing of this kind up to safe_rv: later bookmarks may carry it.
                    cursor = max(cursor, safe_rv)
                    if self._client_gone():
                        break
                if bookmarks and time.monotonic() >= next_bookmark:
                    next_bookmark = time.monotonic() + interval
                    mark = {
                        "kind": t.type.kind,
                        "apiVersion": t.api_version,
                        "metadata": {"resourceVersion": str(max(cursor, safe_rv))},
                    }
                    self._write_chunk(event_line("BOOKMARK", mark))
            self.wfile.write(b"0\r\n\r\n")
            self.wfile.flush()
        except (BrokenPipeError, ConnectionResetError, OSError):
            self.close_connection = True
        except Exception:
            # Headers are already sent: a Status response is impossible, end the stream.
            log.exception("watch stream failed")
            self.close_connection = True


def make_server(
    store: Store,
    *,
    host: str = "127.0.0.1",
    port: int = 0,
    simulation: SimulationHooks | None = None,
    bookmark_interval: float = 5.0,
) -> SandboxHTTPServer:
    return SandboxHTTPServer(
        (host, port), store, simulation=simulation, bookmark_interval=bookmark_interval
    )
