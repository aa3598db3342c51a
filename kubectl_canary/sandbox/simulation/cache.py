"""The simulation's own view of the objects it cares about, fed by store events.

Controllers read from here instead of listing the store on every sync (the informer pattern),
with indexes so no sync scans a namespace: owner uid -> dependents (a ReplicaSet's pods), pod
label -> pods and Service selector label -> Services (a Service's pods and a pod's Services).
Writes made by the controllers are applied here at once (write-through), because the store
may deliver their events a little later from another thread; events older than what is cached
are ignored, using the store's global resourceVersion order.
"""

from __future__ import annotations

import threading
from collections import deque
from typing import Any

from kubectl_canary.sandbox.simulation.objects import (
    API_VERSIONS,
    POD,
    SERVICE,
    KindKey,
    Obj,
    controller_ref,
    kind_key,
    labels_of,
    meta,
    name_of,
    namespace_of,
    resource_version,
    uid_of,
)

Key = tuple[str, str]  # (namespace, name)
_TOMBSTONES = 20000


class ObjectCache:
    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._objects: dict[KindKey, dict[str, dict[str, Obj]]] = {k: {} for k in API_VERSIONS}
        self._dependents: dict[str, set[tuple[KindKey, Key]]] = {}
        # (namespace, label key, label value) -> names: pod labels, and Service selector pairs.
        self._pods_by_label: dict[tuple[str, str, str], set[str]] = {}
        self._services_by_selector: dict[tuple[str, str, str], set[str]] = {}
        self._deleted_uids: set[str] = set()
        self._deleted_order: deque[str] = deque()

    def apply(self, event_type: str, obj: Obj) -> tuple[Obj | None, Obj | None] | None:
        """Record an event; returns (old, new) when it changed the cache, else None."""
        kind = kind_key(obj)
        by_namespace = self._objects.get(kind)
        if by_namespace is None:
            return None
        namespace, name, uid = namespace_of(obj), name_of(obj), uid_of(obj)
        with self._lock:
            objects = by_namespace.setdefault(namespace, {})
            old = objects.get(name)
            if old is not None and resource_version(old) > resource_version(obj):
                return None  # a late event: the cache already holds a newer state
            if event_type == "DELETED":
                if old is None or uid_of(old) != uid:
                    return None
                del objects[name]
                self._unindex(kind, old)
                self._tombstone(uid)
                return old, None
            if uid in self._deleted_uids:
                return None  # a late event for an object already deleted
            if old is not None:
                self._unindex(kind, old)
            objects[name] = obj
            self._index(kind, obj)
            return old, obj

    def forget(self, kind: KindKey, namespace: str, name: str) -> None:
        """Drop an object this process just deleted (its DELETED event may come later)."""
        with self._lock:
            old = self._objects[kind].get(namespace, {}).pop(name, None)
            if old is not None:
                self._unindex(kind, old)
                self._tombstone(uid_of(old))

    def _tombstone(self, uid: str) -> None:
        if uid and uid not in self._deleted_uids:
            self._deleted_uids.add(uid)
            self._deleted_order.append(uid)
            if len(self._deleted_order) > _TOMBSTONES:
                self._deleted_uids.discard(self._deleted_order.popleft())

    def _label_pairs(
        self, kind: KindKey, obj: Obj
    ) -> tuple[dict[tuple[str, str, str], set[str]], dict[str, Any]]:
        """The label index this object belongs to and the (key, value) pairs it is filed by."""
        if kind == POD:
            return self._pods_by_label, labels_of(obj)
        if kind == SERVICE:
            return self._services_by_selector, (obj.get("spec") or {}).get("selector") or {}
        return {}, {}

    def _index(self, kind: KindKey, obj: Obj) -> None:
        owner = controller_ref(obj)
        if owner is not None:
            self._dependents.setdefault(str(owner.get("uid")), set()).add(
                (kind, (namespace_of(obj), name_of(obj)))
            )
        index, pairs = self._label_pairs(kind, obj)
        for key, value in pairs.items():
            index.setdefault((namespace_of(obj), key, str(value)), set()).add(name_of(obj))

    def _unindex(self, kind: KindKey, obj: Obj) -> None:
        index, pairs = self._label_pairs(kind, obj)
        for key, value in pairs.items():
            entry = (namespace_of(obj), key, str(value))
            names = index.get(entry)
            if names is not None:
                names.discard(name_of(obj))
                if not names:
                    del index[entry]
        owner = controller_ref(obj)
        if owner is not None:
            dependents = self._dependents.get(str(owner.get("uid")))
            if dependents is not None:
                dependents.discard((kind, (namespace_of(obj), name_of(obj))))
                if not dependents:
                    del self._dependents[str(owner.get("uid"))]

    def get(self, kind: KindKey, namespace: str, name: str) -> Obj | None:
        with self._lock:
            return self._objects[kind].get(namespace, {}).get(name)

    def count(self, kind: KindKey) -> int:
        with self._lock:
            return sum(len(objects) for objects in self._objects[kind].values())

    def all(self, kind: KindKey) -> list[Obj]:
        with self._lock:
            return [obj for objects in self._objects[kind].values() for obj in objects.values()]

    def pods_matching(self, namespace: str, selector: dict[str, str]) -> list[Obj]:
        """Pods whose labels include every pair of a Service-style selector (empty: none)."""
        if not selector:
            return []
        with self._lock:
            sets = [
                self._pods_by_label.get((namespace, k, str(v)), set()) for k, v in selector.items()
            ]
            names = set.intersection(*sorted(sets, key=len))
            pods = self._objects[POD].get(namespace, {})
            return [pods[n] for n in names if n in pods]

    def services_selecting(self, namespace: str, labels: dict[str, str]) -> list[Obj]:
        """Services in `namespace` whose selector matches these pod labels."""
        with self._lock:
            candidates: set[str] = set()
            for key, value in labels.items():
                candidates |= self._services_by_selector.get((namespace, key, value), set())
            services = self._objects[SERVICE].get(namespace, {})
            found = []
            for name in candidates:
                service = services.get(name)
                selector = (service or {}).get("spec", {}).get("selector") or {}
                if service is not None and all(labels.get(k) == v for k, v in selector.items()):
                    found.append(service)
            return found

    def dependents(self, kind: KindKey, owner: Obj) -> list[Obj]:
        """Objects of `kind` whose controller ownerReference points at `owner`."""
        uid = uid_of(owner)
        with self._lock:
            found = []
            for dep_kind, (namespace, name) in self._dependents.get(uid, ()):
                if dep_kind == kind:
                    obj = self._objects[kind].get(namespace, {}).get(name)
                    if obj is not None:
                        found.append(obj)
            return found

    def owner_of(self, obj: Obj, kind: KindKey) -> Obj | None:
        ref = controller_ref(obj)
        if ref is None or ref.get("kind") != kind[1]:
            return None
        owner = self.get(kind, namespace_of(obj), str(ref.get("name")))
        if owner is None or meta(owner).get("uid") != ref.get("uid"):
            return None
        return owner
