"""The REST adapter against a tiny recording HTTP server: paths, content types, retries, errors."""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from agent.kube import KubeClient, resource_of
from kubectl_canary.resources import ApiError, ConflictError, GoneError, NotFoundError


class Recorder(ThreadingHTTPServer):
    daemon_threads = True

    def __init__(self) -> None:
        super().__init__(("127.0.0.1", 0), Handler)
        self.seen: list[tuple[str, str, str, bytes]] = []  # method, path, content type, body
        self.replies: list[tuple[int, dict, dict]] = []  # status, body, headers


class Handler(BaseHTTPRequestHandler):
    server: Recorder

    def _any(self) -> None:
        length = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(length) if length else b""
        self.server.seen.append(
            (self.command, self.path, self.headers.get("Content-Type", ""), body)
        )
        status, doc, headers = self.server.replies.pop(0) if self.server.replies else (200, {}, {})
        raw = json.dumps(doc).encode()
        self.send_response(status)
        for k, v in headers.items():
            self.send_header(k, v)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(raw)))
        self.end_headers()
        self.wfile.write(raw)

    do_GET = do_POST = do_PUT = do_PATCH = do_DELETE = _any  # noqa: N815

    def log_message(self, *args: object) -> None:
        pass


@pytest.fixture
def server() -> Iterator[Recorder]:
    srv = Recorder()
    thread = threading.Thread(target=srv.serve_forever, daemon=True)
    thread.start()
    try:
        yield srv
    finally:
        srv.shutdown()
        srv.server_close()


def client(srv: Recorder) -> KubeClient:
    from kubernetes import client as k8s

    cfg = k8s.Configuration()
    cfg.host = f"http://127.0.0.1:{srv.server_address[1]}"
    cfg.api_key = {"authorization": "Bearer t0k"}
    return KubeClient(cfg)


def test_patches_carry_their_own_content_types(server: Recorder) -> None:
    k = client(server)
    api = "networking.istio.io/v1beta1"
    k.patch_merge(api, "VirtualService", "ns", "vs", {"spec": {"hosts": ["a"]}})
    k.patch_json(api, "VirtualService", "ns", "vs", [{"op": "test", "path": "/x", "value": 1}])
    (m1, p1, ct1, b1), (m2, p2, ct2, b2) = server.seen
    assert (m1, ct1) == ("PATCH", "application/merge-patch+json")
    assert (m2, ct2) == ("PATCH", "application/json-patch+json")
    assert p1 == "/apis/networking.istio.io/v1beta1/namespaces/ns/virtualservices/vs"
    assert json.loads(b2) == [{"op": "test", "path": "/x", "value": 1}]


def test_status_update_and_core_paths(server: Recorder) -> None:
    k = client(server)
    obj = {
        "apiVersion": "kubectl-canary.dev/v1alpha1",
        "kind": "Canary",
        "metadata": {"name": "c", "namespace": "ns", "resourceVersion": "5"},
        "status": {"phase": "Progressing"},
    }
    k.update_status(obj)
    k.create({"apiVersion": "v1", "kind": "Event", "metadata": {"name": "e", "namespace": "ns"}})
    assert [(m, p) for m, p, _, _ in server.seen] == [
        ("PUT", "/apis/kubectl-canary.dev/v1alpha1/namespaces/ns/canaries/c/status"),
        ("POST", "/api/v1/namespaces/ns/events"),
    ]
    assert json.loads(server.seen[0][3])["metadata"]["resourceVersion"] == "5"
    assert k.request_counts() == {
        ("update", "kubectl-canary.dev/canaries/status"): 1,
        ("create", "events"): 1,
    }


