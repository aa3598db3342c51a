"""The one test client: the shared `ResourceClient` (plus the agent's and the plugin's extras)
over the sandbox's in-process store (kubectl_canary/sandbox/store.py).

The store brings the API server's semantics, so tests meet what a cluster does:
resourceVersion conflicts, generation, finalizers and deletionTimestamp, garbage collection,
status subresources, schema defaulting of the CRDs, Service defaults. Our CRDs and the mesh
kinds the providers use (VirtualService, DestinationRule, HTTPRoute) are installed.

On top, a few test hooks, each small:
- `add`, `find`, `all`, `edit`, `remove`: someone else's reads and writes (the agent, a
  controller, the user), not recorded, namespaces created on demand, status written as given;
- `requests` and `writes`: what the code under test asked, as (verb, kind, name);
- `fail(verb, kind, error, times)`: an injected failure (forbidden, conflict, ...);
- `on_write`: callbacks after each write of the code under test (to play the agent);
  `on_watch`: callbacks when a watch starts (to change the cluster while it is watched);
- the plugin's non-resource reads answer from `pod_logs`, `version`, `paths` and `texts`;
  SubjectAccessReviews from `access_review` (unset: the type is not served, as on the sandbox).
"""

from __future__ import annotations

import copy
import functools
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass

from kubectl_canary.kube import resource_words
from kubectl_canary.resources import (
    ApiError,
    GoneError,
    NotFoundError,
    Obj,
    Objs,
    ResourceTypeMissingError,
    error_for,
)
from kubectl_canary.sandbox.errors import NotFound, StoreError
from kubectl_canary.sandbox.kinds import ResourceType
from kubectl_canary.sandbox.patch import PatchError, json_patch, merge_patch
from kubectl_canary.sandbox.store import Store
from kubectl_canary.sandbox.watch import TooOld

# (verb, kind, name), verbs as RBAC names them; a status write is requested as
# ("update", "Kind/status", name) and recorded among the writes as ("update", "Kind", name).
Call = tuple[str, str, str]

# The mesh kinds the providers write; the other mesh CRDs would only slow every test down.
_MESH_KINDS = {"VirtualService", "DestinationRule", "HTTPRoute"}


@functools.cache
def _crds() -> tuple[Obj, ...]:
    """Our CRDs and the providers' mesh CRDs, parsed once per test process."""
    from kubectl_canary.sandbox.__main__ import PACKAGED_MESH_CRDS, crd_paths
    from kubectl_canary.sandbox.crd_files import load_crds

    crds = load_crds(crd_paths(PACKAGED_MESH_CRDS, []))
    return tuple(
        c
        for c in crds
        if c["spec"]["group"] == "kubectl-canary.dev" or c["spec"]["names"]["kind"] in _MESH_KINDS
    )


@dataclass
class _Failure:
    verb: str
    kind: str | None  # None: any kind
    error: ApiError
    times: int | None  # None: every time


@contextmanager
def _store_errors() -> Iterator[None]:
    """The store's exceptions as the shared error hierarchy."""
    try:
        yield
    except StoreError as e:
        raise error_for(e.code, e.message, e.reason) from None


