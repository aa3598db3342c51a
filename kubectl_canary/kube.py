"""The plugin's one door to the Kubernetes API: kubeconfig loading and a small REST client.

Why not the `kubernetes` package? Importing it costs ~250 ms before the first request (and more
on first use of its API classes); this module needs only `http.client`, `ssl` and PyYAML (~30 ms),
which keeps `kubectl canary status` close to `kubectl get` (numbers in docs/plugin.md). It
understands what kubectl's kubeconfig does for the common cases: several files in KUBECONFIG,
contexts and their namespace, CA/client certificates (files or inline data), bearer tokens and
token files, basic auth, exec credential plugins and an OIDC auth-provider's id-token.

Everything above this module sees plain dicts and the errors of `kubectl_canary.resources`.
"""

from __future__ import annotations

import base64
import http.client
import json
import os
import socket
import ssl
import threading
import urllib.parse
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any, Protocol

from kubectl_canary.resources import (
    ApiError,
    ConfigError,
    NotFoundError,
    Obj,
    Objs,
    ResourceClient,
    ResourceTypeMissingError,
    UnauthorizedError,
    UnreachableError,
    error_for,
)

# kind -> (plural, namespaced) for the kinds the plugin touches; other kinds use discovery.
KNOWN_KINDS: dict[str, tuple[str, bool]] = {
    "Canary": ("canaries", True),
    "MetricTemplate": ("metrictemplates", True),
    "Deployment": ("deployments", True),
    "Service": ("services", True),
    "ConfigMap": ("configmaps", True),
    "Secret": ("secrets", True),
    "Pod": ("pods", True),
    "Endpoints": ("endpoints", True),
    "Event": ("events", True),
    "ServiceAccount": ("serviceaccounts", True),
    "Namespace": ("namespaces", False),
    "Lease": ("leases", True),
    "HorizontalPodAutoscaler": ("horizontalpodautoscalers", True),
    "Role": ("roles", True),
    "RoleBinding": ("rolebindings", True),
    "ClusterRole": ("clusterroles", False),
    "ClusterRoleBinding": ("clusterrolebindings", False),
    "CustomResourceDefinition": ("customresourcedefinitions", False),
    "VirtualService": ("virtualservices", True),
    "DestinationRule": ("destinationrules", True),
    "HTTPRoute": ("httproutes", True),
    "SelfSubjectAccessReview": ("selfsubjectaccessreviews", False),
    "SubjectAccessReview": ("subjectaccessreviews", False),
    "NetworkPolicy": ("networkpolicies", True),
    "PodDisruptionBudget": ("poddisruptionbudgets", True),
}

CONNECT_TIMEOUT = 10.0
REQUEST_TIMEOUT = 30.0


# ----- the interface commands use (tests implement it over the sandbox's store) -----


class Kube(ResourceClient, Protocol):
    """The shared resource protocol plus what only the plugin needs: the session's defaults
    (kubeconfig namespace, context, server) and the few non-resource reads."""

    default_namespace: str
    context_name: str
    server: str

    def pod_log(
        self, namespace: str, pod: str, follow: bool = False, since_seconds: int | None = None
    ) -> Iterator[str]:
        """The pod's log lines (without newline)."""

    def server_version(self) -> Obj: ...

    def get_path(self, path: str) -> Obj:
        """GET any API path returning JSON (e.g. a service proxy)."""


# ----- kubeconfig -----


@dataclass
class Credentials:
    server: str
    namespace: str
    context_name: str
    ca_data: bytes | None = None
    insecure: bool = False
    tls_server_name: str | None = None
    cert_data: bytes | None = None
    key_data: bytes | None = None
    token: str | None = None
    token_file: str | None = None
    basic: tuple[str, str] | None = None
    exec_config: Obj | None = None
    extra_headers: dict[str, str] = field(default_factory=dict)


def _kubeconfig_paths(kubeconfig: str | None) -> list[str]:
    if kubeconfig:
        if not os.path.exists(kubeconfig):
            raise ConfigError(f"kubeconfig {kubeconfig} does not exist")
        return [kubeconfig]
    env = os.environ.get("KUBECONFIG")
    if env:
        paths = [p for p in env.split(os.pathsep) if p and os.path.exists(p)]
        return paths
    default = os.path.join(os.path.expanduser("~"), ".kube", "config")
    return [default] if os.path.exists(default) else []


