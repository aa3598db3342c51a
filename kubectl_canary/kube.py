"""The plugin's one door to the Kubernetes API: the `Kube` interface and its adapter over kr8s.

Commands see `Kube`: the shared resource protocol (`kubectl_canary.resources`, the one the agent
implements too) plus the few calls only the plugin makes (`pod_log`, `server_version`,
`get_path`, the context it talks to). `connect()` returns the real one, a `Kr8sClient`; tests
implement `Kube` over the sandbox's store or a fake.

What kr8s does here: the httpx session (TLS files, bearer token, `tls-server-name`, `proxy-url`
or HTTPS_PROXY/NO_PROXY from the environment) and `Api.call_api`. What this module does itself,
and why:
- the context is chosen by kubectl's rules (kubectl_canary/kubeconfig.py: kr8s lets the last
  of several kubeconfig files win and ignores tokenFile and impersonation) and the exec plugin
  is run here (kubectl_canary/exec_credential.py), again when its credential expires or the
  server answers 401 (kr8s runs it once and forgets the expiry);
- TLS trust is kubectl's: the kubeconfig's CA alone when it names one, the system roots when it
  does not (kr8s would trust no roots beside a client certificate, and certifi's otherwise);
- kr8s writes inline certificates and keys to temporary files it never removes; they are
  removed as soon as the TLS context holds them, and at exit at the latest;
- requests are raw REST (`call_api` with our own status handling): kr8s's objects wait ~2 s
  before reporting a missing object, its error handling re-authenticates three times on a 403,
  and its watch hides 410 Gone; the CLI's watch views own their list-then-watch loop instead.

kr8s is async: every call goes to one event loop shared by the process's threads
(kubectl_canary/async_bridge.py).

kr8s, httpx and asyncio cost ~0.3-0.5 s to import, so they are imported on the first request,
not with this module: every command module imports `Kube` from here, and `--help`, completion,
`version --client`, `convert` and `create --dry-run` must stay fast (tests/cli/test_lean_start.py).
"""

from __future__ import annotations

import atexit
import contextlib
import json
import os
import threading
import urllib.parse
from collections.abc import AsyncIterator, Iterator
from datetime import UTC, datetime
from functools import cache
from typing import TYPE_CHECKING, Any, Protocol, TypeVar, cast

from kubectl_canary import kubeconfig
from kubectl_canary.async_bridge import the_loop
from kubectl_canary.exec_credential import ExecCredential, run_exec_plugin
from kubectl_canary.resources import (
    ApiError,
    ConfigError,
    NotFoundError,
    Obj,
    Objs,
    ResourceClient,
    ResourceTypeMissingError,
    UnreachableError,
    delete_options,
    error_for,
    list_pages,
)

if TYPE_CHECKING:
    import asyncio
    import ssl

T = TypeVar("T")

JSON = "application/json"
JSON_PATCH = "application/json-patch+json"
MERGE_PATCH = "application/merge-patch+json"
CONNECT_TIMEOUT = 10.0
REQUEST_TIMEOUT = 30.0
PAGE_SIZE = 500

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

    def get_text(self, path: str) -> str:
        """GET any API path returning text (e.g. a pod's /metrics through its proxy)."""


# ----- kr8s's temporary key and certificate files -----

_temp_files: set[str] = set()
_temp_lock = threading.Lock()


def _remove_temp_files(paths: list[str] | None = None) -> None:
    with _temp_lock:
        chosen = list(_temp_files) if paths is None else paths
        for path in chosen:
            with contextlib.suppress(FileNotFoundError):
                os.unlink(path)
            _temp_files.discard(path)


atexit.register(_remove_temp_files)


def _kubectl_tls(auth: Any, context_name: str) -> ssl.SSLContext:
    """The TLS context kubectl would use for the files kr8s's loader found."""
    import ssl

    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    if not auth.server.startswith("https:"):
        return ctx  # plain HTTP: never used, and loading roots would cost time
    try:
        if auth._insecure_skip_tls_verify:
            ctx.check_hostname = False
            ctx.verify_mode = ssl.CERT_NONE
        elif auth.server_ca_file:
            ctx.load_verify_locations(cafile=str(auth.server_ca_file))
        else:
            ctx.load_default_certs()
        if auth.client_cert_file and auth.client_key_file:
            ctx.load_cert_chain(str(auth.client_cert_file), str(auth.client_key_file))
    except (ssl.SSLError, OSError) as e:
        raise ConfigError(
            f'context "{context_name}": cannot load its certificates or key: '
            f"{getattr(e, 'reason', None) or e}"
        ) from None
    return ctx


