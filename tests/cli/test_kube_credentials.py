"""The plugin's client (kubectl_canary/kube.py, over kr8s) against a tiny local API server:
credentials as kubectl handles them (exec plugins with expiry and refresh on 401, CA trust,
client certificates, proxies, impersonation), kr8s's temporary key files, and errors a user
can act on."""

from __future__ import annotations

import base64
import json
import os
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
import yaml

from kubectl_canary import kube
from kubectl_canary.resources import (
    ConfigError,
    ForbiddenError,
    ResourceTypeMissingError,
    UnauthorizedError,
    UnreachableError,
)
from tests.cli.local_api import (
    LocalApi,
    Reply,
    Seen,
    connect_proxy,
    local_api,
    make_cert,
    server_tls,
)

CANARY = ("kubectl-canary.dev/v1alpha1", "Canary")
MHS = {"kind": "Canary", "metadata": {"name": "mhs"}}


def kubeconfig(path: Path, cluster: dict[str, Any], user: dict[str, Any]) -> str:
    path.write_text(
        yaml.safe_dump(
            {
                "clusters": [{"name": "c", "cluster": cluster}],
                "users": [{"name": "u", "user": user}],
                "contexts": [{"name": "ctx", "context": {"cluster": "c", "user": "u"}}],
                "current-context": "ctx",
            }
        )
    )
    return str(path)


def bearer(seen: Seen) -> str:
    return str(seen.headers.get("Authorization", "")).removeprefix("Bearer ")


@pytest.fixture
def api() -> Iterator[LocalApi]:
    with local_api() as found:
        found.answer = lambda seen: (200, MHS)
        yield found


def exec_plugin(tmp_path: Path, expires: datetime | None) -> dict[str, Any]:
    """An exec plugin handing out t1, t2, ... (one per run, counted in `count`)."""
    status = '"token":"t%s"'
    if expires is not None:
        status += f',"expirationTimestamp":"{expires.strftime("%Y-%m-%dT%H:%M:%SZ")}"'
    script = tmp_path / "get-token"
    script.write_text(
        "#!/bin/sh\n"
        'dir=$(dirname "$0")\n'
        'n=$(( $(cat "$dir/count" 2>/dev/null || echo 0) + 1 ))\n'
        'echo $n > "$dir/count"\n'
        'echo "$KUBERNETES_EXEC_INFO" > "$dir/info.json"\n'
        'printf \'{"apiVersion":"client.authentication.k8s.io/v1","kind":"ExecCredential",'
        f'"status":{{{status}}}}}\' "$n"\n'
    )
    script.chmod(0o755)
    return {"exec": {"apiVersion": "client.authentication.k8s.io/v1", "command": str(script)}}


def runs(tmp_path: Path) -> int:
    return int((tmp_path / "count").read_text())


def test_an_expired_exec_credential_is_renewed_before_the_request(api, tmp_path):
    past = datetime.now(UTC) - timedelta(minutes=1)
    cfg = kubeconfig(tmp_path / "config", {"server": api.url}, exec_plugin(tmp_path, past))
    client = kube.connect(cfg)
    client.get(*CANARY, "shop", "mhs")
    client.get(*CANARY, "shop", "mhs")
    assert [bearer(c) for c in api.calls] == ["t1", "t2"]
    info = json.loads((tmp_path / "info.json").read_text())
    assert info["spec"] == {"interactive": False, "cluster": {"server": api.url}}


def test_an_exec_credential_is_reused_until_it_expires(api, tmp_path):
    later = datetime.now(UTC) + timedelta(hours=1)
    cfg = kubeconfig(tmp_path / "config", {"server": api.url}, exec_plugin(tmp_path, later))
    client = kube.connect(cfg)
    client.get(*CANARY, "shop", "mhs")
    client.get(*CANARY, "shop", "mhs")
    assert [bearer(c) for c in api.calls] == ["t1", "t1"]
    assert runs(tmp_path) == 1