def _merged_kubeconfig(paths: list[str]) -> tuple[Obj, dict[str, str]]:
    """kubectl's merge rule: the first file to define a name (or current-context) wins.

    Returns the merged config and, per cluster/user name, the directory relative paths resolve
    against.
    """
    import yaml  # deferred: not every command needs a kubeconfig

    merged: Obj = {"clusters": {}, "users": {}, "contexts": {}, "current-context": ""}
    base_dirs: dict[str, str] = {}
    for path in paths:
        try:
            with open(path, encoding="utf-8") as f:
                doc = yaml.load(f, Loader=getattr(yaml, "CSafeLoader", yaml.SafeLoader)) or {}
        except (OSError, yaml.YAMLError) as e:
            raise ConfigError(f"cannot read kubeconfig {path}: {e}") from None
        if not isinstance(doc, dict):
            raise ConfigError(f"kubeconfig {path} is not a mapping")
        base = os.path.dirname(os.path.abspath(path))
        for section, inner in (("clusters", "cluster"), ("users", "user"), ("contexts", "context")):
            for entry in doc.get(section) or []:
                name = entry.get("name")
                if name is not None and name not in merged[section]:
                    merged[section][name] = entry.get(inner) or {}
                    base_dirs[f"{section}/{name}"] = base
        if not merged["current-context"] and doc.get("current-context"):
            merged["current-context"] = doc["current-context"]
    return merged, base_dirs


def _read_file(path: str, base: str) -> bytes:
    full = path if os.path.isabs(path) else os.path.join(base, path)
    try:
        with open(full, "rb") as f:
            return f.read()
    except OSError as e:
        raise ConfigError(f"cannot read {full}: {e.strerror}") from None


def _in_cluster() -> Credentials | None:
    """The pod's service account, when the plugin itself runs inside a cluster."""
    host = os.environ.get("KUBERNETES_SERVICE_HOST")
    sa = "/var/run/secrets/kubernetes.io/serviceaccount"
    if not host or not os.path.exists(f"{sa}/token"):
        return None
    port = os.environ.get("KUBERNETES_SERVICE_PORT", "443")
    ns = None
    if os.path.exists(f"{sa}/namespace"):
        ns = _read_file(f"{sa}/namespace", sa).decode().strip()
    ca = _read_file(f"{sa}/ca.crt", sa) if os.path.exists(f"{sa}/ca.crt") else None
    return Credentials(
        server=f"https://{host}:{port}",
        namespace=ns or "default",
        context_name="in-cluster",
        ca_data=ca,
        token_file=f"{sa}/token",
    )


