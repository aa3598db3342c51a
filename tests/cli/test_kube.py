"""The plugin's REST client against a tiny local HTTP server: kubeconfig, requests, errors."""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from kubectl_canary import kube
from kubectl_canary.resources import (
    ConfigError,
    ForbiddenError,
    NotFoundError,
    ResourceTypeMissingError,
    UnreachableError,
)


class Recorder(BaseHTTPRequestHandler):
    calls: list[tuple[str, str, dict[str, str], bytes]] = []

    def log_message(self, *args: object) -> None:  # keep test output clean
        pass

    def _reply(self, status: int, body: object, chunked_lines: list[bytes] | None = None) -> None:
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        if chunked_lines is not None:
            self.send_header("Transfer-Encoding", "chunked")
            self.end_headers()
            for line in chunked_lines:
                self.wfile.write(b"%x\r\n%s\r\n" % (len(line), line))
            self.wfile.write(b"0\r\n\r\n")
            return
        data = json.dumps(body).encode()
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def _handle(self) -> None:
        length = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(length) if length else b""
        self.calls.append((self.command, self.path, dict(self.headers), body))
        path = self.path
        if path.startswith("/apis/kubectl-canary.dev/v1alpha1/namespaces/shop/canaries?watch"):
            events = [
                json.dumps({"type": "ADDED", "object": {"metadata": {"name": "a"}}}).encode()
                + b"\n",
                json.dumps({"type": "DELETED", "object": {"metadata": {"name": "a"}}}).encode()
                + b"\n",
            ]
            self._reply(200, None, events)
        elif path == "/apis/kubectl-canary.dev/v1alpha1/namespaces/shop/canaries/mhs":
            self._reply(200, {"kind": "Canary", "metadata": {"name": "mhs"}})
        elif path == "/apis/kubectl-canary.dev/v1alpha1/namespaces/shop/canaries?limit=500":
            page = {"items": [{"metadata": {"name": "a"}}], "metadata": {"continue": "p2"}}
            self._reply(200, {"kind": "CanaryList", **page})
        elif (
            path
            == "/apis/kubectl-canary.dev/v1alpha1/namespaces/shop/canaries?limit=500&continue=p2"
        ):
            page = {"items": [{"metadata": {"name": "b"}}], "metadata": {"resourceVersion": "7"}}
            self._reply(200, {"kind": "CanaryList", **page})
        elif path.startswith("/apis/kubectl-canary.dev/v1alpha1/namespaces/shop/canaries/"):
            self._reply(
                404,
                {
                    "kind": "Status",
                    "code": 404,
                    "reason": "NotFound",
                    "message": 'canaries.kubectl-canary.dev "x" not found',
                    "details": {"name": "x", "kind": "canaries"},
                },
            )
        elif path.startswith("/apis/apps/v1/namespaces/shop/deployments/locked"):
            self._reply(
                403,
                {
                    "kind": "Status",
                    "code": 403,
                    "reason": "Forbidden",
                    "message": 'deployments.apps "locked" is forbidden: no',
                },
            )
        else:
            self._reply(
                404,
                {
                    "kind": "Status",
                    "code": 404,
                    "reason": "NotFound",
                    "message": "the server could not find the requested resource",
                    "details": {},
                },
            )

    do_GET = do_PATCH = do_POST = do_PUT = do_DELETE = _handle