def test_a_401_runs_the_exec_plugin_again_and_retries_once(api, tmp_path):
    api.answer = lambda seen: (200, MHS) if bearer(seen) == "t2" else (401, {"message": "no"})
    cfg = kubeconfig(tmp_path / "config", {"server": api.url}, exec_plugin(tmp_path, None))
    client = kube.connect(cfg)
    assert client.get(*CANARY, "shop", "mhs") == MHS
    assert [bearer(c) for c in api.calls] == ["t1", "t2"]
    api.answer = lambda seen: (401, {"message": "Unauthorized"})
    with pytest.raises(UnauthorizedError, match="^unauthorized: Unauthorized$"):
        client.get(*CANARY, "shop", "mhs")
    assert [bearer(c) for c in api.calls[2:]] == ["t2", "t3"]  # one refresh, then it says so


def test_a_static_token_refused_is_unauthorized_without_retrying(api, tmp_path):
    api.answer = lambda seen: (401, {"message": "Unauthorized"})
    cfg = kubeconfig(tmp_path / "config", {"server": api.url}, {"token": "old"})
    with pytest.raises(UnauthorizedError):
        kube.connect(cfg).get(*CANARY, "shop", "mhs")
    assert len(api.calls) == 1


def test_forbidden_is_one_request_with_the_servers_message(api, tmp_path):
    # kr8s's own error handling would re-authenticate three times on a 403.
    api.answer = lambda seen: (403, {"message": 'deployments.apps "locked" is forbidden: no'})
    cfg = kubeconfig(tmp_path / "config", {"server": api.url}, {"token": "t"})
    with pytest.raises(ForbiddenError, match='"locked" is forbidden: no'):
        kube.connect(cfg).get("apps/v1", "Deployment", "shop", "locked")
    assert len(api.calls) == 1


def test_a_token_file_is_read_again_after_a_401(api, tmp_path):
    token = tmp_path / "token"
    token.write_text("old\n")

    def answer(seen: Seen) -> Reply:
        if bearer(seen) == "old":
            token.write_text("new\n")  # rotated, as a projected service-account token is
            return 401, {"message": "expired"}
        return 200, MHS

    api.answer = answer
    cfg = kubeconfig(tmp_path / "config", {"server": api.url}, {"tokenFile": "token"})
    assert kube.connect(cfg).get(*CANARY, "shop", "mhs") == MHS
    assert [bearer(c) for c in api.calls] == ["old", "new"]


def test_impersonation_flags_and_kubeconfig(api, tmp_path):
    user = {"token": "t", "as": "bob", "as-groups": ["ops"], "as-user-extra": {"scopes": ["a"]}}
    cfg = kubeconfig(tmp_path / "config", {"server": api.url}, user)
    kube.connect(cfg).get(*CANARY, "shop", "mhs")
    headers = api.last().headers
    assert headers.get_all("Impersonate-User") == ["bob"]
    assert headers.get_all("Impersonate-Group") == ["ops"]
    assert headers.get_all("Impersonate-Extra-scopes") == ["a"]
    kube.connect(cfg, as_user="alice", as_groups=("g1", "g2")).get(*CANARY, "shop", "mhs")
    headers = api.last().headers
    assert headers.get_all("Impersonate-User") == ["alice"]
    assert headers.get_all("Impersonate-Group") == ["g1", "g2"]
    plain = kubeconfig(tmp_path / "plain", {"server": api.url}, {"token": "t"})
    with pytest.raises(ConfigError, match="--as USER"):
        kube.connect(plain, as_groups=("g1",))


def test_proxy_url_from_the_kubeconfig(api, tmp_path):
    cluster = {"server": "http://kube.invalid:6443", "proxy-url": api.url}
    cfg = kubeconfig(tmp_path / "config", cluster, {"token": "t"})
    assert kube.connect(cfg).get(*CANARY, "shop", "mhs") == MHS
    # A forward proxy receives the absolute URL of the API server.
    assert api.last().path == (
        "http://kube.invalid:6443/apis/kubectl-canary.dev/v1alpha1/namespaces/shop/canaries/mhs"
    )