def load_credentials(kubeconfig: str | None = None, context: str | None = None) -> Credentials:
    paths = _kubeconfig_paths(kubeconfig)
    if not paths:
        found = _in_cluster()
        if found:
            return found
        raise ConfigError(
            "no kubeconfig found: set KUBECONFIG, pass --kubeconfig or create ~/.kube/config"
        )
    cfg, base_dirs = _merged_kubeconfig(paths)
    ctx_name = context or cfg["current-context"]
    if not ctx_name:
        raise ConfigError("the kubeconfig has no current context: pass --context")
    ctx = cfg["contexts"].get(ctx_name)
    if ctx is None:
        raise ConfigError(f'context "{ctx_name}" does not exist in the kubeconfig')
    cluster = cfg["clusters"].get(ctx.get("cluster", ""))
    if cluster is None:
        raise ConfigError(f'context "{ctx_name}" names cluster "{ctx.get("cluster")}", not found')
    user_name = ctx.get("user", "")
    user = cfg["users"].get(user_name, {}) if user_name else {}
    cbase = base_dirs.get(f"clusters/{ctx['cluster']}", ".")
    ubase = base_dirs.get(f"users/{user_name}", ".")
    server = cluster.get("server")
    if not server:
        raise ConfigError(f'cluster "{ctx["cluster"]}" has no server')
    creds = Credentials(
        server=server.rstrip("/"),
        namespace=ctx.get("namespace") or "default",
        context_name=ctx_name,
        insecure=bool(cluster.get("insecure-skip-tls-verify")),
        tls_server_name=cluster.get("tls-server-name"),
    )
    if cluster.get("certificate-authority-data"):
        creds.ca_data = base64.b64decode(cluster["certificate-authority-data"])
    elif cluster.get("certificate-authority"):
        creds.ca_data = _read_file(cluster["certificate-authority"], cbase)
    if user.get("client-certificate-data"):
        creds.cert_data = base64.b64decode(user["client-certificate-data"])
    elif user.get("client-certificate"):
        creds.cert_data = _read_file(user["client-certificate"], ubase)
    if user.get("client-key-data"):
        creds.key_data = base64.b64decode(user["client-key-data"])
    elif user.get("client-key"):
        creds.key_data = _read_file(user["client-key"], ubase)
    if user.get("token"):
        creds.token = user["token"]
    elif user.get("tokenFile"):
        tf = user["tokenFile"]
        creds.token_file = tf if os.path.isabs(tf) else os.path.join(ubase, tf)
    if user.get("username"):
        creds.basic = (user["username"], user.get("password", ""))
    if user.get("exec"):
        creds.exec_config = dict(user["exec"])
    if user.get("auth-provider"):
        provider = user["auth-provider"]
        id_token = (provider.get("config") or {}).get("id-token")
        if not id_token:
            raise ConfigError(
                f'auth-provider "{provider.get("name")}" is not supported; use an exec plugin'
            )
        creds.token = id_token
    if user.get("as"):
        creds.extra_headers["Impersonate-User"] = str(user["as"])
    if cluster.get("proxy-url"):
        # Connecting directly instead would fail in a confusing way; say it plainly.
        raise ConfigError(f'cluster "{ctx["cluster"]}" uses proxy-url, which is not supported')
    return creds


def _run_exec_plugin(exec_config: Obj, cluster_server: str) -> Obj:
    """Run a client-go credential plugin and return its ExecCredential status."""
    import subprocess

    command = exec_config.get("command")
    if not command:
        raise ConfigError("exec credential plugin has no command")
    env = dict(os.environ)
    for item in exec_config.get("env") or []:
        env[item["name"]] = item["value"]
    info = {
        "apiVersion": exec_config.get("apiVersion", "client.authentication.k8s.io/v1"),
        "kind": "ExecCredential",
        "spec": {"interactive": False, "cluster": {"server": cluster_server}},
    }
    env["KUBERNETES_EXEC_INFO"] = json.dumps(info)
    try:
        done = subprocess.run(
            [command, *(exec_config.get("args") or [])],
            env=env,
            capture_output=True,
            timeout=60,
            check=False,
        )
    except (OSError, subprocess.TimeoutExpired) as e:
        hint = exec_config.get("installHint", "")
        raise ConfigError(f"exec credential plugin {command} failed: {e} {hint}".strip()) from None
    if done.returncode != 0:
        err = done.stderr.decode(errors="replace").strip().splitlines()
        raise ConfigError(
            f"exec credential plugin {command} exited {done.returncode}: "
            f"{err[-1] if err else ''}".rstrip(": ")
        )
    try:
        status: Obj = json.loads(done.stdout)["status"]
    except (ValueError, KeyError, TypeError):
        raise ConfigError(f"exec credential plugin {command} printed no ExecCredential") from None
    return status


# ----- HTTP -----


def _status_error(status: int, body: bytes, what: str) -> ApiError:
    """Map an API error response to one of the shared errors, keeping the server's message."""
    try:
        doc = json.loads(body)
        if not isinstance(doc, dict):
            doc = {}
    except ValueError:
        doc = {}
    message = doc.get("message") or body.decode(errors="replace").strip() or f"HTTP {status}"
    message = message.splitlines()[0] if message else message
    reason = doc.get("reason", "")
    details = doc.get("details") or {}
    if (
        status == 404
        and not details.get("name")
        and "could not find the requested resource" in message
    ):
        # A missing object names itself in details; a missing resource type does not.
        return ResourceTypeMissingError(f"the server does not serve {what}", status, reason, doc)
    if status == 401:
        return UnauthorizedError(f"unauthorized: {message}", status, reason, doc)
    return error_for(status, message, reason, doc)


