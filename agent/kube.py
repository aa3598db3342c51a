"""The agent's one adapter over a Kubernetes client library.

Everything else in `agent/` sees plain dicts through the shared protocol
(`kubectl_canary.resources`) and the few extra calls below (list, watch, status, events). We use
the official client only for what it does well (kubeconfig / in-cluster credentials, TLS, the
urllib3 pool) and speak REST ourselves, so we choose every content type: CRDs reject strategic
merge, and the generated APIs guess it.

Each request is counted by verb (get, list, watch, create, update, patch, delete) for /metrics.
Transient failures (connection errors, 429, 5xx) are retried here, in one place, with backoff
and `Retry-After`; everything else surfaces as an `ApiError` subclass.
"""

from __future__ import annotations

import json
import logging
import random
import threading
import time
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any
from urllib.parse import quote, urlencode

from kubectl_canary.resources import (
    ApiError,
    GoneError,
    NotFoundError,
    Obj,
    delete_options,
    error_for,
    list_pages,
)

log = logging.getLogger("agent.kube")

JSON = "application/json"
JSON_PATCH = "application/json-patch+json"
MERGE_PATCH = "application/merge-patch+json"

# Verbs we retry on transient failures: reads always; writes only when guarded or idempotent
# (a PUT carries a resourceVersion, a DELETE is idempotent, a create can report AlreadyExists).
_MAX_ATTEMPTS = 4
_REQUEST_TIMEOUT = 30.0


@dataclass(frozen=True)
class ResourceKind:
    api_version: str
    kind: str
    plural: str
    namespaced: bool = True

    @property
    def group(self) -> str:
        return self.api_version.split("/", 1)[0] if "/" in self.api_version else ""

    def base_path(self, namespace: str | None) -> str:
        prefix = f"/apis/{self.api_version}" if "/" in self.api_version else "/api/v1"
        if self.namespaced and namespace:
            return f"{prefix}/namespaces/{quote(namespace, safe='')}/{self.plural}"
        return f"{prefix}/{self.plural}"


# The kinds the agent touches; the plural is the only thing the REST path needs beyond the kind.
# Unknown kinds are resolved once through discovery.
_KNOWN: tuple[ResourceKind, ...] = (
    ResourceKind("v1", "Service", "services"),
    ResourceKind("v1", "ConfigMap", "configmaps"),
    ResourceKind("v1", "Secret", "secrets"),
    ResourceKind("v1", "Event", "events"),
    ResourceKind("v1", "Namespace", "namespaces", namespaced=False),
    ResourceKind("apps/v1", "Deployment", "deployments"),
    ResourceKind("autoscaling/v2", "HorizontalPodAutoscaler", "horizontalpodautoscalers"),
    ResourceKind("coordination.k8s.io/v1", "Lease", "leases"),
    ResourceKind("kubectl-canary.dev/v1alpha1", "Canary", "canaries"),
    ResourceKind("kubectl-canary.dev/v1alpha1", "MetricTemplate", "metrictemplates"),
    ResourceKind("networking.istio.io/v1beta1", "VirtualService", "virtualservices"),
    ResourceKind("networking.istio.io/v1beta1", "DestinationRule", "destinationrules"),
    ResourceKind("networking.istio.io/v1", "VirtualService", "virtualservices"),
    ResourceKind("networking.istio.io/v1", "DestinationRule", "destinationrules"),
    ResourceKind("networking.istio.io/v1alpha3", "VirtualService", "virtualservices"),
    ResourceKind("networking.istio.io/v1alpha3", "DestinationRule", "destinationrules"),
    ResourceKind("gateway.networking.k8s.io/v1", "HTTPRoute", "httproutes"),
    ResourceKind("gateway.networking.k8s.io/v1beta1", "HTTPRoute", "httproutes"),
)