def test_missing_object_type_and_server(api, tmp_path):
    def answer(seen: Seen) -> Reply:
        if seen.path.endswith("/canaries/x"):
            return 404, {"reason": "NotFound", "details": {"name": "x", "kind": "canaries"}}
        if "/canaries" in seen.path:
            return 404, b"404 page not found"  # the real API server for an unknown group
        return 200, MHS

    api.answer = answer
    client = kube.connect(kubeconfig(tmp_path / "config", {"server": api.url}, {}))
    assert client.get(*CANARY, "shop", "x") is None
    assert len(api.calls) == 1  # one request, no waiting for the object to appear
    assert client.delete(*CANARY, "shop", "x") is False
    with pytest.raises(ResourceTypeMissingError, match="does not serve canaries.kubectl-canary"):
        client.get(*CANARY, "shop", "y")
    with pytest.raises(ResourceTypeMissingError):
        client.list(*CANARY, None)
    with pytest.raises(ResourceTypeMissingError):
        client.delete(*CANARY, "shop", "y")
    unreachable = kubeconfig(tmp_path / "down", {"server": "http://127.0.0.1:9"}, {})
    with pytest.raises(UnreachableError, match=r"cannot reach the cluster at http://127.0.0.1:9"):
        kube.connect(unreachable).get(*CANARY, "shop", "x")


def test_config_errors_are_one_line(tmp_path, monkeypatch):
    with pytest.raises(ConfigError, match="kubeconfig /nope does not exist"):
        kube.connect("/nope")
    cfg = kubeconfig(tmp_path / "config", {"server": "http://127.0.0.1:9"}, {})
    with pytest.raises(ConfigError, match='context "other" does not exist'):
        kube.connect(cfg, context="other")
    failing = kubeconfig(tmp_path / "f", {"server": "http://127.0.0.1:9"}, {"exec": {
        "command": "/bin/false"}})  # fmt: skip
    with pytest.raises(ConfigError, match="exec credential plugin /bin/false exited 1"):
        kube.connect(failing).get(*CANARY, "shop", "x")
    monkeypatch.setenv("KUBECONFIG", str(tmp_path / "missing"))
    monkeypatch.delenv("KUBERNETES_SERVICE_HOST", raising=False)
    with pytest.raises(ConfigError, match="no kubeconfig found"):
        kube.connect()


def test_pod_log_lines(api, tmp_path):
    api.answer = lambda seen: (200, b"one\ntwo\n")
    client = kube.connect(kubeconfig(tmp_path / "config", {"server": api.url}, {}))
    assert list(client.pod_log("ops", "agent-1", since_seconds=60)) == ["one", "two"]
    assert api.last().path == "/api/v1/namespaces/ops/pods/agent-1/log?sinceSeconds=60"


# ----- TLS: trust, client certificates, kr8s's temporary files -----


@pytest.fixture(scope="module")
def pki(tmp_path_factory: pytest.TempPathFactory) -> Path:
    d = tmp_path_factory.mktemp("pki")
    make_cert(d, "ca")
    make_cert(d, "other-ca")
    make_cert(d, "server", "ca", san="IP:127.0.0.1,DNS:kube.test")
    make_cert(d, "alice", "ca")
    return d


def b64(path: Path) -> str:
    return base64.b64encode(path.read_bytes()).decode()


def test_ca_trust_is_kubectls(pki, tmp_path, monkeypatch):
    """The kubeconfig's CA alone when it names one, else the system roots; or no check."""
    monkeypatch.setenv("SSL_CERT_FILE", str(pki / "ca.crt"))  # the "system roots" trust ca
    with local_api(server_tls(pki, "server", "ca")) as api:
        api.answer = lambda seen: (200, MHS)
        cases = {
            "own-ca": ({"certificate-authority": str(pki / "ca.crt")}, True),
            "other-ca": ({"certificate-authority-data": b64(pki / "other-ca.crt")}, False),
            "system-roots": ({}, True),
            "insecure": ({"insecure-skip-tls-verify": True}, True),
        }
        for name, (trust, works) in cases.items():
            cfg = kubeconfig(tmp_path / name, {"server": api.url, **trust}, {"token": "t"})
            client = kube.connect(cfg)
            if works:
                assert client.get(*CANARY, "shop", "mhs") == MHS, name
            else:
                with pytest.raises(UnreachableError, match="TLS error"):
                    client.get(*CANARY, "shop", "mhs")