@pytest.fixture
def server() -> Iterator[str]:
    Recorder.calls = []
    httpd = ThreadingHTTPServer(("127.0.0.1", 0), Recorder)
    thread = threading.Thread(target=httpd.serve_forever, args=(0.05,), daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{httpd.server_address[1]}"
    finally:
        httpd.shutdown()
        httpd.server_close()
        thread.join(timeout=5)


@pytest.fixture
def client(server, tmp_path, monkeypatch) -> kube.Kube:
    (tmp_path / "token").write_text("s3cret\n")
    first = tmp_path / "a.yaml"
    first.write_text(f"""
clusters: [{{name: c, cluster: {{server: "{server}"}}}}]
users: [{{name: u, user: {{tokenFile: token}}}}]
contexts: [{{name: ctx, context: {{cluster: c, user: u, namespace: shop}}}}]
current-context: ctx
""")
    second = tmp_path / "b.yaml"  # defines ctx again: the first file wins, like kubectl
    second.write_text(
        "contexts: [{name: ctx, context: {cluster: zz, user: u}}]\ncurrent-context: other\n"
    )
    monkeypatch.setenv("KUBECONFIG", f"{first}:{second}")
    return kube.connect()


def test_context_namespace_and_token_file(client):
    assert client.default_namespace == "shop"
    found = client.get("kubectl-canary.dev/v1alpha1", "Canary", "shop", "mhs")
    assert found is not None and found["metadata"]["name"] == "mhs"
    method, path, headers, _ = Recorder.calls[-1]
    assert headers["Authorization"] == "Bearer s3cret"


def test_merge_patch_content_type_and_body(client):
    with pytest.raises(NotFoundError):
        client.patch_merge("kubectl-canary.dev/v1alpha1", "Canary", "shop", "x", {"a": 1})
    method, path, headers, body = Recorder.calls[-1]
    assert method == "PATCH" and headers["Content-Type"] == "application/merge-patch+json"
    assert json.loads(body) == {"a": 1}


def test_json_patch_content_type_and_body(client):
    ops = [{"op": "test", "path": "/metadata/resourceVersion", "value": "3"}]
    with pytest.raises(NotFoundError):
        client.patch_json("kubectl-canary.dev/v1alpha1", "Canary", "shop", "x", ops)
    method, path, headers, body = Recorder.calls[-1]
    assert method == "PATCH" and headers["Content-Type"] == "application/json-patch+json"
    assert json.loads(body) == ops


def test_missing_object_vs_missing_type(client):
    assert client.get("kubectl-canary.dev/v1alpha1", "Canary", "shop", "x") is None
    with pytest.raises(ResourceTypeMissingError):
        client.get("kubectl-canary.dev/v1alpha1", "Canary", "", "x")  # cluster-wide: not served
    with pytest.raises(ResourceTypeMissingError):
        client.list("kubectl-canary.dev/v1alpha1", "Canary", None)  # all namespaces: not served


def test_list_follows_pages_and_names_the_kind(client):
    items, resource_version = client.list("kubectl-canary.dev/v1alpha1", "Canary", "shop")
    assert [(i["kind"], i["apiVersion"], i["metadata"]["name"]) for i in items] == [
        ("Canary", "kubectl-canary.dev/v1alpha1", "a"),
        ("Canary", "kubectl-canary.dev/v1alpha1", "b"),
    ]
    assert resource_version == "7"


def test_forbidden_keeps_the_server_message(client):
    with pytest.raises(ForbiddenError, match='"locked" is forbidden: no'):
        client.get("apps/v1", "Deployment", "shop", "locked")


def test_delete_of_missing_object_is_false(client):
    assert client.delete("kubectl-canary.dev/v1alpha1", "Canary", "shop", "x", "5") is False
    options = json.loads(Recorder.calls[-1][3])
    assert options["preconditions"] == {"resourceVersion": "5"}
    assert options["propagationPolicy"] == "Background"


def test_watch_streams_events(client):
    events = list(client.watch("kubectl-canary.dev/v1alpha1", "Canary", "shop", "1", 300))
    assert [(t, o["metadata"]["name"]) for t, o in events] == [("ADDED", "a"), ("DELETED", "a")]
    assert "resourceVersion=1" in Recorder.calls[-1][1]


def test_flag_namespace_overrides_context(server, client, monkeypatch):
    assert kube.connect(namespace="other").default_namespace == "other"


def test_exec_credential_plugin_token(server, tmp_path, monkeypatch):
    plugin = tmp_path / "get-token"
    plugin.write_text(
        "#!/bin/sh\n"
        'echo "$KUBERNETES_EXEC_INFO" > "$(dirname "$0")/info.json"\n'
        'echo \'{"apiVersion":"client.authentication.k8s.io/v1","kind":"ExecCredential",'
        '"status":{"token":"from-exec"}}\'\n'
    )
    plugin.chmod(0o755)
    cfg = tmp_path / "config"
    cfg.write_text(f"""
clusters: [{{name: c, cluster: {{server: "{server}"}}}}]
users: [{{name: u, user: {{exec: {{apiVersion: client.authentication.k8s.io/v1,
  command: {plugin}, args: []}}}}}}]
contexts: [{{name: ctx, context: {{cluster: c, user: u}}}}]
current-context: ctx
""")
    client = kube.connect(str(cfg))
    assert client.default_namespace == "default"
    client.get("kubectl-canary.dev/v1alpha1", "Canary", "shop", "mhs")
    assert Recorder.calls[-1][2]["Authorization"] == "Bearer from-exec"
    info = json.loads((tmp_path / "info.json").read_text())
    assert info["spec"]["cluster"]["server"] == server


def test_failing_exec_plugin_is_a_config_error(server, tmp_path):
    cfg = tmp_path / "config"
    cfg.write_text(f"""
clusters: [{{name: c, cluster: {{server: "{server}"}}}}]
users: [{{name: u, user: {{exec: {{command: /bin/false}}}}}}]
contexts: [{{name: ctx, context: {{cluster: c, user: u}}}}]
current-context: ctx
""")
    with pytest.raises(ConfigError, match="exec credential plugin /bin/false exited 1"):
        kube.connect(str(cfg)).get("kubectl-canary.dev/v1alpha1", "Canary", "shop", "mhs")


def openssl(*args: str, cwd) -> None:
    import shutil
    import subprocess

    binary = shutil.which("openssl")
    assert binary, "this test makes certificates with the openssl command: install openssl"
    subprocess.run([binary, *args], cwd=cwd, check=True, capture_output=True, timeout=60)


def make_cert(cwd, name: str, ca: str | None, san: str | None = None) -> None:
    key = ["-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes"]
    if ca is None:
        openssl(
            "req",
            "-x509",
            *key,
            "-keyout",
            f"{name}.key",
            "-out",
            f"{name}.crt",
            "-days",
            "1",
            "-subj",
            f"/CN={name}",
            cwd=cwd,
        )
        return
    openssl(
        "req",
        *key,
        "-keyout",
        f"{name}.key",
        "-out",
        f"{name}.csr",
        "-subj",
        f"/CN={name}",
        cwd=cwd,
    )
    extra = []
    if san:
        (cwd / f"{name}.ext").write_text(f"subjectAltName=DNS:{san}\n")
        extra = ["-extfile", f"{name}.ext"]
    openssl(
        "x509",
        "-req",
        "-in",
        f"{name}.csr",
        "-CA",
        f"{ca}.crt",
        "-CAkey",
        f"{ca}.key",
        "-CAcreateserial",
        "-out",
        f"{name}.crt",
        "-days",
        "1",
        *extra,
        cwd=cwd,
    )


def test_tls_with_ca_data_client_certificate_and_server_name(tmp_path):
    import base64
    import ssl

    make_cert(tmp_path, "ca", None)
    make_cert(tmp_path, "server", "ca", san="kube.test")
    make_cert(tmp_path, "alice", "ca")
    seen: list[str] = []

    class WhoAmI(Recorder):
        def _handle(self) -> None:
            subject = dict(x[0] for x in self.connection.getpeercert()["subject"])
            seen.append(subject["commonName"])
            self._reply(200, {"kind": "Canary", "metadata": {"name": "mhs"}})

        do_GET = _handle

    httpd = ThreadingHTTPServer(("127.0.0.1", 0), WhoAmI)
    ctx = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    ctx.load_cert_chain(tmp_path / "server.crt", tmp_path / "server.key")
    ctx.load_verify_locations(tmp_path / "ca.crt")
    ctx.verify_mode = ssl.CERT_REQUIRED
    httpd.socket = ctx.wrap_socket(httpd.socket, server_side=True)
    thread = threading.Thread(target=httpd.serve_forever, args=(0.05,), daemon=True)
    thread.start()

    def b64(name: str) -> str:
        return base64.b64encode((tmp_path / name).read_bytes()).decode()

    try:
        cfg = tmp_path / "config"
        cfg.write_text(f"""
clusters:
- name: c
  cluster:
    server: https://127.0.0.1:{httpd.server_address[1]}
    certificate-authority-data: {b64("ca.crt")}
    tls-server-name: kube.test
users:
- name: u
  user: {{client-certificate-data: {b64("alice.crt")}, client-key: alice.key}}
contexts: [{{name: ctx, context: {{cluster: c, user: u}}}}]
current-context: ctx
""")
        client = kube.connect(str(cfg))
        found = client.get("kubectl-canary.dev/v1alpha1", "Canary", "default", "mhs")
        assert found is not None and found["kind"] == "Canary"
        assert seen == ["alice"]  # the server saw our client certificate
        cfg.write_text(cfg.read_text().replace("tls-server-name: kube.test\n", ""))
        with pytest.raises(UnreachableError, match="TLS error"):
            kube.connect(str(cfg)).get("kubectl-canary.dev/v1alpha1", "Canary", "default", "mhs")
    finally:
        httpd.shutdown()
        httpd.server_close()
        thread.join(timeout=5)