class KubeClient:
    """REST over the official client's connection pool. Thread-safe."""

    page_size = 500  # objects per list request; `list` follows `continue` for the rest

    def __init__(self, configuration: Any) -> None:
        from kubernetes.client import rest

        self._cfg = configuration
        self._host = configuration.host.rstrip("/")
        self._pool = rest.RESTClientObject(configuration).pool_manager
        self._kinds: dict[tuple[str, str], ResourceKind] = {
            (k.api_version, k.kind): k for k in _KNOWN
        }
        self._lock = threading.Lock()
        self._counts: Counter[tuple[str, str]] = Counter()
        self._errors: Counter[tuple[str, str, int]] = Counter()
        if not configuration.verify_ssl:
            # The kubeconfig asked for it (insecure-skip-tls-verify): say so once, not on
            # every request as urllib3 would.
            import urllib3

            urllib3.disable_warnings(urllib3.exceptions.InsecureRequestWarning)
            log.warning("TLS verification of the API server is off (kubeconfig setting)")

    # ----- construction -----

    @classmethod
    def from_kubeconfig(cls, path: str | None, context: str | None = None) -> KubeClient:
        from kubernetes import client, config

        cfg = client.Configuration()
        config.load_kube_config(  # type: ignore[no-untyped-call]
            config_file=path, context=context, client_configuration=cfg
        )
        return cls(cfg)

    @classmethod
    def in_cluster(cls) -> KubeClient:
        from kubernetes import client, config

        cfg = client.Configuration()
        config.load_incluster_config(client_configuration=cfg)  # type: ignore[no-untyped-call]
        return cls(cfg)

    @property
    def api_host(self) -> str:
        """The API server's host name or address, as the configuration names it."""
        from urllib.parse import urlsplit

        return urlsplit(self._host).hostname or ""

    # ----- bookkeeping -----

    def request_counts(self) -> dict[tuple[str, str], int]:
        """API requests sent so far, by (verb, resource), e.g. ("update", "canaries/status")
        or ("get", "apps/deployments"): a snapshot. The same words RBAC rules use."""
        with self._lock:
            return dict(self._counts)

    def error_counts(self) -> dict[tuple[str, str, int], int]:
        """Requests the API server refused, by (verb, resource, HTTP status): a snapshot.
        A 403 here is a permission the agent's RBAC lacks."""
        with self._lock:
            return dict(self._errors)

    def _count_error(self, verb: str, path: str, status: int) -> None:
        key = (verb, resource_of(path), status)
        with self._lock:
            self._errors[key] += 1

    def _count(self, verb: str, path: str) -> None:
        key = (verb, resource_of(path))
        with self._lock:
            self._counts[key] += 1

    def resource(self, api_version: str, kind: str) -> ResourceKind:
        key = (api_version, kind)
        found = self._kinds.get(key)
        if found is None:
            found = self._discover(api_version, kind)
            with self._lock:
                self._kinds[key] = found
        return found

    def _discover(self, api_version: str, kind: str) -> ResourceKind:
        path = f"/apis/{api_version}" if "/" in api_version else "/api/v1"
        doc = self._request("GET", path, verb="get")
        for res in doc.get("resources", []):
            if res.get("kind") == kind and "/" not in res.get("name", ""):
                return ResourceKind(api_version, kind, res["name"], bool(res.get("namespaced")))
        raise NotFoundError(f"kind {kind} not served by {api_version}", 404, "NotFound")

    def _path(self, api_version: str, kind: str, namespace: str | None, name: str = "") -> str:
        base = self.resource(api_version, kind).base_path(namespace)
        return f"{base}/{quote(name, safe='')}" if name else base

    # ----- HTTP -----

    def _headers(self, content_type: str | None) -> dict[str, str]:
        headers = {"Accept": JSON, "User-Agent": "kubectl-canary-agent"}
        if content_type:
            headers["Content-Type"] = content_type
        for setting in self._cfg.auth_settings().values():
            if setting.get("in") == "header" and setting.get("value"):
                headers[setting["key"]] = setting["value"]
        return headers

    def _send(
        self,
        method: str,
        path: str,
        query: dict[str, Any] | None,
        body: Any,
        content_type: str | None,
        timeout: Any,
    ) -> Any:
        url = self._host + path
        if query:
            url += "?" + urlencode(query)
        data = None if body is None else json.dumps(body).encode()
        return self._pool.request(
            method,
            url,
            body=data,
            headers=self._headers(content_type if body is not None else None),
            preload_content=False,
            timeout=timeout,
            retries=False,
        )

    def _request(
        self,
        method: str,
        path: str,
        *,
        verb: str,
        query: dict[str, Any] | None = None,
        body: Any = None,
        content_type: str | None = JSON,
    ) -> Obj:
        import urllib3

        delay = 0.2
        for attempt in range(1, _MAX_ATTEMPTS + 1):
            self._count(verb, path)
            try:
                resp = self._send(method, path, query, body, content_type, _REQUEST_TIMEOUT)
                raw = resp.read()
                resp.release_conn()
            except (urllib3.exceptions.HTTPError, OSError) as exc:
                if attempt == _MAX_ATTEMPTS:
                    raise ApiError(f"{method} {path}: {exc}", 0, "ConnectionError") from exc
                time.sleep(delay)
                delay *= 2
                continue
            status = resp.status
            if 200 <= status < 300:
                return json.loads(raw) if raw else {}
            if (status == 429 or status >= 500) and attempt < _MAX_ATTEMPTS:
                time.sleep(_retry_after(resp.headers.get("Retry-After"), delay))
                delay *= 2
                continue
            self._count_error(verb, path, status)
            raise _error(method, path, status, raw)
        raise AssertionError("unreachable")  # the loop always returns or raises

    # ----- ResourceClient -----

    def get(self, api_version: str, kind: str, namespace: str, name: str) -> Obj | None:
        try:
            return self._request("GET", self._path(api_version, kind, namespace, name), verb="get")
        except NotFoundError:
            return None

    get_live = get  # every read of this client goes to the API server

    def create(self, obj: Obj) -> Obj:
        meta = obj.get("metadata", {})
        path = self._path(obj["apiVersion"], obj["kind"], meta.get("namespace"))
        return self._request("POST", path, verb="create", body=obj)

    def replace(self, obj: Obj) -> Obj:
        meta = obj["metadata"]
        path = self._path(obj["apiVersion"], obj["kind"], meta.get("namespace"), meta["name"])
        return self._request("PUT", path, verb="update", body=obj)

    def patch_json(
        self, api_version: str, kind: str, namespace: str, name: str, ops: list[Obj]
    ) -> Obj:
        path = self._path(api_version, kind, namespace, name)
        return self._request("PATCH", path, verb="patch", body=ops, content_type=JSON_PATCH)

    def patch_merge(
        self, api_version: str, kind: str, namespace: str, name: str, patch: Obj
    ) -> Obj:
        path = self._path(api_version, kind, namespace, name)
        return self._request("PATCH", path, verb="patch", body=patch, content_type=MERGE_PATCH)

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
            self._request("DELETE", path, verb="delete", body=body)
        except NotFoundError:
            return False
        return True

    # ----- beyond ResourceClient -----

    def update_status(self, obj: Obj) -> Obj:
        """PUT the status subresource; guarded by the object's metadata.resourceVersion."""
        meta = obj["metadata"]
        path = self._path(obj["apiVersion"], obj["kind"], meta["namespace"], meta["name"])
        return self._request("PUT", path + "/status", verb="update", body=obj)

    def list(
        self,
        api_version: str,
        kind: str,
        namespace: str | None = None,
        label_selector: str | None = None,
    ) -> tuple[list[Obj], str]:
        """All objects (following `continue` pages) and the list's resourceVersion."""
        path = self._path(api_version, kind, namespace)
        return list_pages(
            lambda query: self._request("GET", path, verb="list", query=query),
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
        timeout_seconds: int,
        silence_seconds: float = 330.0,
    ) -> Iterator[tuple[str, Obj]]:
        """Stream (type, object) from `resource_version`, BOOKMARKs included.

        Ends when the server closes the stream (after `timeout_seconds`); raises GoneError on 410
        and ApiError when nothing, not even a bookmark, arrives for `silence_seconds`.
        """
        import urllib3

        path = self._path(api_version, kind, namespace)
        query = {
            "watch": "true",
            "resourceVersion": resource_version,
            "allowWatchBookmarks": "true",
            "timeoutSeconds": timeout_seconds,
        }
        self._count("watch", path)
        timeout = urllib3.Timeout(connect=10.0, read=silence_seconds)
        try:
            resp = self._send("GET", path, query, None, None, timeout)
        except (urllib3.exceptions.HTTPError, OSError) as exc:
            raise ApiError(f"watch {path}: {exc}", 0, "ConnectionError") from exc
        try:
            if resp.status != 200:
                self._count_error("watch", path, resp.status)
                raise _error("GET", path, resp.status, resp.read())
            buf = b""
            while True:
                try:
                    chunk = resp.read1(65536) if hasattr(resp, "read1") else resp.read(65536)
                except (urllib3.exceptions.HTTPError, OSError) as exc:
                    raise ApiError(f"watch {path}: {exc}", 0, "Silence") from exc
                if not chunk:
                    return
                buf += chunk
                while b"\n" in buf:
                    line, buf = buf.split(b"\n", 1)
                    if not line.strip():
                        continue
                    event = json.loads(line)
                    etype, obj = event.get("type", ""), event.get("object") or {}
                    if etype == "ERROR":
                        code = int(obj.get("code", 0) or 0)
                        if code == 410:
                            raise GoneError(obj.get("message", "gone"), 410, "Expired")
                        raise ApiError(
                            obj.get("message", "watch error"), code, obj.get("reason", "")
                        )
                    yield etype, obj
        finally:
            resp.release_conn()
            resp.close()