def test_client_certificate_and_server_name_leave_no_key_file(pki, tmp_path, monkeypatch):
    files = tmp_path / "tmp"
    files.mkdir()
    monkeypatch.setattr(tempfile, "tempdir", str(files))  # where kr8s writes inline data
    with local_api(server_tls(pki, "server", "ca", require_client_cert=True)) as api:
        api.answer = lambda seen: (200, MHS)
        cluster = {
            "server": api.url.replace("127.0.0.1", "localhost"),  # not in the certificate
            "certificate-authority-data": b64(pki / "ca.crt"),
            "tls-server-name": "kube.test",
        }
        user = {
            "client-certificate-data": b64(pki / "alice.crt"),
            "client-key-data": b64(pki / "alice.key"),
        }
        cfg = kubeconfig(tmp_path / "config", cluster, user)
        assert kube.connect(cfg).get(*CANARY, "shop", "mhs") == MHS
        assert [c.peer_cn for c in api.calls] == ["alice"]  # kr8s loaded the key from a file
        assert os.listdir(files) == []  # ... which is gone already
        del cluster["tls-server-name"]
        cfg = kubeconfig(tmp_path / "config", cluster, user)
        with pytest.raises(UnreachableError, match="TLS error"):
            kube.connect(cfg).get(*CANARY, "shop", "mhs")
        assert os.listdir(files) == []


def test_key_files_written_but_never_loaded_are_removed_at_exit(pki, tmp_path):
    """kr8s writes them on authentication; the process may end before the first request."""
    files = tmp_path / "tmp"
    files.mkdir()
    cfg = {
        "clusters": [{"name": "c", "cluster": {"server": "https://127.0.0.1:9",
                      "certificate-authority-data": b64(pki / "ca.crt")}}],
        "users": [{"name": "u", "user": {"client-certificate-data": b64(pki / "alice.crt"),
                   "client-key-data": b64(pki / "alice.key")}}],
        "contexts": [{"name": "ctx", "context": {"cluster": "c", "user": "u"}}],
        "current-context": "ctx",
    }  # fmt: skip
    code = (
        "import asyncio, json, os, sys\n"
        "from kubectl_canary.kube import _auth_class\n"
        "auth = _auth_class()(json.loads(sys.argv[1]), 'ctx')\n"
        "asyncio.run(auth.reauthenticate())\n"
        "print(len(os.listdir(sys.argv[2])))\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", code, json.dumps(cfg), str(files)],
        env={**os.environ, "TMPDIR": str(files)},
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "3"  # key, certificate and CA were on disk while it ran
    assert os.listdir(files) == []


def test_https_proxy_from_the_environment(pki, tmp_path, monkeypatch):
    for name in ("NO_PROXY", "no_proxy", "ALL_PROXY", "all_proxy"):
        monkeypatch.delenv(name, raising=False)
    with local_api(server_tls(pki, "server", "ca")) as api, connect_proxy() as (proxy, seen):
        api.answer = lambda seen: (200, MHS)
        monkeypatch.setenv("HTTPS_PROXY", proxy)
        trust = {"certificate-authority": str(pki / "ca.crt")}
        cfg = kubeconfig(tmp_path / "config", {"server": api.url, **trust}, {"token": "t"})
        assert kube.connect(cfg).get(*CANARY, "shop", "mhs") == MHS
        assert seen == [api.url.removeprefix("https://")]


def test_as_and_as_group_flags_reach_the_connection(fake):
    from click.testing import CliRunner

    from kubectl_canary.cli.main import cli
    from kubectl_canary.cli.options import KubeFlags, Runtime

    seen: list[KubeFlags] = []

    def connect(flags: KubeFlags) -> Any:
        seen.append(flags)
        return fake

    args = ["status", "-A", "--as", "alice", "--as-group", "ops", "--as-group", "dev"]
    result = CliRunner().invoke(cli, args, obj=Runtime(connect=connect))
    assert result.exit_code == 0, result.output
    assert (seen[0].as_user, seen[0].as_groups) == ("alice", ("ops", "dev"))