class _TLSConnection(http.client.HTTPSConnection):
    """HTTPS with an optional TLS server name (kubeconfig `tls-server-name`) for verification."""

    def __init__(
        self,
        host: str,
        port: int,
        server_name: str | None,
        context: ssl.SSLContext,
        timeout: float | None,
    ) -> None:
        super().__init__(host, port, context=context, timeout=timeout)
        self._server_name = server_name or host
        self._tls = context

    def connect(self) -> None:
        sock = socket.create_connection((self.host, self.port), self.timeout)
        self.sock = self._tls.wrap_socket(sock, server_hostname=self._server_name)


class RestClient:
    """A `Kube` over HTTP(S). One keep-alive connection for requests; one per stream."""

    def __init__(self, creds: Credentials) -> None:
        self.creds = creds
        self.default_namespace = creds.namespace
        self.context_name = creds.context_name
        self.server = creds.server
        url = urllib.parse.urlsplit(creds.server)
        self._https = url.scheme == "https"
        self._host = url.hostname or "localhost"
        self._port = url.port or (443 if self._https else 80)
        self._prefix = url.path.rstrip("/")
        self._ssl: ssl.SSLContext | None = None
        self._conn: http.client.HTTPConnection | None = None
        self._lock = threading.Lock()
        self._discovered: dict[tuple[str, str], tuple[str, bool]] = {}
        self._exec_token: str | None = None
        self._exec_done = False

    # --- connection plumbing ---

    def _ssl_context(self) -> ssl.SSLContext:
        if self._ssl is not None:
            return self._ssl
        ctx = ssl.create_default_context()
        if self.creds.insecure:
            ctx.check_hostname = False
            ctx.verify_mode = ssl.CERT_NONE
        elif self.creds.ca_data:
            ctx.load_verify_locations(cadata=self.creds.ca_data.decode())
        cert, key = self.creds.cert_data, self.creds.key_data
        if cert and key:
            import tempfile

            # ssl can only load a client certificate from files; keep them private and brief.
            with tempfile.TemporaryDirectory(prefix="kubectl-canary-") as tmp:
                cpath, kpath = os.path.join(tmp, "c.pem"), os.path.join(tmp, "k.pem")
                for path, data in ((cpath, cert), (kpath, key)):
                    fd = os.open(path, os.O_WRONLY | os.O_CREAT, 0o600)
                    with os.fdopen(fd, "wb") as f:
                        f.write(data)
                ctx.load_cert_chain(cpath, kpath)
        self._ssl = ctx
        return ctx

    def _apply_exec(self) -> None:
        assert self.creds.exec_config is not None
        status = _run_exec_plugin(self.creds.exec_config, self.creds.server)
        self._exec_done = True
        if status.get("token"):
            self._exec_token = status["token"]
        if status.get("clientCertificateData") and status.get("clientKeyData"):
            self.creds.cert_data = status["clientCertificateData"].encode()
            self.creds.key_data = status["clientKeyData"].encode()

    def _new_connection(self, timeout: float | None) -> http.client.HTTPConnection:
        if self.creds.exec_config and not self._exec_done:
            self._apply_exec()
        if self._https:
            ctx = self._ssl_context()
            return _TLSConnection(self._host, self._port, self.creds.tls_server_name, ctx, timeout)
        return http.client.HTTPConnection(self._host, self._port, timeout=timeout)

    def _headers(self, content_type: str | None = None) -> dict[str, str]:
        headers = {"Accept": "application/json", "User-Agent": "kubectl-canary"}
        token = self._exec_token or self.creds.token
        if not token and self.creds.token_file:
            try:
                with open(self.creds.token_file, encoding="utf-8") as f:
                    token = f.read().strip()
            except OSError as e:
                raise ConfigError(f"cannot read token file: {e.strerror}") from None
        if token:
            headers["Authorization"] = f"Bearer {token}"
        elif self.creds.basic:
            raw = f"{self.creds.basic[0]}:{self.creds.basic[1]}".encode()
            headers["Authorization"] = "Basic " + base64.b64encode(raw).decode()
        headers.update(self.creds.extra_headers)
        if content_type:
            headers["Content-Type"] = content_type
        return headers

    def _unreachable(self, e: Exception) -> UnreachableError:
        detail = getattr(e, "strerror", None) or str(e) or type(e).__name__
        if isinstance(e, ssl.SSLError):
            detail = f"TLS error: {e.reason or e}"
        return UnreachableError(f"cannot reach the cluster at {self.server}: {detail}")

    def request(
        self,
        method: str,
        path: str,
        body: Any = None,
        content_type: str | None = None,
        what: str = "",
    ) -> Obj:
        data = None if body is None else json.dumps(body).encode()
        if data is not None and content_type is None:
            content_type = "application/json"
        with self._lock:
            for attempt in (1, 2):
                if self._conn is None:
                    self._conn = self._new_connection(REQUEST_TIMEOUT)
                try:
                    self._conn.request(
                        method, self._prefix + path, body=data, headers=self._headers(content_type)
                    )
                    resp = self._conn.getresponse()
                    raw = resp.read()
                    break
                except (http.client.RemoteDisconnected, BrokenPipeError, ConnectionResetError) as e:
                    # A kept-alive connection the server closed: retry once on a fresh one.
                    self._conn.close()
                    self._conn = None
                    if attempt == 2:
                        raise self._unreachable(e) from None
                except (OSError, http.client.HTTPException) as e:
                    self._conn.close()
                    self._conn = None
                    raise self._unreachable(e) from None
        if resp.status >= 400:
            raise _status_error(resp.status, raw, what or path)
        if not raw:
            return {}
        try:
            result: Obj = json.loads(raw)
        except ValueError:
            raise ApiError(f"{method} {path}: the server sent invalid JSON", resp.status) from None
        return result

    def _stream(self, path: str, what: str, timeout: float | None) -> Iterator[bytes]:
        conn = self._new_connection(timeout)
        try:
            try:
                conn.request("GET", self._prefix + path, headers=self._headers())
                resp = conn.getresponse()
            except (OSError, http.client.HTTPException) as e:
                raise self._unreachable(e) from None
            if resp.status >= 400:
                raise _status_error(resp.status, resp.read(), what)
            while True:
                try:
                    line = resp.readline()
                except TimeoutError:
                    return
                except (OSError, http.client.HTTPException) as e:
                    raise self._unreachable(e) from None
                if not line:
                    return
                yield line
        finally:
            conn.close()

    # --- paths ---

    def _resource(self, api_version: str, kind: str) -> tuple[str, bool]:
        known = KNOWN_KINDS.get(kind)
        if known:
            return known
        key = (api_version, kind)
        if key not in self._discovered:
            base = "/api/v1" if api_version == "v1" else f"/apis/{api_version}"
            doc = self.request("GET", base, what=api_version)
            for res in doc.get("resources", []):
                if "/" not in res["name"]:
                    self._discovered[(api_version, res["kind"])] = (
                        res["name"],
                        bool(res["namespaced"]),
                    )
            if key not in self._discovered:
                raise ResourceTypeMissingError(
                    f"the server does not serve {kind} in {api_version}", 404
                )
        return self._discovered[key]

    def path(
        self, api_version: str, kind: str, namespace: str | None, name: str | None = None
    ) -> str:
        plural, namespaced = self._resource(api_version, kind)
        base = "/api/v1" if api_version == "v1" else f"/apis/{api_version}"
        if namespaced and namespace:
            base += f"/namespaces/{urllib.parse.quote(namespace)}"
        base += f"/{plural}"
        if name:
            base += f"/{urllib.parse.quote(name)}"
        return base

    @staticmethod
    def _what(api_version: str, kind: str) -> str:
        group = api_version.rpartition("/")[0]
        plural = KNOWN_KINDS.get(kind, (kind.lower() + "s", True))[0]
        return f"{plural}.{group}" if group else plural

    # --- the shared resource protocol ---

    def get(self, api_version: str, kind: str, namespace: str, name: str) -> Obj | None:
        try:
            return self.request(
                "GET",
                self.path(api_version, kind, namespace, name),
                what=self._what(api_version, kind),
            )
        except NotFoundError as e:
            if isinstance(e, ResourceTypeMissingError):
                raise
            return None

    get_live = get  # nothing is cached: every read goes to the API server

    def list(
        self,
        api_version: str,
        kind: str,
        namespace: str | None = None,
        label_selector: str | None = None,
    ) -> tuple[Objs, str]:
        path = self.path(api_version, kind, namespace)
        query: dict[str, str] = {"limit": "500"}
        if label_selector:
            query["labelSelector"] = label_selector
        items: Objs = []
        while True:
            doc = self.request(
                "GET",
                f"{path}?{urllib.parse.urlencode(query)}",
                what=self._what(api_version, kind),
            )
            for item in doc.get("items") or []:
                # List items carry no apiVersion/kind; restore them so items look like gets.
                item.setdefault("apiVersion", api_version)
                item.setdefault("kind", kind)
                items.append(item)
            meta = doc.get("metadata") or {}
            if not meta.get("continue"):
                return items, str(meta.get("resourceVersion", ""))
            query["continue"] = meta["continue"]

    def create(self, obj: Obj) -> Obj:
        meta = obj.get("metadata", {})
        path = self.path(obj["apiVersion"], obj["kind"], meta.get("namespace"))
        return self.request("POST", path, obj, what=self._what(obj["apiVersion"], obj["kind"]))

    def replace(self, obj: Obj) -> Obj:
        meta = obj["metadata"]
        path = self.path(obj["apiVersion"], obj["kind"], meta.get("namespace"), meta["name"])
        return self.request("PUT", path, obj, what=self._what(obj["apiVersion"], obj["kind"]))

    def patch_json(self, api_version: str, kind: str, namespace: str, name: str, ops: Objs) -> Obj:
        path = self.path(api_version, kind, namespace, name)
        return self.request(
            "PATCH", path, ops, "application/json-patch+json", what=self._what(api_version, kind)
        )

    def patch_merge(
        self, api_version: str, kind: str, namespace: str, name: str, patch: Obj
    ) -> Obj:
        path = self.path(api_version, kind, namespace, name)
        return self.request(
            "PATCH", path, patch, "application/merge-patch+json", what=self._what(api_version, kind)
        )

    def delete(
        self,
        api_version: str,
        kind: str,
        namespace: str,
        name: str,
        resource_version: str | None = None,
    ) -> bool:
        path = self.path(api_version, kind, namespace, name)
        options: Obj = {
            "kind": "DeleteOptions",
            "apiVersion": "v1",
            "propagationPolicy": "Background",
        }
        if resource_version:
            options["preconditions"] = {"resourceVersion": resource_version}
        try:
            self.request("DELETE", path, options, what=self._what(api_version, kind))
        except NotFoundError as e:
            if isinstance(e, ResourceTypeMissingError):
                raise
            return False
        return True

    def watch(
        self,
        api_version: str,
        kind: str,
        namespace: str | None,
        resource_version: str,
        timeout_seconds: int,
    ) -> Iterator[tuple[str, Obj]]:
        query = urllib.parse.urlencode(
            {
                "watch": "true",
                "resourceVersion": resource_version,
                "allowWatchBookmarks": "true",
                "timeoutSeconds": str(timeout_seconds),
            }
        )
        path = self.path(api_version, kind, namespace) + "?" + query
        for line in self._stream(path, self._what(api_version, kind), timeout_seconds + 30):
            if not line.strip():
                continue
            event = json.loads(line)
            if event.get("type") == "ERROR":
                obj = event.get("object") or {}
                raise _status_error(int(obj.get("code", 500)), json.dumps(obj).encode(), kind)
            yield event["type"], event["object"]

    def pod_log(
        self, namespace: str, pod: str, follow: bool = False, since_seconds: int | None = None
    ) -> Iterator[str]:
        params: dict[str, str] = {}
        if follow:
            params["follow"] = "true"
        if since_seconds is not None:
            params["sinceSeconds"] = str(since_seconds)
        path = self.path("v1", "Pod", namespace, pod) + "/log"
        if params:
            path += "?" + urllib.parse.urlencode(params)
        for line in self._stream(path, "pods/log", None if follow else REQUEST_TIMEOUT):
            yield line.decode(errors="replace").rstrip("\n")

    def server_version(self) -> Obj:
        return self.request("GET", "/version", what="version")

    def get_path(self, path: str) -> Obj:
        return self.request("GET", path, what=path)


def connect(
    kubeconfig: str | None = None, context: str | None = None, namespace: str | None = None
) -> RestClient:
    """Load credentials the way kubectl does and return a client (no request made yet)."""
    creds = load_credentials(kubeconfig, context)
    if namespace:
        creds.namespace = namespace
    return RestClient(creds)