def _written_by_kr8s(auth: Any) -> list[str]:
    """The files kr8s made of `*-data` fields (each a NamedTemporaryFile(delete=False))."""
    return [
        str(path)
        for path, source, key in (
            (auth.client_key_file, auth._user, "client-key-data"),
            (auth.client_cert_file, auth._user, "client-certificate-data"),
            (auth.server_ca_file, auth._cluster, "certificate-authority-data"),
        )
        if path and key in source
    ]


@cache
def _auth_class() -> type[Any]:
    """kr8s's credential loader with kubectl's TLS trust and no key files left behind;
    defined on first use because importing kr8s is the expensive part of a command."""
    from kr8s._auth import KubeAuth

    class Auth(KubeAuth):
        def __init__(self, config: Obj, context_name: str) -> None:
            # kr8s reads a dict as an in-memory kubeconfig (its annotation names paths only).
            super().__init__(kubeconfig=cast(Any, config), serviceaccount="")
            self.context_name = context_name
            self.tls: ssl.SSLContext | None = None
            self.written: list[str] = []

        async def reauthenticate(self) -> None:
            self.tls = None
            try:
                await super().reauthenticate()
            finally:
                self.written = _written_by_kr8s(self)
                with _temp_lock:
                    _temp_files.update(self.written)

        async def ssl_context(self) -> ssl.SSLContext:
            if self.tls is None:
                try:
                    self.tls = _kubectl_tls(self, self.context_name)
                finally:
                    _remove_temp_files(self.written)  # the context holds them in memory now
            return self.tls

    return Auth


# ----- the client -----


def _cause(e: BaseException) -> str:
    """What went wrong underneath httpx's wrapping, the way the socket layer says it
    ("Connection refused", a TLS verification error)."""
    import ssl

    cause: BaseException | None = e
    while cause is not None:
        if isinstance(cause, ssl.SSLError):
            return f"TLS error: {cause.reason or cause}"
        if isinstance(cause, OSError) and cause.errno:
            return os.strerror(cause.errno)
        if isinstance(cause, BaseExceptionGroup) and cause.exceptions:
            cause = cause.exceptions[0]  # anyio: one error per address tried
        else:
            cause = cause.__cause__ or cause.__context__
    return str(e) or type(e).__name__


def _split(path: str) -> tuple[str, str]:
    """`call_api` joins base and url with '/': give it the path in two parts."""
    head, _, tail = path.rpartition("/")
    return (head, tail) if head else (path, "")


def resource_words(
    api_version: str, kind: str, kinds: dict[str, tuple[str, bool]] = KNOWN_KINDS
) -> str:
    """How kubectl names a resource type in messages: `deployments.apps`, `services`."""
    group = api_version.rpartition("/")[0]
    plural = kinds.get(kind, (kind.lower() + "s", True))[0]
    return f"{plural}.{group}" if group else plural


def _error(status: int, raw: bytes, what: str) -> ApiError:
    """The shared error for an API answer, with the server's message as its one line."""
    try:
        doc = json.loads(raw)
        if not isinstance(doc, dict):
            doc = {}
    except ValueError:
        doc = {}
    message = doc.get("message") or raw.decode(errors="replace").strip() or f"HTTP {status}"
    message = message.splitlines()[0]
    reason = str(doc.get("reason", ""))
    if status == 404 and not (doc.get("details") or {}).get("name"):
        # A missing object names itself in details; a type the server does not serve does not
        # (the real API server answers "404 page not found" for an unknown group).
        return ResourceTypeMissingError(f"the server does not serve {what}", status, reason, doc)
    if status == 401:
        message = f"unauthorized: {message}"
    return error_for(status, message, reason, doc)