class StoreClient:
    def __init__(self, namespace: str = "default") -> None:
        self.store = Store()
        for crd in _crds():
            self.store.create(crd)
        # The plugin's session defaults (`kubectl_canary.kube.Kube`).
        self.default_namespace = namespace
        self.context_name = "fake"
        self.server = "https://fake.invalid"
        self._ensure_namespace(namespace)
        self.requests: list[Call] = []
        self.writes: list[Call] = []
        self.on_write: list[Callable[[StoreClient, str, Obj], None]] = []
        self.on_watch: list[Callable[[], None]] = []
        self._failures: list[_Failure] = []
        self.pod_logs: dict[tuple[str, str], list[str]] = {}
        self.version: Obj = {"gitVersion": "v1.32.0"}
        self.paths: dict[str, Obj] = {}
        self.texts: dict[str, str] = {}
        self.access_review: Callable[[Obj], bool] | None = None

    # ----- test hooks: someone else's reads and writes, not recorded -----

    def add(self, obj: Obj) -> Obj:
        """Create `obj` with the status it carries (a status subresource ignores it on create)."""
        meta = obj.get("metadata") or {}
        t = self._type(obj["apiVersion"], obj["kind"])
        if t.namespaced:
            namespace = meta.get("namespace") or self.default_namespace
            obj = {**obj, "metadata": {**meta, "namespace": namespace}}
            self._ensure_namespace(namespace)
        created = self.store.create(obj)
        if t.has_status and "status" in obj:
            created = self.store.update_status({**created, "status": obj["status"]})
        return created

    def find(self, kind: str, name: str, namespace: str | None = None) -> Obj | None:
        """The stored object of `kind` named `name` (in `namespace`, or in any), or None."""
        for obj in self.all(kind):
            meta = obj["metadata"]
            if meta["name"] == name and namespace in (None, meta.get("namespace", "")):
                return obj
        return None

    def all(self, kind: str | None = None) -> Objs:
        """Every stored object of `kind` (None: of every kind), in all namespaces."""
        if kind is None:
            types = self.store.resource_types()
        else:
            found = self._type_of_kind(kind)
            types = [found] if found is not None else []
        return [o for t in types for o in self.store.list(t.api_version(), t.kind)]

    def edit(
        self, kind: str, name: str, change: Callable[[Obj], None], namespace: str | None = None
    ) -> Obj:
        """Read, `change` in place, write back (status too): a controller's or user's edit."""
        old = self.find(kind, name, namespace)
        assert old is not None, f"{kind} {name} does not exist"
        new = copy.deepcopy(old)
        change(new)
        new["metadata"]["resourceVersion"] = old["metadata"]["resourceVersion"]
        t = self._type(new["apiVersion"], kind)
        if t.has_status and new.get("status") != old.get("status"):
            new = {**new, "metadata": self.store.update_status(new)["metadata"]}
        return self.store.update(new)

    def remove(self, kind: str, name: str, namespace: str | None = None) -> None:
        """Delete as someone else would (finalizers still hold the object)."""
        found = self.find(kind, name, namespace)
        assert found is not None, f"{kind} {name} does not exist"
        meta = found["metadata"]
        self.store.delete(found["apiVersion"], kind, meta.get("namespace"), name)

    def fail(self, verb: str, kind: str | None, error: ApiError, times: int | None = 1) -> None:
        """Make `verb` on `kind` (None: any) raise `error`, `times` times (None: always)."""
        self._failures.append(_Failure(verb, kind, error, times))

    # ----- the shared ResourceClient -----

    def get(self, api_version: str, kind: str, namespace: str, name: str) -> Obj | None:
        self._request("get", kind, name)
        self._type(api_version, kind)
        try:
            return self.store.get(api_version, kind, namespace, name)
        except NotFound:
            return None

    get_live = get  # no cache in front of this client

    def list(
        self,
        api_version: str,
        kind: str,
        namespace: str | None = None,
        label_selector: str | None = None,
    ) -> tuple[Objs, str]:
        self._request("list", kind, label_selector or "")
        self._type(api_version, kind)
        with _store_errors():
            items = self.store.list(api_version, kind, namespace, label_selector)
        return items, str(self.store.resource_version)

    def watch(
        self,
        api_version: str,
        kind: str,
        namespace: str | None,
        resource_version: str,
        timeout_seconds: int,
    ) -> Iterator[tuple[str, Obj]]:
        """The store's changes of `kind` after `resource_version`, then the end of the watch:
        KeyboardInterrupt, as when the user presses Ctrl-C once the cluster is quiet."""
        self._request("watch", kind, "")
        t = self._type(api_version, kind)
        for hook in list(self.on_watch):
            hook()
        try:
            events = self.store.events.since(t.key, int(resource_version or 0))
        except TooOld:
            raise GoneError(
                f"too old resource version: {resource_version}", 410, "Expired"
            ) from None
        for event in events:
            if namespace in (None, event.obj["metadata"].get("namespace")):
                yield event.type, copy.deepcopy(event.obj)
        raise KeyboardInterrupt

    def create(self, obj: Obj) -> Obj:
        self._request("create", obj["kind"], obj.get("metadata", {}).get("name", ""))
        if obj["kind"] == "SubjectAccessReview" and self.access_review is not None:
            return {**obj, "status": {"allowed": self.access_review(obj["spec"])}}
        self._type(obj["apiVersion"], obj["kind"])
        with _store_errors():
            created = self.store.create(obj)
        return self._written("create", created)

    def replace(self, obj: Obj) -> Obj:
        self._request("update", obj["kind"], obj["metadata"]["name"])
        self._type(obj["apiVersion"], obj["kind"])
        with _store_errors():
            replaced = self.store.update(obj)
        return self._written("update", replaced)

    def patch_json(self, api_version: str, kind: str, namespace: str, name: str, ops: Objs) -> Obj:
        return self._patch(api_version, kind, namespace, name, lambda live: json_patch(live, ops))

    def patch_merge(
        self, api_version: str, kind: str, namespace: str, name: str, patch: Obj
    ) -> Obj:
        return self._patch(
            api_version, kind, namespace, name, lambda live: merge_patch(live, patch)
        )

    def delete(
        self,
        api_version: str,
        kind: str,
        namespace: str,
        name: str,
        resource_version: str | None = None,
    ) -> bool:
        self._request("delete", kind, name)
        self._type(api_version, kind)
        try:
            last, _ = self.store.delete_returning(
                api_version, kind, namespace, name, precondition_rv=resource_version
            )
        except NotFound:
            return False
        except StoreError as e:
            raise error_for(e.code, e.message, e.reason) from None
        self._written("delete", last)
        return True

    # ----- the agent's extra -----

    def update_status(self, obj: Obj) -> Obj:
        self._request("update", f"{obj['kind']}/status", obj["metadata"]["name"])
        with _store_errors():
            updated = self.store.update_status(obj)
        return self._written("update", updated)

    # ----- the plugin's extras (`kubectl_canary.kube.Kube`) -----

    def pod_log(
        self, namespace: str, pod: str, follow: bool = False, since_seconds: int | None = None
    ) -> Iterator[str]:
        self._request("get", "Pod/log", pod)
        if (namespace, pod) not in self.pod_logs:
            raise NotFoundError(f'pods "{pod}" not found', 404, "NotFound")
        yield from self.pod_logs[(namespace, pod)]

    def server_version(self) -> Obj:
        return dict(self.version)

    def get_path(self, path: str) -> Obj:
        self._request("get", "path", path)
        if path not in self.paths:
            raise NotFoundError(f"{path} not found", 404, "NotFound")
        return copy.deepcopy(self.paths[path])

    def get_text(self, path: str) -> str:
        self._request("get", "path", path)
        if path not in self.texts:
            raise NotFoundError(f"{path} not found", 404, "NotFound")
        return self.texts[path]

    # ----- internals -----

    def _patch(
        self,
        api_version: str,
        kind: str,
        namespace: str,
        name: str,
        apply: Callable[[Obj], Obj],
    ) -> Obj:
        """Read, apply, update guarded by the read's resourceVersion: a patch in one step,
        as the API server's registry does it."""
        self._request("patch", kind, name)
        self._type(api_version, kind)
        with _store_errors():
            live = self.store.get(api_version, kind, namespace, name)
            try:
                new = apply(live)
            except PatchError as e:
                raise ApiError(str(e), 422, "Invalid") from None
            # Guarded like the registry's read-modify-write; a status subresource keeps its
            # status, whatever the patch says, as on a real server.
            new["metadata"]["resourceVersion"] = live["metadata"]["resourceVersion"]
            patched = self.store.update(new)
        return self._written("patch", patched)

    def _request(self, verb: str, kind: str, name: str) -> None:
        self.requests.append((verb, kind, name))
        base_kind = kind.split("/")[0]
        for failure in list(self._failures):
            if failure.verb == verb and failure.kind in (None, base_kind):
                if failure.times is not None:
                    failure.times -= 1
                    if failure.times <= 0:
                        self._failures.remove(failure)
                raise failure.error

    def _written(self, verb: str, obj: Obj) -> Obj:
        self.writes.append((verb, obj["kind"], obj["metadata"]["name"]))
        for hook in list(self.on_write):
            hook(self, verb, obj)
        return obj

    def _type(self, api_version: str, kind: str) -> ResourceType:
        try:
            return self.store.type_for(api_version, kind)
        except NotFound:
            # Worded as the plugin's client words it.
            what = resource_words(api_version, kind)
            raise ResourceTypeMissingError(
                f"the server does not serve {what}", 404, "NotFound"
            ) from None

    def _type_of_kind(self, kind: str) -> ResourceType | None:
        found = [t for t in self.store.resource_types() if t.kind == kind]
        # Event exists in the core group and in events.k8s.io: the core one is meant.
        found.sort(key=lambda t: t.group != "")
        return found[0] if found else None

    def _ensure_namespace(self, namespace: str) -> None:
        try:
            self.store.get("v1", "Namespace", None, namespace)
        except NotFound:
            self.store.create(
                {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": namespace}}
            )
