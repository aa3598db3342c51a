"""Create-or-update of whole objects, as `init` needs it: idempotent and conflict-safe.

Server-side apply would be the natural tool, but the sandbox does not serve it, and a
create-or-replace guarded by resourceVersion has the same effect for objects we own whole:
unchanged objects are left alone (so a second `init` writes nothing), changed ones replaced.
"""

from __future__ import annotations

import copy
from typing import Any

from kubectl_canary.kube import Kube
from kubectl_canary.resources import AlreadyExistsError, ConflictError

Obj = dict[str, Any]

# Fields the API server fills in that a replace must carry over from the live object.
_KEEP_FROM_LIVE = {"Service": ("clusterIP", "clusterIPs", "ipFamilies", "ipFamilyPolicy")}
_ATTEMPTS = 5


def ref(obj: Obj) -> str:
    """`kubectl apply`'s way of naming an object: customresourcedefinition/canaries.x.dev."""
    return f"{obj['kind'].lower()}/{obj['metadata']['name']}"


def contains(live: Any, desired: Any) -> bool:
    """Whether everything `desired` says is already true of `live` (defaults may be extra)."""
    if isinstance(desired, dict):
        return isinstance(live, dict) and all(contains(live.get(k), v) for k, v in desired.items())
    if isinstance(desired, list):
        return (
            isinstance(live, list)
            and len(live) == len(desired)
            and all(contains(a, b) for a, b in zip(live, desired, strict=True))
        )
    return bool(live == desired)


def apply(kube: Kube, desired: Obj) -> str:
    """Create or update `desired`; returns 'created', 'configured' or 'unchanged'."""
    meta = desired["metadata"]
    for _ in range(_ATTEMPTS):
        live = kube.get(
            desired["apiVersion"], desired["kind"], meta.get("namespace", ""), meta["name"]
        )
        if live is None:
            try:
                kube.create(desired)
                return "created"
            except AlreadyExistsError:
                continue  # created meanwhile: update it instead
        body = {k: v for k, v in desired.items() if k != "status"}
        if contains(live, body):
            return "unchanged"
        new = copy.deepcopy(body)
        meta, live_meta = new["metadata"], live["metadata"]
        meta["resourceVersion"] = live_meta["resourceVersion"]
        # A replace sets all of metadata: keep what others (controllers, users) put there.
        for key in ("labels", "annotations"):
            merged = {**(live_meta.get(key) or {}), **(meta.get(key) or {})}
            if merged:
                meta[key] = merged
        for key in ("finalizers", "ownerReferences"):
            if live_meta.get(key) and key not in meta:
                meta[key] = live_meta[key]
        for key in _KEEP_FROM_LIVE.get(desired["kind"], ()):
            if key in (live.get("spec") or {}):
                new.setdefault("spec", {})[key] = live["spec"][key]
        try:
            kube.replace(new)
            return "configured"
        except ConflictError:
            continue
    raise ConflictError(f"{ref(desired)} kept changing while being updated; try again", 409)
