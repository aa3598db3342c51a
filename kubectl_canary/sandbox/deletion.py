"""Deletion as the API server and its controllers carry it out: preconditions, finalizers
(an object with some only gets a deletionTimestamp), garbage collection of dependents through
ownerReferences, namespace termination, and the removal of a CRD's objects with it."""

from __future__ import annotations

from typing import Any

from .admission import CRD_KEY, NAMESPACE_KEY
from .errors import Conflict, Forbidden
from .kinds import ResourceType, crd_to_types
from .registry import Registry
from .stored import StoredObject, copy_json, now_rfc3339

Obj = dict[str, Any]
ObjKey = tuple[str, str]  # (namespace or "", name)

PROTECTED_NAMESPACES = ("default", "kube-system", "kube-public")


class Deletions(Registry):
    def delete(
        self,
        api_version: str,
        kind: str,
        namespace: str | None,
        name: str,
        *,
        propagation_policy: str = "Background",
        precondition_uid: str | None = None,
        precondition_rv: str | None = None,
    ) -> None:
        self.delete_returning(
            api_version,
            kind,
            namespace,
            name,
            propagation_policy=propagation_policy,
            precondition_uid=precondition_uid,
            precondition_rv=precondition_rv,
        )

    def delete_returning(
        self,
        api_version: str,
        kind: str,
        namespace: str | None,
        name: str,
        *,
        propagation_policy: str = "Background",
        precondition_uid: str | None = None,
        precondition_rv: str | None = None,
    ) -> tuple[Obj, bool]:
        """Delete and return (last state of the object, whether it is gone now).

        An object with finalizers only gets its deletionTimestamp; it goes once the last
        finalizer is removed by an update."""
        t = self.type_for(api_version, kind)
        with self._writing():
            key = (self._ns(t, namespace), name)
            old = self._objects[t.key].get(key)
            if old is None:
                raise self._not_found(t, name)
            meta = old["metadata"]
            if precondition_uid and precondition_uid != meta["uid"]:
                raise Conflict(
                    f"Precondition failed: UID in precondition: {precondition_uid}, "
                    f"UID in object meta: {meta['uid']}",
                    kind=t.plural,
                    name=name,
                    group=t.group,
                )
            if precondition_rv and precondition_rv != meta["resourceVersion"]:
                raise Conflict(
                    "Precondition failed: ResourceVersion in precondition: "
                    f"{precondition_rv}, ResourceVersion in object meta: "
                    f"{meta['resourceVersion']}",
                    kind=t.plural,
                    name=name,
                    group=t.group,
                )
            if t.key == NAMESPACE_KEY and name in PROTECTED_NAMESPACES:
                raise Forbidden(
                    f'namespaces "{name}" is forbidden: this namespace may not be deleted',
                    kind="namespaces",
                    name=name,
                )
            gone = self._delete(t, key, propagation_policy)
            current = self._objects[t.key].get(key, old)
            return self._out(t, current, api_version), gone

    def _delete(self, t: ResourceType, key: ObjKey, propagation: str) -> bool:
        old = self._objects[t.key][key]
        meta = old["metadata"]
        orphan = propagation == "Orphan"
        if t.key == NAMESPACE_KEY:
            self._mark_deleting(t, key, phase="Terminating")
            self._empty_namespace(key[1])
            return self._maybe_finish_namespace(key[1])
        if meta.get("finalizers"):
            if not meta.get("deletionTimestamp"):
                self._mark_deleting(t, key)
            return False
        self._remove(t, key, old, orphan=orphan)
        return True

    def _mark_deleting(self, t: ResourceType, key: ObjKey, phase: str | None = None) -> None:
        old = self._objects[t.key][key]
        if old["metadata"].get("deletionTimestamp"):
            return
        new = copy_json(old)
        new["metadata"]["deletionTimestamp"] = now_rfc3339()
        new["metadata"]["deletionGracePeriodSeconds"] = 0
        if phase:
            new.setdefault("status", {})["phase"] = phase
        new["metadata"]["resourceVersion"] = self._next_rv()
        new = self._objects[t.key][key] = StoredObject(new)
        self._commit(t, "MODIFIED", new, old)

    def _remove(self, t: ResourceType, key: ObjKey, last: Obj, *, orphan: bool = False) -> None:
        """Drop an object for good, then collect what it owned and finish its namespace."""
        old = self._objects[t.key].pop(key)
        gone = copy_json(last)
        gone["metadata"]["resourceVersion"] = self._next_rv()
        uid = gone["metadata"]["uid"]
        self._uids.pop(uid, None)
        self._commit(t, "DELETED", gone, old)
        if t.key == CRD_KEY:
            self._uninstall_crd(gone)
        self._collect_dependents(uid, orphan=orphan)
        if key[0]:
            self._maybe_finish_namespace(key[0])

    def _collect_dependents(self, owner_uid: str, *, orphan: bool) -> None:
        """Garbage collection (background propagation): dependents whose owners are all gone
        are deleted; those with another live owner, or orphaned, lose the dangling reference."""
        for kind_key, objects in list(self._objects.items()):
            t = self._types.get(kind_key)
            if t is None:
                continue
            for key, obj in list(objects.items()):
                refs = obj["metadata"].get("ownerReferences") or []
                if not any(r.get("uid") == owner_uid for r in refs):
                    continue
                if key not in objects:  # removed meanwhile by a nested collection
                    continue
                remaining = [r for r in refs if r.get("uid") != owner_uid]
                live = [r for r in remaining if r.get("uid") in self._uids]
                if orphan or live:
                    new = copy_json(obj)
                    if remaining:
                        new["metadata"]["ownerReferences"] = remaining
                    else:
                        new["metadata"].pop("ownerReferences", None)
                    new["metadata"]["resourceVersion"] = self._next_rv()
                    new = objects[key] = StoredObject(new)
                    self._commit(t, "MODIFIED", new, obj)
                else:
                    self._delete(t, key, "Background")

    def _empty_namespace(self, namespace: str) -> None:
        for kind_key, objects in list(self._objects.items()):
            t = self._types.get(kind_key)
            if t is None or not t.namespaced:
                continue
            for key in [k for k in objects if k[0] == namespace]:
                if key in objects:
                    self._delete(t, key, "Background")

    def _maybe_finish_namespace(self, namespace: str) -> bool:
        ns_key = ("", namespace)
        ns = self._objects[NAMESPACE_KEY].get(ns_key)
        if ns is None:
            return True
        if not ns["metadata"].get("deletionTimestamp"):
            return False
        for kind_key, objects in self._objects.items():
            t = self._types.get(kind_key)
            if t is not None and t.namespaced and any(k[0] == namespace for k in objects):
                return False
        self._remove(self._types[NAMESPACE_KEY], ns_key, ns)
        return True

    def _uninstall_crd(self, crd: Obj) -> None:
        t = crd_to_types(crd)
        served = self._types.get(t.key)
        if served is None or served.crd_name != t.crd_name:
            return
        for key in list(self._objects.get(t.key, {})):
            obj = self._objects[t.key][key]
            self._remove(t, key, obj)
        del self._types[t.key]
        self._objects.pop(t.key, None)
        self.types_generation += 1
        self.events.forget(t.key, self._rv)
