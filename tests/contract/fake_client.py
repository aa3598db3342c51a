"""An in-memory ResourceClient with the API server semantics routers depend on.

resourceVersion guards replace (409 when stale), create of an existing name is a 409
AlreadyExists, a JSON patch that does not apply (a failed `test` among them) is a 422, patches
follow the sandbox's RFC 6902/7386 code, and Services get server-assigned/defaulted fields
(clusterIP, sessionAffinity) so code that compares what it wrote with what it reads back meets
the same surprises as on a real server. Every write is recorded in `writes` so tests can
assert that nothing was written.
"""

from __future__ import annotations

import copy
import itertools

from kubectl_canary.resources import ApiError, ConflictError, NotFoundError, Obj
from kubectl_canary.sandbox.patch import PatchError, json_patch, merge_patch

Key = tuple[str, str, str, str]


def _group(api_version: str) -> str:
    return api_version.rsplit("/", 1)[0] if "/" in api_version else ""


class FakeClient:
    def __init__(self) -> None:
        # Objects are stored per (group, kind): versions of one kind share objects, as on a
        # real server (Istio serves VirtualService as v1, v1beta1 and v1alpha3).
        self.objects: dict[Key, Obj] = {}
        self.writes: list[tuple[str, str, str]] = []
        self._versions = itertools.count(1)
        self._uids = itertools.count(1)
        self._stale_next = 0

    # ----- test helpers -----

    def put(self, obj: Obj) -> Obj:
        """Store an object as if someone else had created it (not counted as our write)."""
        return self._store(copy.deepcopy(obj), created=True)

    def make_next_replaces_conflict(self, count: int) -> None:
        """Simulate a concurrent writer: the next `count` replaces find a newer version."""
        self._stale_next = count

    def set_status(
        self, api_version: str, kind: str, namespace: str, name: str, status: Obj
    ) -> None:
        obj = self.objects[self._key(api_version, kind, namespace, name)]
        obj["status"] = copy.deepcopy(status)

    # ----- ResourceClient -----

    def get(self, api_version: str, kind: str, namespace: str, name: str) -> Obj | None:
        obj = self.objects.get(self._key(api_version, kind, namespace, name))
        if obj is None:
            return None
        result = copy.deepcopy(obj)
        result["apiVersion"] = api_version
        return result

    get_live = get  # no cache in front of this fake

    def create(self, obj: Obj) -> Obj:
        key = self._key_of(obj)
        if key in self.objects:
            raise ConflictError(f"{key} already exists", 409, "AlreadyExists")
        self.writes.append(("create", obj["kind"], obj["metadata"]["name"]))
        return copy.deepcopy(self._store(copy.deepcopy(obj), created=True))

    def replace(self, obj: Obj) -> Obj:
        key = self._key_of(obj)
        live = self.objects.get(key)
        if live is None:
            raise NotFoundError(f"{key} not found", 404, "NotFound")
        if self._stale_next > 0:
            self._stale_next -= 1
            live["metadata"]["resourceVersion"] = str(next(self._versions))
        sent = obj["metadata"].get("resourceVersion")
        if sent and sent != live["metadata"]["resourceVersion"]:
            raise ConflictError(f"{key}: the object has been modified", 409, "Conflict")
        self.writes.append(("replace", obj["kind"], obj["metadata"]["name"]))
        new = copy.deepcopy(obj)
        new["metadata"]["uid"] = live["metadata"]["uid"]
        return copy.deepcopy(self._store(new, created=False, old=live))

    def patch_json(
        self, api_version: str, kind: str, namespace: str, name: str, ops: list[Obj]
    ) -> Obj:
        key = self._key(api_version, kind, namespace, name)
        live = self.objects.get(key)
        if live is None:
            raise NotFoundError(f"{key} not found", 404, "NotFound")
        try:
            doc = json_patch(live, ops)
        except PatchError as e:
            raise ApiError(str(e), 422, "Invalid") from e
        self.writes.append(("patch", kind, name))
        return copy.deepcopy(self._store(doc, created=False, old=live))

    def patch_merge(
        self, api_version: str, kind: str, namespace: str, name: str, patch: Obj
    ) -> Obj:
        key = self._key(api_version, kind, namespace, name)
        live = self.objects.get(key)
        if live is None:
            raise NotFoundError(f"{key} not found", 404, "NotFound")
        self.writes.append(("patch", kind, name))
        return copy.deepcopy(self._store(merge_patch(live, patch), created=False, old=live))

    def delete(
        self,
        api_version: str,
        kind: str,
        namespace: str,
        name: str,
        resource_version: str | None = None,
    ) -> bool:
        key = self._key(api_version, kind, namespace, name)
        if self.objects.pop(key, None) is None:
            return False
        self.writes.append(("delete", kind, name))
        return True

    # ----- internals -----

    def _key(self, api_version: str, kind: str, namespace: str, name: str) -> Key:
        return (_group(api_version), kind, namespace, name)

    def _key_of(self, obj: Obj) -> Key:
        meta = obj["metadata"]
        return self._key(obj["apiVersion"], obj["kind"], meta.get("namespace", ""), meta["name"])

    def _store(self, obj: Obj, created: bool, old: Obj | None = None) -> Obj:
        meta = obj.setdefault("metadata", {})
        meta["resourceVersion"] = str(next(self._versions))
        if created:
            meta["uid"] = f"uid-{next(self._uids)}"
            meta["generation"] = 1
        elif old is not None:
            changed = obj.get("spec") != old.get("spec")
            meta["generation"] = old["metadata"].get("generation", 1) + (1 if changed else 0)
        if obj["kind"] == "Service":
            self._default_service(obj, old)
        self.objects[self._key_of(obj)] = obj
        return obj

    def _default_service(self, obj: Obj, old: Obj | None) -> None:
        spec = obj.setdefault("spec", {})
        old_ip = (old or {}).get("spec", {}).get("clusterIP")
        if old_ip and spec.get("clusterIP") not in (None, old_ip):
            raise ApiError("spec.clusterIP: field is immutable", 422, "Invalid")
        spec.setdefault("clusterIP", old_ip or f"10.96.0.{next(self._uids) % 250 + 1}")
        spec.setdefault("clusterIPs", [spec["clusterIP"]])
        spec.setdefault("sessionAffinity", "None")
        for port in spec.get("ports") or []:
            port.setdefault("protocol", "TCP")