def resource_of(path: str) -> str:
    """'/apis/apps/v1/namespaces/x/deployments/y/scale' -> 'apps/deployments/scale';
    '/api/v1/services' -> 'services'; discovery paths -> ''."""
    parts = [p for p in path.split("/") if p]
    if parts[:1] == ["api"]:
        group, rest = "", parts[2:]
    elif parts[:1] == ["apis"] and len(parts) >= 3:
        group, rest = parts[1], parts[3:]
    else:
        return ""
    if len(rest) > 2 and rest[0] == "namespaces":
        rest = rest[2:]
    if not rest:
        return ""
    resource = rest[0] + (f"/{rest[2]}" if len(rest) >= 3 else "")
    return f"{group}/{resource}" if group else resource


def _retry_after(header: str | None, default: float) -> float:
    try:
        return min(10.0, max(0.0, float(header))) if header else default + random.random() * 0.1
    except ValueError:
        return default


def _error(method: str, path: str, status: int, raw: bytes) -> ApiError:
    reason, message = "", raw.decode(errors="replace")[:500]
    try:
        doc = json.loads(raw)
        reason, message = doc.get("reason", ""), doc.get("message", message)
    except (ValueError, AttributeError):
        pass
    return error_for(status, f"{method} {path}: {status} {message}", reason)
