"""The one resource protocol shared by the agent and the plugin, and its one error hierarchy.

Two thin adapters implement `Resources`: the agent's over the official `kubernetes` client
(`agent/kube.py`) and the plugin's over kr8s (`kubectl_canary/kube.py`). Everything that both
sides use (the objects layer in `kubectl_canary/objects/`: builders, the create-or-update writer,
routers, the hand-back) is written against this protocol only, so it runs unchanged in the
agent's revert and in the plugin's `offboard`. Tests implement it over the sandbox's store.

Contract (checked by tests/contract/test_resources.py over both adapters, on the sandbox and on
the real API server):
- `get` returns None for a missing object; it never raises NotFoundError for one. A missing
  resource *type* (e.g. CRDs not installed) is ResourceTypeMissingError.
- `namespace` is "" for cluster-scoped kinds; `list(..., namespace=None)` lists all namespaces.
- `list` follows `continue` pages and returns (items, resourceVersion); items carry apiVersion
  and kind like the result of a `get`.
- `replace` is guarded by metadata.resourceVersion (ConflictError when stale); `patch_json`
  can be guarded by a `test` op on /metadata/resourceVersion; `delete` can be guarded by a
  resourceVersion precondition.
- `delete` is idempotent: False when the object was already gone.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any, Protocol

Obj = dict[str, Any]
Objs = list[Obj]  # an alias: inside `Resources`, `list` names the method


class KubeError(Exception):
    """An expected failure talking to the cluster; str() is one line a person can act on."""


class ConfigError(KubeError):
    """No usable kubeconfig / context / credentials."""


class UnreachableError(KubeError):
    """The API server did not answer."""


class ApiError(KubeError):
    """The API server refused a request; `status` is the HTTP status (0 when no response)."""

    def __init__(
        self, message: str, status: int = 0, reason: str = "", body: Obj | None = None
    ) -> None:
        super().__init__(message)
        self.status = status
        self.reason = reason
        self.body = body or {}


class NotFoundError(ApiError):
    pass


class ResourceTypeMissingError(NotFoundError):
    """The API server does not serve this resource type (e.g. the CRDs are not installed)."""


class UnauthorizedError(ApiError):
    pass


class ForbiddenError(ApiError):
    pass


class ConflictError(ApiError):
    """A write lost a race (409): re-read and retry."""


class AlreadyExistsError(ConflictError):
    """409 on create: the object exists already."""


class GoneError(ApiError):
    """410: a watch's resourceVersion is too old; list again."""


def error_for(status: int, message: str, reason: str = "", body: Obj | None = None) -> ApiError:
    """The error class for an HTTP status and the Status object's reason."""
    cls: type[ApiError] = ApiError
    if status == 401:
        cls = UnauthorizedError
    elif status == 403:
        cls = ForbiddenError
    elif status == 404:
        cls = NotFoundError
    elif status == 409:
        cls = AlreadyExistsError if reason == "AlreadyExists" else ConflictError
    elif status == 410:
        cls = GoneError
    return cls(message, status, reason, body)


def list_pages(
    fetch: Callable[[dict[str, str]], Obj],
    api_version: str,
    kind: str,
    page_size: int,
    label_selector: str | None,
) -> tuple[Objs, str]:
    """Every item of a list, page by page (`limit`, then `continue`), and the resourceVersion
    of the list. `fetch` GETs the collection with the query it is given."""
    query = {"limit": str(page_size)}
    if label_selector:
        query["labelSelector"] = label_selector
    items: Objs = []
    while True:
        doc = fetch(dict(query))
        for item in doc.get("items") or []:
            # List items carry no apiVersion/kind; restore them so items look like gets.
            item.setdefault("apiVersion", api_version)
            item.setdefault("kind", kind)
            items.append(item)
        meta = doc.get("metadata") or {}
        if not meta.get("continue"):
            return items, str(meta.get("resourceVersion", ""))
        query["continue"] = meta["continue"]


def delete_options(resource_version: str | None) -> Obj:
    """The body of a DELETE both adapters send: dependents go in the background (garbage
    collection), and a resourceVersion, when given, must still be the object's."""
    body: Obj = {"apiVersion": "v1", "kind": "DeleteOptions", "propagationPolicy": "Background"}
    if resource_version:
        body["preconditions"] = {"resourceVersion": resource_version}
    return body


class Resources(Protocol):
    def get(self, api_version: str, kind: str, namespace: str, name: str) -> Obj | None:
        """The object, or None when it does not exist."""

    def list(
        self,
        api_version: str,
        kind: str,
        namespace: str | None = None,
        label_selector: str | None = None,
    ) -> tuple[Objs, str]:
        """Every object (all pages) and the list's resourceVersion; namespace None = all."""

    def watch(
        self,
        api_version: str,
        kind: str,
        namespace: str | None,
        resource_version: str,
        timeout_seconds: int,
    ) -> Iterator[tuple[str, Obj]]:
        """(type, object) from `resource_version`, BOOKMARKs included, until the server closes
        the stream; GoneError on 410."""

    def create(self, obj: Obj) -> Obj:
        """AlreadyExistsError when the name is taken."""

    def replace(self, obj: Obj) -> Obj:
        """PUT; guarded by metadata.resourceVersion, ConflictError when stale."""

    def patch_json(self, api_version: str, kind: str, namespace: str, name: str, ops: Objs) -> Obj:
        """RFC 6902 JSON patch (a `test` of /metadata/resourceVersion guards it)."""

    def patch_merge(
        self, api_version: str, kind: str, namespace: str, name: str, patch: Obj
    ) -> Obj:
        """RFC 7386 JSON merge patch."""

    def delete(
        self,
        api_version: str,
        kind: str,
        namespace: str,
        name: str,
        resource_version: str | None = None,
    ) -> bool:
        """Background propagation; a resourceVersion precondition when given (ConflictError
        when the object changed). False when it was already gone."""


class ResourceClient(Resources, Protocol):
    """`Resources` plus a read that is never served from a cache.

    The agent reads from watch caches (`agent/cached_client.py`); a write or a destructive step
    (delete, hand-back) is decided on `get_live`. A client without caches (the plugin's, the
    agent's bare `KubeClient`) sets `get_live = get`.
    """

    def get_live(self, api_version: str, kind: str, namespace: str, name: str) -> Obj | None:
        """A read from the API server itself."""