class Kr8sClient:
    """A `ResourceClient` over kr8s. Thread-safe; no request is made until the first call."""

    def __init__(
        self,
        target: kubeconfig.Target,
        page_size: int = PAGE_SIZE,
        request_timeout: float | None = None,
    ) -> None:
        self.default_namespace = target.namespace
        self.context_name = target.context_name
        self.server = target.server
        self.page_size = page_size
        self.request_timeout = request_timeout
        self._target = target
        self._headers = target.impersonation.headers()
        self._kinds = dict(KNOWN_KINDS)
        self._credential: ExecCredential | None = None
        self._generation = 0  # bumped by each (re)authentication
        self._api: Any = None
        self._auth: Any = None
        self._auth_lock: asyncio.Lock | None = None

    # --- credentials (run on the loop) ---

    def _refreshable(self) -> bool:
        return bool(self._target.exec_config or self._target.token_file)

    async def _authenticate(self, stale_generation: int | None = None) -> int:
        """Load credentials (again when `stale_generation` is the current one, i.e. the server
        refused them, or when the exec credential has expired); return the generation."""
        import asyncio

        from kr8s.asyncio import Api

        if self._auth_lock is None:
            self._auth_lock = asyncio.Lock()
        async with self._auth_lock:
            now = datetime.now(UTC)
            expired = self._credential is not None and self._credential.expired(now)
            if self._api is not None and not expired and stale_generation != self._generation:
                return self._generation
            user = self._target.user
            if self._target.exec_config and (
                self._credential is None or expired or stale_generation is not None
            ):
                self._credential = await asyncio.to_thread(
                    run_exec_plugin, self._target.exec_config, self.server
                )
                self._credential.apply(user)
            if self._target.token_file:
                user["token"] = self._read_token_file(self._target.token_file)
            if self._auth is None:
                self._api = Api(bypass_factory=True, kubeconfig=self._target.kr8s_kubeconfig())
                self._auth = self._api.auth = _auth_class()(
                    self._target.kr8s_kubeconfig(), self.context_name
                )
            try:
                await self._auth.reauthenticate()
            except (ValueError, KeyError, OSError) as e:
                raise ConfigError(f'context "{self.context_name}": {e}') from None
            await self._api._create_session()
            self._generation += 1
            return self._generation

    @staticmethod
    def _read_token_file(path: str) -> str:
        try:
            with open(path, encoding="utf-8") as f:
                return f.read().strip()
        except OSError as e:
            raise ConfigError(f"cannot read token file {path}: {e.strerror}") from None

    # --- HTTP (run on the loop) ---

    def _timeout(self, answer: float | None, *, stream: bool = False) -> Any:
        """The httpx.Timeout of one request: CONNECT_TIMEOUT to connect, `answer` (None: no
        limit) to wait for data. --request-timeout N replaces both (0: no limit, kubectl's
        meaning); a stream (watch, `logs -f`) keeps its own `answer`, since waiting for the next
        event is not the server failing to answer."""
        import httpx

        if self.request_timeout is None:
            return httpx.Timeout(answer, connect=CONNECT_TIMEOUT)
        limit = self.request_timeout or None
        return httpx.Timeout(answer if stream else limit, connect=limit)

    def _unreachable(self, e: BaseException) -> UnreachableError:
        from kr8s import APITimeoutError

        if isinstance(e, APITimeoutError):
            within = f" within {self.request_timeout:g}s" if self.request_timeout else " in time"
            return UnreachableError(f"the cluster at {self.server} did not answer{within}")
        return UnreachableError(f"cannot reach the cluster at {self.server}: {_cause(e)}")

    def _request_args(
        self,
        method: str,
        path: str,
        query: dict[str, str] | None,
        body: Any,
        content_type: str | None,
        timeout: Any,  # an httpx.Timeout
    ) -> dict[str, Any]:
        base, url = _split(path)
        headers = [("Accept", JSON), *self._headers]
        args: dict[str, Any] = {
            "method": method,
            "version": "",
            "base": base,
            "url": url,
            "raise_for_status": False,
            "timeout": timeout,
        }
        if query:
            args["params"] = query
        if body is not None:
            args["content"] = json.dumps(body).encode()
            headers.append(("Content-Type", content_type or JSON))
        args["headers"] = headers
        return args

    async def _send(
        self,
        method: str,
        path: str,
        query: dict[str, str] | None,
        body: Any,
        content_type: str | None,
        what: str,
    ) -> Obj:
        import httpx
        from kr8s import APITimeoutError

        timeout = self._timeout(REQUEST_TIMEOUT)
        args = self._request_args(method, path, query, body, content_type, timeout)
        generation = await self._authenticate()
        for attempt in (1, 2):
            try:
                async with self._api.call_api(**args) as resp:
                    status, raw = resp.status_code, resp.content
            except (httpx.TransportError, APITimeoutError) as e:
                raise self._unreachable(e) from None
            if status == 401 and attempt == 1 and self._refreshable():
                generation = await self._authenticate(stale_generation=generation)
                continue
            break
        if status >= 400:
            raise _error(status, raw, what)
        if not raw:
            return {}
        try:
            result: Obj = json.loads(raw)
        except ValueError:
            raise ApiError(f"{method} {path}: the server sent invalid JSON", status) from None
        return result

    async def _lines(
        self, path: str, query: dict[str, str], what: str, read_timeout: float | None
    ) -> AsyncIterator[str]:
        import httpx
        from kr8s import APITimeoutError

        timeout = self._timeout(read_timeout, stream=True)
        args = self._request_args("GET", path, query, None, None, timeout)
        generation = await self._authenticate()
        streaming = False
        try:
            for attempt in (1, 2):
                async with self._api.call_api(stream=True, **args) as resp:
                    if resp.status_code == 401 and attempt == 1 and self._refreshable():
                        await resp.aread()
                        generation = await self._authenticate(stale_generation=generation)
                        continue
                    if resp.status_code >= 400:
                        raise _error(resp.status_code, await resp.aread(), what)
                    streaming = True
                    async for line in resp.aiter_lines():
                        yield line
                    return
        except (httpx.TransportError, APITimeoutError) as e:
            if streaming and isinstance(e, APITimeoutError):
                return  # nothing for `read_timeout`: the stream is over
            raise self._unreachable(e) from None

    def _call(
        self,
        method: str,
        path: str,
        *,
        query: dict[str, str] | None = None,
        body: Any = None,
        content_type: str | None = None,
        what: str = "",
    ) -> Obj:
        return the_loop().run(self._send(method, path, query, body, content_type, what or path))

    # --- paths ---

    def _resource(self, api_version: str, kind: str) -> tuple[str, bool]:
        known = self._kinds.get(kind)
        if known:
            return known
        base = "/api/v1" if api_version == "v1" else f"/apis/{api_version}"
        doc = self._call("GET", base, what=api_version)
        for res in doc.get("resources", []):
            if res.get("kind") == kind and "/" not in res.get("name", ""):
                found = (str(res["name"]), bool(res.get("namespaced")))
                self._kinds[kind] = found
                return found
        raise ResourceTypeMissingError(
            f"the server does not serve {kind} in {api_version}", 404, "NotFound"
        )

    def _path(self, api_version: str, kind: str, namespace: str | None, name: str = "") -> str:
        plural, namespaced = self._resource(api_version, kind)
        base = "/api/v1" if api_version == "v1" else f"/apis/{api_version}"
        if namespaced and namespace:
            base += f"/namespaces/{urllib.parse.quote(namespace, safe='')}"
        base += f"/{plural}"
        return f"{base}/{urllib.parse.quote(name, safe='')}" if name else base

    def _what(self, api_version: str, kind: str) -> str:
        return resource_words(api_version, kind, self._kinds)

    # --- ResourceClient ---

    def get(self, api_version: str, kind: str, namespace: str, name: str) -> Obj | None:
        path = self._path(api_version, kind, namespace, name)
        try:
            return self._call("GET", path, what=self._what(api_version, kind))
        except ResourceTypeMissingError:
            raise
        except NotFoundError:
            return None

    get_live = get  # no caches: every read goes to the API server

    def list(
        self,
        api_version: str,
        kind: str,
        namespace: str | None = None,
        label_selector: str | None = None,
    ) -> tuple[Objs, str]:
        path = self._path(api_version, kind, namespace)
        what = self._what(api_version, kind)
        return list_pages(
            lambda query: self._call("GET", path, query=query, what=what),
            api_version,
            kind,
            self.page_size,
            label_selector,
        )

    def watch(
        self,
        api_version: str,
        kind: str,
        namespace: str | None,
        resource_version: str,
        timeout_seconds: int = 300,
    ) -> Iterator[tuple[str, Obj]]:
        query = {
            "watch": "true",
            "resourceVersion": resource_version,
            "allowWatchBookmarks": "true",
            "timeoutSeconds": str(timeout_seconds),
        }
        path = self._path(api_version, kind, namespace)
        what = self._what(api_version, kind)
        lines = self._lines(path, query, what, read_timeout=timeout_seconds + 30.0)
        for line in the_loop().iterate(lines):
            if not line.strip():
                continue
            event = json.loads(line)
            etype, obj = event.get("type", ""), event.get("object") or {}
            if etype == "ERROR":
                code = int(obj.get("code", 0) or 0) or 500
                raise _error(code, json.dumps(obj).encode(), what)
            yield etype, obj

    def create(self, obj: Obj) -> Obj:
        av, kind = obj["apiVersion"], obj["kind"]
        path = self._path(av, kind, obj.get("metadata", {}).get("namespace"))
        return self._call("POST", path, body=obj, what=self._what(av, kind))

    def replace(self, obj: Obj) -> Obj:
        av, kind, meta = obj["apiVersion"], obj["kind"], obj["metadata"]
        path = self._path(av, kind, meta.get("namespace"), meta["name"])
        return self._call("PUT", path, body=obj, what=self._what(av, kind))

    def patch_json(self, api_version: str, kind: str, namespace: str, name: str, ops: Objs) -> Obj:
        path = self._path(api_version, kind, namespace, name)
        what = self._what(api_version, kind)
        return self._call("PATCH", path, body=ops, content_type=JSON_PATCH, what=what)

    def patch_merge(
        self, api_version: str, kind: str, namespace: str, name: str, patch: Obj
    ) -> Obj:
        path = self._path(api_version, kind, namespace, name)
        what = self._what(api_version, kind)
        return self._call("PATCH", path, body=patch, content_type=MERGE_PATCH, what=what)

    def delete(
        self,
        api_version: str,
        kind: str,
        namespace: str,
        name: str,
        resource_version: str | None = None,
    ) -> bool:
        path = self._path(api_version, kind, namespace, name)
        body = delete_options(resource_version)
        try:
            self._call("DELETE", path, body=body, what=self._what(api_version, kind))
        except ResourceTypeMissingError:
            raise
        except NotFoundError:
            return False
        return True

    # --- what the CLI needs besides ---

    def pod_log(
        self, namespace: str, pod: str, follow: bool = False, since_seconds: int | None = None
    ) -> Iterator[str]:
        """The pod's log lines (without newline); `follow` streams until the pod ends."""
        query: dict[str, str] = {}
        if follow:
            query["follow"] = "true"
        if since_seconds is not None:
            query["sinceSeconds"] = str(since_seconds)
        path = self._path("v1", "Pod", namespace, pod) + "/log"
        lines = self._lines(path, query, "pods/log", None if follow else REQUEST_TIMEOUT)
        for line in the_loop().iterate(lines):
            yield line.rstrip("\r\n")

    def server_version(self) -> Obj:
        return self._call("GET", "/version", what="version")

    def get_path(self, path: str) -> Obj:
        """GET any API path that answers JSON (e.g. a service proxy)."""
        url = urllib.parse.urlsplit(path)
        query = dict(urllib.parse.parse_qsl(url.query)) or None
        return self._call("GET", url.path, query=query, what=url.path)

    def get_text(self, path: str) -> str:
        """GET any API path that answers text, such as Prometheus' exposition format."""
        url = urllib.parse.urlsplit(path)
        query = dict(urllib.parse.parse_qsl(url.query))
        lines = self._lines(url.path, query, url.path, REQUEST_TIMEOUT)
        return "".join(line.rstrip("\r\n") + "\n" for line in the_loop().iterate(lines))


def connect(
    kubeconfig_path: str | None = None,
    context: str | None = None,
    namespace: str | None = None,
    as_user: str | None = None,
    as_groups: tuple[str, ...] = (),
    *,
    request_timeout: float | None = None,
) -> Kr8sClient:
    """Choose the context the way kubectl does and return a client (no request made yet).

    `namespace` overrides the context's; `as_user`/`as_groups` impersonate (--as, --as-group);
    `request_timeout` is --request-timeout in seconds (None: the defaults, 0: no limit).
    """
    target = kubeconfig.resolve(kubeconfig_path, context, namespace, as_user, as_groups)
    return Kr8sClient(target, request_timeout=request_timeout)
