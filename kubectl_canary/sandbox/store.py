"""The sandbox's object store: what etcd plus the API server's registry logic do.

Layered by job: `registry.py` holds the types, the objects, resourceVersions, reads and the
bookkeeping of a commit (watch history, subscriber fan-out in `fanout.py`); `deletion.py`
deletes (finalizers, garbage collection, namespaces); this module creates and updates, with
admission (`admission.py`: names, defaulting, pruning, validation) on the way in.

Stored objects are never mutated after commit (`stored.py`); callers always get copies.
"""

from __future__ import annotations

import random
import uuid
from typing import Any

from . import builtin_defaults
from .admission import CRD_KEY, NAMESPACE_KEY, admit, check_name
from .deletion import PROTECTED_NAMESPACES, Deletions
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
from .kinds import VIRTUAL_KINDS, ResourceType, crd_to_types, split_api_version
from .stored import StoredObject, copy_json, now_rfc3339

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

Obj = dict[str, Any]

_GENERATE_CHARS = "bcdfghjklmnpqrstvwxz2456789"


def _without(obj: Obj, *keys: str) -> Obj:
    return {k: v for k, v in obj.items() if k not in keys}


def _meta_for_compare(obj: Obj) -> Obj:
    meta = dict(obj.get("metadata") or {})
    meta.pop("resourceVersion", None)
    meta.pop("managedFields", None)
    return {**obj, "metadata": meta}


class Store(Deletions):
    """The whole store: reads (registry.py), deletion (deletion.py), creates and updates."""

    def __init__(self, *, watch_window: int = 100) -> None:
        super().__init__(watch_window=watch_window)
        for ns in PROTECTED_NAMESPACES:
            self.create({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": ns}})

    def create(self, obj: Obj, *, field_validation: str = "Ignore", dry_run: bool = False) -> Obj:
        """Create; `field_validation` is the API's fieldValidation parameter (Ignore, Warn,
        Strict): Strict rejects unknown custom-resource fields instead of pruning them.
        `dry_run` validates and returns the result without storing it."""
        with self._writing():
            return self._create(obj, field_validation, dry_run)

    def _create(self, obj: Obj, field_validation: str = "Ignore", dry_run: bool = False) -> Obj:
        api_version = obj.get("apiVersion", "")
        t = self.type_for(api_version, obj.get("kind", ""))
        new = copy_json(obj)
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
        check_name(t, name)
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
        self._admitted(
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

    def _admitted(
        self,
        t: ResourceType,
        obj: Obj,
        *,
        creating: bool,
        version: str,
        field_validation: str,
        old: Obj | None = None,
    ) -> None:
        """Admission of `obj` (mutated), keeping fieldValidation=Warn's warnings for
        `take_warnings`."""
        warnings = admit(
            t, obj, creating=creating, version=version, field_validation=field_validation, old=old
        )
        if warnings:
            self._local.warnings = warnings

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
            new = copy_json(old)
            if "status" in obj:
                new["status"] = copy_json({"s": obj["status"]})["s"]
            else:
                new.pop("status", None)
        else:
            new = copy_json(obj)
            new["metadata"] = meta = dict(new.get("metadata") or {})
            for field in ("uid", "creationTimestamp", "deletionTimestamp", "namespace", "name"):
                if field in old_meta:
                    meta[field] = old_meta[field]
                else:
                    meta.pop(field, None)
            if t.has_status:
                if "status" in old:
                    new["status"] = copy_json({"s": old["status"]})["s"]
                else:
                    new.pop("status", None)
        new["apiVersion"] = t.api_version()
        new["kind"] = t.kind
        meta = new["metadata"]
        meta["generation"] = old_meta.get("generation", 1)
        self._admitted(
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
