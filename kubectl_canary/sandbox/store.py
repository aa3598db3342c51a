"""The sandbox's object store: what etcd plus the API server's registry logic do.

One lock guards everything; every committed change gets the next resourceVersion (a global
counter, like etcd's revision), is recorded in the watch history, and is then handed to
subscribers outside the lock, in commit order, so callbacks (the simulated controllers) may
write to the store themselves.

Stored objects are never mutated after commit; callers always get copies.
"""

from __future__ import annotations

import json
import logging
import random
import re
import threading
import time
import uuid
from collections import deque
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

from . import builtin_defaults, schema
from .errors import (
    AlreadyExists,
    BadRequest,
    Cause,
    Conflict,
    Forbidden,
    Invalid,
    NotFound,
    StoreError,
    invalid,
)
from .kinds import BUILTIN_TYPES, VIRTUAL_KINDS, ResourceType, crd_to_types, split_api_version
from .metadata import metadata_causes
from .selectors import labels_match, parse_label_selector
from .watch import EventLog, WatchEvent

__all__ = [
    "AlreadyExists",
    "BadRequest",
    "Conflict",
    "Forbidden",
    "Invalid",
    "NotFound",
    "Store",
    "StoreError",
]

log = logging.getLogger(__name__)

Obj = dict[str, Any]
# `Store.list` shadows the builtin inside the class body, so annotations there use these.
ObjList = list[Obj]
StrList = list[str]
Callback = Callable[[str, Obj], None]
ObjKey = tuple[str, str]  # (namespace or "", name)

CRD_KEY = ("apiextensions.k8s.io", "CustomResourceDefinition")
NAMESPACE_KEY = ("", "Namespace")
PROTECTED_NAMESPACES = ("default", "kube-system", "kube-public")

_DNS_LABEL = re.compile(r"[a-z0-9]([-a-z0-9]*[a-z0-9])?")
_DNS_SUBDOMAIN = re.compile(r"[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*")
_GENERATE_CHARS = "bcdfghjklmnpqrstvwxz2456789"


class StoredObject(dict[str, Any]):
    """A committed object: never mutated, so its JSON encoding is computed once and reused
    by every list, get and watch event that sends it."""

    __slots__ = ("_encoded",)

    # Copies are plain dicts: a copy may be changed, and must not carry the cached encoding.
    def __copy__(self) -> dict[str, Any]:
        return dict(self)

    def __deepcopy__(self, memo: dict[int, Any]) -> dict[str, Any]:
        result: dict[str, Any] = json.loads(self.encoded())
        return result

    def encoded(self) -> str:
        try:
            return self._encoded
        except AttributeError:
            self._encoded: str = json.dumps(self, separators=(",", ":"))
            return self._encoded


def encode(obj: Obj) -> str:
    """JSON text of an object, reusing the cached encoding of a stored one."""
    if isinstance(obj, StoredObject):
        return obj.encoded()
    return json.dumps(obj, separators=(",", ":"))


def _copy(obj: Obj) -> Obj:
    # A JSON round trip is the fastest deep copy of plain JSON data in CPython.
    result: Obj = json.loads(encode(obj))
    return result


def now_rfc3339() -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())


def _without(obj: Obj, *keys: str) -> Obj:
    return {k: v for k, v in obj.items() if k not in keys}


def _meta_for_compare(obj: Obj) -> Obj:
    meta = dict(obj.get("metadata") or {})
    meta.pop("resourceVersion", None)
    meta.pop("managedFields", None)
    return {**obj, "metadata": meta}


