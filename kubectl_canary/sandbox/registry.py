"""The store's registry: the served types and the objects of each, resourceVersions, reads,
and the bookkeeping of one committed change (watch history, subscribers).

One lock guards everything; every committed change gets the next resourceVersion (a global
counter, like etcd's revision), is recorded in the watch history, and is then handed to
subscribers outside the lock, in commit order (fanout.py), so callbacks (the simulated
controllers) may write to the store themselves.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

from .admission import CRD_KEY, NAMESPACE_KEY
from .errors import Conflict, NotFound
from .fanout import Callback, Fanout
from .kinds import BUILTIN_TYPES, ResourceType, crd_to_types, split_api_version
from .selectors import labels_match, parse_label_selector
from .stored import copy_json, now_rfc3339
from .watch import EventLog, WatchEvent

__all__ = ["CRD_KEY", "NAMESPACE_KEY", "Registry"]

Obj = dict[str, Any]
# `Registry.list` shadows the builtin inside the class body, so annotations there use these.
ObjList = list[Obj]
StrList = list[str]
ObjKey = tuple[str, str]  # (namespace or "", name)


class Registry:
    """Thread-safe in-memory API objects, keyed by (group, kind) then (namespace, name)."""

    def __init__(self, *, watch_window: int = 100) -> None:
        self._lock = threading.RLock()
        self._rv = 0
        self._types: dict[tuple[str, str], ResourceType] = {}
        self._objects: dict[tuple[str, str], dict[ObjKey, Obj]] = {}
        self._uids: dict[str, tuple[tuple[str, str], ObjKey]] = {}
        self.events = EventLog(watch_window)
        self.fanout = Fanout(self._lock)
        self._local = threading.local()
        self.types_generation = 0  # bumped when the set of served types changes (discovery)
        for t in BUILTIN_TYPES:
            self._register(t)

    # ---- types ---------------------------------------------------------------------------

    def _register(self, t: ResourceType) -> None:
        self._types[t.key] = t
        self._objects.setdefault(t.key, {})
        self.types_generation += 1

    def resource_types(self) -> list[ResourceType]:
        with self._lock:
            return list(self._types.values())

    def type_for(self, api_version: str, kind: str) -> ResourceType:
        group, version = split_api_version(api_version)
        with self._lock:
            t = self._types.get((group, kind))
        if t is None or version not in t.versions:
            raise NotFound(
                f'no matches for kind "{kind}" in version "{api_version}"', kind=kind, group=group
            )
        return t

    def type_for_resource(self, group: str, version: str, plural: str) -> ResourceType | None:
        with self._lock:
            for t in self._types.values():
                if t.group == group and t.plural == plural and version in t.versions:
                    return t
        return None

    @property
    def resource_version(self) -> int:
        with self._lock:
            return self._rv

    # ---- subscribers and commits -------------------------------------------------------

    def subscribe(self, callback: Callback) -> Callable[[], None]:
        """Call `callback(event_type, object)` for every change from now on, in commit order;
        returns the function that unsubscribes."""
        return self.fanout.subscribe(callback)

    @contextmanager
    def _writing(self) -> Iterator[None]:
        """Hold the store lock for one write, then deliver its events once the lock is free
        (even when the write failed: an earlier step may have committed)."""
        try:
            with self._lock:
                yield
        finally:
            self.fanout.dispatch()

    def _commit(self, t: ResourceType, event_type: str, new: Obj, old: Obj | None) -> None:
        """Record an already-stored change (lock held): watch history + subscriber queue."""
        self.events.record(t.key, WatchEvent(self._rv, event_type, new, old))
        self.fanout.publish(event_type, new)

    def _next_rv(self) -> str:
        self._rv += 1
        return str(self._rv)

    # ---- reads ---------------------------------------------------------------------------

    def _out(self, t: ResourceType, obj: Obj, api_version: str | None) -> Obj:
        out = copy_json(obj)
        if api_version:
            out["apiVersion"] = api_version
        return out

    def get(self, api_version: str, kind: str, namespace: str | None, name: str) -> Obj:
        t = self.type_for(api_version, kind)
        with self._lock:
            obj = self._objects[t.key].get((self._ns(t, namespace), name))
            if obj is None:
                raise self._not_found(t, name)
            return self._out(t, obj, api_version)

    def get_raw(self, t: ResourceType, namespace: str | None, name: str) -> Obj:
        """The stored object itself (read-only by contract), for the HTTP layer."""
        with self._lock:
            obj = self._objects[t.key].get((self._ns(t, namespace), name))
            if obj is None:
                raise self._not_found(t, name)
            return obj

    def list(
        self,
        api_version: str,
        kind: str,
        namespace: str | None = None,
        label_selector: str | None = None,
    ) -> list[Obj]:
        t = self.type_for(api_version, kind)
        items, _ = self.list_raw(t, namespace, label_selector)
        return [self._out(t, o, api_version) for o in items]

    def list_raw(
        self,
        t: ResourceType,
        namespace: str | None = None,
        label_selector: str | None = None,
        predicate: Callable[[Obj], bool] | None = None,
    ) -> tuple[ObjList, int]:
        """Stored objects (read-only by contract) sorted by namespace/name, and the list's
        resourceVersion."""
        reqs = parse_label_selector(label_selector)
        with self._lock:
            objects = self._objects.get(t.key, {})
            keys = sorted(objects)
            items: ObjList = []
            for key in keys:
                if namespace and key[0] != namespace:
                    continue
                obj = objects[key]
                if reqs and not labels_match(reqs, obj):
                    continue
                if predicate is not None and not predicate(obj):
                    continue
                items.append(obj)
            return items, self._rv

    def take_warnings(self) -> StrList:
        """Warnings (fieldValidation=Warn) left by this thread's last write, then cleared."""
        warnings: StrList = getattr(self._local, "warnings", [])
        self._local.warnings = []
        return warnings

    # ---- helpers of the writes --------------------------------------------------------

    def _ns(self, t: ResourceType, namespace: str | None) -> str:
        return (namespace or "") if t.namespaced else ""

    def _not_found(self, t: ResourceType, name: str) -> NotFound:
        what = f"{t.plural}.{t.group}" if t.group else t.plural
        return NotFound(f'{what} "{name}" not found', kind=t.plural, name=name, group=t.group)

    # ---- CustomResourceDefinitions -------------------------------------------------------

    def _install_crd(self, crd: Obj) -> None:
        """Serve (or re-serve) a CRD's kind and report it Established, as the real
        apiextensions controller does within a moment of creation."""
        t = crd_to_types(crd)
        existing = self._types.get(t.key)
        if existing is not None and existing.crd_name != t.crd_name:
            raise Conflict(f"kind {t.kind} in group {t.group!r} is already served")
        self._register(t)
        names = crd["spec"]["names"]
        crd["status"] = {
            "acceptedNames": {k: v for k, v in names.items()},
            "storedVersions": [v["name"] for v in crd["spec"]["versions"] if v.get("storage")],
            "conditions": [
                {
                    "type": cond,
                    "status": "True",
                    "reason": reason,
                    "message": message,
                    "lastTransitionTime": now_rfc3339(),
                }
                for cond, reason, message in (
                    ("NamesAccepted", "NoConflicts", "no conflicts found"),
                    ("Established", "InitialNamesAccepted", "the initial names have been accepted"),
                )
            ],
        }