def test_errors_map_to_types(server: Recorder) -> None:
    k = client(server)
    server.replies = [
        (404, {"reason": "NotFound"}, {}),
        (409, {"reason": "Conflict", "message": "stale"}, {}),
        (404, {"reason": "NotFound"}, {}),
        (422, {"reason": "Invalid", "message": "bad"}, {}),
    ]
    assert k.get("apps/v1", "Deployment", "ns", "x") is None
    with pytest.raises(ConflictError):
        k.replace(
            {"apiVersion": "v1", "kind": "Service", "metadata": {"name": "s", "namespace": "ns"}}
        )
    k.delete("v1", "Service", "ns", "s")  # idempotent
    with pytest.raises(ApiError) as err:
        k.patch_merge("v1", "Service", "ns", "s", {})
    assert err.value.status == 422 and not isinstance(err.value, NotFoundError)
    # Refusals are counted by status, for /metrics (a 403 is a missing RBAC permission).
    assert k.error_counts() == {
        ("get", "apps/deployments", 404): 1,
        ("update", "services", 409): 1,
        ("delete", "services", 404): 1,
        ("patch", "services", 422): 1,
    }


def test_transient_errors_are_retried_honouring_retry_after(server: Recorder) -> None:
    k = client(server)
    server.replies = [(429, {}, {"Retry-After": "0"}), (503, {}, {}), (200, {"kind": "X"}, {})]
    assert k.get("v1", "ConfigMap", "ns", "c") == {"kind": "X"}
    assert len(server.seen) == 3
    assert k.request_counts() == {("get", "configmaps"): 3}
    assert k.error_counts() == {}, "an error that was retried away is not counted"


def test_list_follows_continue_and_fills_kinds(server: Recorder) -> None:
    k = client(server)
    server.replies = [
        (200, {"items": [{"metadata": {"name": "a"}}], "metadata": {"continue": "t1"}}, {}),
        (200, {"items": [{"metadata": {"name": "b"}}], "metadata": {"resourceVersion": "9"}}, {}),
    ]
    items, rv = k.list("apps/v1", "Deployment", "ns")
    assert rv == "9" and [i["metadata"]["name"] for i in items] == ["a", "b"]
    assert all(i["kind"] == "Deployment" and i["apiVersion"] == "apps/v1" for i in items)
    assert "continue=t1" in server.seen[1][1]


def test_auth_header_is_sent(server: Recorder) -> None:
    seen_auth: list[str] = []

    class AuthHandler(Handler):
        def _any(self) -> None:
            seen_auth.append(self.headers.get("authorization", ""))
            super()._any()

        do_GET = _any  # noqa: N815

    server.RequestHandlerClass = AuthHandler
    client(server).get("v1", "Secret", "ns", "s")
    assert seen_auth == ["Bearer t0k"]


def test_watch_gone_raises(server: Recorder) -> None:
    k = client(server)

    class WatchHandler(Handler):
        def do_GET(self) -> None:  # noqa: N802
            lines = [
                {"type": "ADDED", "object": {"metadata": {"name": "a", "resourceVersion": "3"}}},
                {"type": "ERROR", "object": {"code": 410, "message": "too old"}},
            ]
            raw = b"".join(json.dumps(x).encode() + b"\n" for x in lines)
            self.send_response(200)
            self.send_header("Content-Length", str(len(raw)))
            self.end_headers()
            self.wfile.write(raw)

    server.RequestHandlerClass = WatchHandler
    events = []
    with pytest.raises(GoneError):
        for ev in k.watch("v1", "ConfigMap", None, "1", 5, 5):
            events.append(ev)
    assert events == [("ADDED", {"metadata": {"name": "a", "resourceVersion": "3"}})]


@pytest.mark.parametrize(
    ("path", "resource"),
    [
        ("/apis/apps/v1/namespaces/x/deployments/y", "apps/deployments"),
        ("/api/v1/namespaces/x/services", "services"),
        (
            "/apis/kubectl-canary.dev/v1alpha1/namespaces/a/canaries/b/status",
            "kubectl-canary.dev/canaries/status",
        ),
        ("/api/v1/namespaces/default", "namespaces"),
        ("/apis/apps/v1", ""),
    ],
)
def test_resource_of(path: str, resource: str) -> None:
    assert resource_of(path) == resource