class Store:
    """Thread-safe in-memory API objects, keyed by (group, kind) then (namespace, name)."""

    def __init__(self, *, watch_window: int = 100) -> None:
        self._lock = threading.RLock()
        self._rv = 0
        self._types: dict[tuple[str, str], ResourceType] = {}
        self._objects: dict[tuple[str, str], dict[ObjKey, Obj]] = {}
        self._uids: dict[str, tuple[tuple[str, str], ObjKey]] = {}
        self.events = EventLog(watch_window)
        self._subscribers: list[Callback] = []
        self._pending: deque[tuple[str, Obj]] = deque()
        self._dispatch_lock = threading.Lock()
        self._local = threading.local()
        self.types_generation = 0  # bumped when the set of served types changes (discovery)
        for t in BUILTIN_TYPES:
            self._register(t)
        for ns in ("default", "kube-system", "kube-public"):
            self.create({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": ns}})

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

    # ---- subscribers ---------------------------------------------------------------------

    def subscribe(self, callback: Callback) -> Callable[[], None]:
        with self._lock:
            self._subscribers.append(callback)

        def unsubscribe() -> None:
            with self._lock:
                if callback in self._subscribers:
                    self._subscribers.remove(callback)

        return unsubscribe

    def _dispatch(self) -> None:
        """Deliver pending events in commit order, outside the store lock.

        Only one thread delivers at a time; a write made from inside a callback (same thread)
        just queues its event, which the running loop delivers next. A thread that finds the
        delivery lock taken leaves its event to the thread holding it, which re-checks the
        queue after releasing the lock, so no event is stranded.
        """
        if getattr(self._local, "dispatching", False):
            return
        while True:
            if not self._dispatch_lock.acquire(blocking=False):
                return
            self._local.dispatching = True
            try:
                while True:
                    with self._lock:
                        if not self._pending:
                            break
                        event_type, obj = self._pending.popleft()
                        subscribers = list(self._subscribers)
                    for cb in subscribers:
                        try:
                            cb(event_type, _copy(obj))
                        except Exception:
                            log.exception("store subscriber failed on %s event", event_type)
            finally:
                self._local.dispatching = False
                self._dispatch_lock.release()
            with self._lock:
                if not self._pending:
                    return

    @contextmanager
    def _writing(self) -> Iterator[None]:
        """Hold the store lock for one write, then deliver its events once the lock is free
        (even when the write failed: an earlier step may have committed)."""
        try:
            with self._lock:
                yield
        finally:
            self._dispatch()

    def _commit(self, t: ResourceType, event_type: str, new: Obj, old: Obj | None) -> None:
        """Record an already-stored change (lock held): watch history + subscriber queue."""
        self.events.record(t.key, WatchEvent(self._rv, event_type, new, old))
        if self._subscribers:
            self._pending.append((event_type, new))

    def _next_rv(self) -> str:
        self._rv += 1
        return str(self._rv)

    # ---- reads ---------------------------------------------------------------------------

    def _out(self, t: ResourceType, obj: Obj, api_version: str | None) -> Obj:
        out = _copy(obj)
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

    # ---- writes --------------------------------------------------------------------------

    def _ns(self, t: ResourceType, namespace: str | None) -> str:
        return (namespace or "") if t.namespaced else ""

    def _not_found(self, t: ResourceType, name: str) -> NotFound:
        what = f"{t.plural}.{t.group}" if t.group else t.plural
        return NotFound(f'{what} "{name}" not found', kind=t.plural, name=name, group=t.group)

    def create(self, obj: Obj, *, field_validation: str = "Ignore", dry_run: bool = False) -> Obj:
        """Create; `field_validation` is the API's fieldValidation parameter (Ignore, Warn,
        Strict): Strict rejects unknown custom-resource fields instead of pruning them.
        `dry_run` validates and returns the result without storing it."""
        with self._writing():
            return self._create(obj, field_validation, dry_run)

    def _create(self, obj: Obj, field_validation: str = "Ignore", dry_run: bool = False) -> Obj:
        api_version = obj.get("apiVersion", "")
        t = self.type_for(api_version, obj.get("kind", ""))
        new = _copy(obj)
        meta = new.get("metadata")
        if not isinstance(meta, dict):
            meta = new["metadata"] = {}
        if t.key in VIRTUAL_KINDS:
            # Access reviews: RBAC is not enforced in the sandbox, so everything is allowed.
            new["status"] = {"allowed": True, "reason": "sandbox: RBAC is not enforced"}
            return new
        if not meta.get("name") and meta.get("generateName"):
            suffix = "".join(random.choice(_GENERATE_CHARS) for _ in range(5))
            meta["name"] = f"{meta['generateName']}{suffix}"
        name = meta.get("name") or ""
        if t.namespaced:
            if not meta.get("namespace"):
                raise invalid(
                    t.kind, t.group, name, [Cause("metadata.namespace", "Required value")]
                )
            self._check_namespace_open(meta["namespace"])
        else:
            meta.pop("namespace", None)
        self._check_name(t, name)
        key = (self._ns(t, meta.get("namespace")), name)
        if key in self._objects[t.key]:
            what = f"{t.plural}.{t.group}" if t.group else t.plural
            raise AlreadyExists(
                f'{what} "{name}" already exists', kind=t.plural, name=name, group=t.group
            )
        for field in ("deletionTimestamp", "deletionGracePeriodSeconds", "managedFields"):
            meta.pop(field, None)
        meta["uid"] = str(uuid.uuid4())
        meta["creationTimestamp"] = now_rfc3339()
        meta["generation"] = 1
        if t.has_status and t.key != NAMESPACE_KEY:
            # Like real registries: status is not settable on create when it is a subresource.
            new.pop("status", None)
        new["apiVersion"] = t.api_version()
        self._admit(
            t,
            new,
            creating=True,
            version=split_api_version(api_version)[1],
            field_validation=field_validation,
        )
        if dry_run:
            if t.key == CRD_KEY:
                crd_to_types(new)  # must be servable
            return self._out(t, new, api_version)
        if t.key == CRD_KEY:
            self._install_crd(new)
        meta["resourceVersion"] = self._next_rv()
        new = self._objects[t.key][key] = StoredObject(new)
        self._uids[meta["uid"]] = (t.key, key)
        self._commit(t, "ADDED", new, None)
        return self._out(t, new, api_version)

    def _check_name(self, t: ResourceType, name: str) -> None:
        if not name:
            raise invalid(
                t.kind,
                t.group,
                name,
                [Cause("metadata.name", "Required value: name or generateName is required")],
            )
        if t.group == "rbac.authorization.k8s.io":
            ok = name not in (".", "..") and "/" not in name and "%" not in name
        elif t.key in (NAMESPACE_KEY, ("", "Service")):
            ok = len(name) <= 63 and _DNS_LABEL.fullmatch(name) is not None
        else:
            ok = len(name) <= 253 and _DNS_SUBDOMAIN.fullmatch(name) is not None
        if not ok:
            msg = (
                f'Invalid value: "{name}": a lowercase RFC 1123 name must consist of lower case '
                "alphanumeric characters, '-' or '.', and must start and end with an "
                "alphanumeric character"
            )
            raise invalid(t.kind, t.group, name, [Cause("metadata.name", msg)])

    def _check_namespace_open(self, namespace: str) -> None:
        ns = self._objects[NAMESPACE_KEY].get(("", namespace))
        if ns is None:
            raise NotFound(f'namespaces "{namespace}" not found', kind="namespaces", name=namespace)
        if ns["metadata"].get("deletionTimestamp"):
            raise Forbidden(
                f"unable to create new content in namespace {namespace} because it is being "
                "terminated",
                kind="namespaces",
                name=namespace,
            )

    def _admit(
        self,
        t: ResourceType,
        obj: Obj,
        *,
        creating: bool,
        version: str,
        field_validation: str = "Ignore",
        old: Obj | None = None,
    ) -> None:
        """Defaulting, pruning and validation (mutates obj); raises Invalid, or BadRequest
        for unknown fields under fieldValidation=Strict."""
        meta = obj["metadata"]
        causes = metadata_causes(meta)
        if t.schemas:
            pruned: list[str] = []
            causes += schema.admit(
                obj, t.schemas.get(version) or t.schemas[t.storage_version], pruned
            )
            if pruned and field_validation == "Strict":
                unknown = ", ".join(f'unknown field "{p}"' for p in pruned)
                raise BadRequest(
                    f'{t.kind} in version "{version}" cannot be handled as a {t.kind}: '
                    f"strict decoding error: {unknown}"
                )
            if pruned and field_validation == "Warn":
                self._local.warnings = [f'unknown field "{p}"' for p in pruned]
        else:
            builtin_defaults.apply_defaults(t.key, obj, creating, old)
            causes += builtin_defaults.validate(t.key, obj)
        if t.key == CRD_KEY and not causes:
            causes += _crd_causes(obj)
        if causes:
            raise invalid(t.kind, t.group, meta.get("name", ""), causes)

    def update(self, obj: Obj, *, field_validation: str = "Ignore", dry_run: bool = False) -> Obj:
        with self._writing():
            return self._update(
                obj, status_only=False, field_validation=field_validation, dry_run=dry_run
            )

    def update_status(
        self, obj: Obj, *, field_validation: str = "Ignore", dry_run: bool = False
    ) -> Obj:
        with self._writing():
            return self._update(
                obj, status_only=True, field_validation=field_validation, dry_run=dry_run
            )

    def _update(
        self,
        obj: Obj,
        *,
        status_only: bool,
        field_validation: str = "Ignore",
        dry_run: bool = False,
    ) -> Obj:
        api_version = obj.get("apiVersion", "")
        t = self.type_for(api_version, obj.get("kind", ""))
        meta_in = obj.get("metadata") or {}
        name = meta_in.get("name", "")
        key = (self._ns(t, meta_in.get("namespace")), name)
        old = self._objects[t.key].get(key)
        if old is None:
            raise self._not_found(t, name)
        old_meta = old["metadata"]
        wanted_rv = meta_in.get("resourceVersion")
        if wanted_rv and str(wanted_rv) != old_meta["resourceVersion"]:
            what = f"{t.plural}.{t.group}" if t.group else t.plural
            raise Conflict(
                f'Operation cannot be fulfilled on {what} "{name}": the object has been '
                "modified; please apply your changes to the latest version and try again",
                kind=t.plural,
                name=name,
                group=t.group,
            )
        if status_only:
            new = _copy(old)
            if "status" in obj:
                new["status"] = _copy({"s": obj["status"]})["s"]
            else:
                new.pop("status", None)
        else:
            new = _copy(obj)
            new["metadata"] = meta = dict(new.get("metadata") or {})
            for field in ("uid", "creationTimestamp", "deletionTimestamp", "namespace", "name"):
                if field in old_meta:
                    meta[field] = old_meta[field]
                else:
                    meta.pop(field, None)
            if t.has_status:
                if "status" in old:
                    new["status"] = _copy({"s": old["status"]})["s"]
                else:
                    new.pop("status", None)
        new["apiVersion"] = t.api_version()
        new["kind"] = t.kind
        meta = new["metadata"]
        meta["generation"] = old_meta.get("generation", 1)
        self._admit(
            t,
            new,
            creating=False,
            version=split_api_version(api_version)[1],
            field_validation=field_validation,
            old=old,
        )
        immutable = builtin_defaults.immutable_causes(t.key, old, new)
        if immutable:
            raise invalid(t.kind, t.group, name, immutable)
        if _meta_for_compare(new) == _meta_for_compare(old):
            # A no-op write changes nothing, not even resourceVersion, and emits no event.
            return self._out(t, old, api_version)
        status_key = ("metadata", "status") if t.has_status else ("metadata",)
        if _without(new, *status_key) != _without(old, *status_key):
            meta["generation"] = old_meta.get("generation", 1) + 1
        if dry_run:
            return self._out(t, new, api_version)
        if t.key == CRD_KEY:
            self._install_crd(new)
        if meta.get("deletionTimestamp") and not meta.get("finalizers"):
            self._remove(t, key, new)
            return self._out(t, new, api_version)
        meta["resourceVersion"] = self._next_rv()
        new = self._objects[t.key][key] = StoredObject(new)
        self._commit(t, "MODIFIED", new, old)
        return self._out(t, new, api_version)

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
        new = _copy(old)
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
        gone = _copy(last)
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
                    new = _copy(obj)
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


def _crd_causes(crd: Obj) -> list[Cause]:
    causes = []
    spec = crd.get("spec") or {}
    names = spec.get("names") or {}
    for field, value in (
        ("spec.group", spec.get("group")),
        ("spec.names.plural", names.get("plural")),
        ("spec.names.kind", names.get("kind")),
    ):
        if not value:
            causes.append(Cause(field, "Required value", "FieldValueRequired"))
    versions = spec.get("versions") or []
    if not versions:
        causes.append(Cause("spec.versions", "Required value", "FieldValueRequired"))
    elif sum(1 for v in versions if v.get("storage")) != 1:
        causes.append(
            Cause("spec.versions", "Invalid value: must have exactly one version marked as storage")
        )
    if not causes:
        expected = f"{names['plural']}.{spec['group']}"
        if crd["metadata"].get("name") != expected:
            causes.append(
                Cause("metadata.name", 'Invalid value: must be spec.names.plural+"."+spec.group')
            )
    return causes
