"""The one careful way generated objects are written and given back: `ensure` and `release`.

- `ensure` creates an object or updates it only when what we manage changed. What we last wrote
  is remembered as a hash in APPLIED_HASH_ANNOTATION (like `kubectl apply`'s last-applied): the
  API server adds defaults and canonicalises values (quantities, CRD defaults), so comparing our
  desired object with the live one field by field would see a difference on every tick.
  Updates are full replaces guarded by resourceVersion, retried from a fresh read on conflict;
  an update of our own object is written from the cache's copy (its resourceVersion makes a
  stale copy fail), everything else is decided on a live read.
- Taking over an object that exists but is not ours (no MANAGED_BY_LABEL) saves its spec in
  ORIGINAL_SPEC_ANNOTATION first, changes only the fields the router steers (`takeover.py`)
  and adds no ownerReference, so deleting the Canary never garbage-collects a user's object;
  `release` restores that spec, or deletes what we created (or rewrites and hands it over,
  when it must keep serving). docs/release-semantics.md.
"""

from __future__ import annotations

import copy
import json
from collections.abc import Collection, Mapping

from kubectl_canary.api.model import MANAGED_BY_LABEL, ORIGINAL_SPEC_ANNOTATION, Canary
from kubectl_canary.objects.gitops import is_tracking
from kubectl_canary.objects.hashes import DATA_FIELDS, applied_hash
from kubectl_canary.objects.metadata import (
    APPLIED_HASH_ANNOTATION,
    is_ours,
    is_owned_by,
    is_taken_over,
)
from kubectl_canary.objects.takeover import foreign_manager, is_subset, taken_over_spec
from kubectl_canary.resources import ConflictError, NotFoundError, Obj, ResourceClient

# Spec fields the API server assigns to a Service; a replace must carry them over.
_SERVER_ASSIGNED_SPEC = {
    "Service": ("clusterIP", "clusterIPs", "ipFamilies", "ipFamilyPolicy", "healthCheckNodePort")
}
WRITE_ATTEMPTS = 5


class OwnershipError(RuntimeError):
    """The object is managed by another Canary, or by nobody and not ours to take over."""


def _meta(obj: Obj) -> Obj:
    meta: Obj = obj.setdefault("metadata", {})
    return meta


def _ids(obj: Obj) -> tuple[str, str, str, str]:
    meta = obj["metadata"]
    return obj["apiVersion"], obj["kind"], meta.get("namespace", ""), meta["name"]


def ensure(
    client: ResourceClient,
    desired: Obj,
    *,
    create_only: Collection[str] = (),
    detect_drift: bool = False,
    adopt: bool = False,
) -> Obj:
    """Create `desired`, or update the live object when what we manage differs; return it.

    `desired` must carry MANAGED_BY_LABEL (the builders set it). `create_only` names spec
    keys written at creation only (kept from the live object afterwards). `detect_drift` also
    rewrites when the live spec no longer contains ours (someone edited it): use it for objects
    whose values the server does not canonicalise (Services, routing objects), not Deployments.
    `adopt` takes over an object of the same name that nobody manages (its spec is saved for
    `release`; only the steered fields change, `takeover.py`): only for what users call, the
    apex Service and the routing object, and never one another controller owns or steers.
    Anything else in the way (a user's HPA, Deployment or Service named like ours) is an
    OwnershipError.
    """
    owner = desired["metadata"]["labels"][MANAGED_BY_LABEL]
    want = applied_hash(desired, create_only)
    api_version, kind, namespace, name = _ids(desired)
    confirmed = False  # whether `live` comes from the API server rather than the cache
    for _ in range(WRITE_ATTEMPTS + 1):
        read = client.get_live if confirmed else client.get
        live = read(api_version, kind, namespace, name)
        if live is not None and _in_sync(live, desired, want, owner, create_only, detect_drift):
            return live
        if not confirmed and not _ours(live, owner):
            # Creating, taking over and refusing are decided on the API server's copy: a cache
            # a moment behind must not make us create or adopt anything, or report an object
            # in the way. Updating our own object needs no read first: the replace carries the
            # cached resourceVersion, so a stale copy is refused (409) and read live below.
            confirmed = True
            continue
        if live is None:
            fresh = copy.deepcopy(desired)
            _meta(fresh).setdefault("annotations", {})[APPLIED_HASH_ANNOTATION] = want
            try:
                return client.create(fresh)
            except ConflictError:  # created meanwhile (AlreadyExists is a 409 too): read again
                continue
        live_owner = (live["metadata"].get("labels") or {}).get(MANAGED_BY_LABEL)
        if live_owner not in (None, owner):
            raise OwnershipError(
                f"{kind} {namespace}/{name} is managed by Canary {live_owner}, not {owner}"
            )
        if live_owner is None and not adopt:
            raise OwnershipError(
                f"{kind} {namespace}/{name} exists and is not managed by kubectl-canary; it is "
                "not taken over: rename or delete it, or let the Canary use another name"
            )
        other = foreign_manager(live, owner) if live_owner is None else None
        if other is not None:
            raise OwnershipError(
                f"{kind} {namespace}/{name} is managed by {other}; it is not taken over: "
                "two controllers steering one object would fight over every request"
            )
        try:
            return client.replace(_updated(live, desired, want, create_only))
        except (ConflictError, NotFoundError):  # changed or deleted since that copy: read live
            confirmed = True
            continue
    raise ConflictError(f"{kind} {namespace}/{name}: writes kept conflicting", 409)


def _ours(obj: Obj | None, owner: str) -> bool:
    return obj is not None and (obj["metadata"].get("labels") or {}).get(MANAGED_BY_LABEL) == owner


def _in_sync(
    live: Obj, desired: Obj, want: str, owner: str, create_only: Collection[str], drift: bool
) -> bool:
    """Whether `live` is ours and already what `ensure` would write."""
    meta = live["metadata"]
    if (meta.get("labels") or {}).get(MANAGED_BY_LABEL) != owner:
        return False
    if (meta.get("annotations") or {}).get(APPLIED_HASH_ANNOTATION) != want:
        return False
    if not drift:
        return True
    live_spec = live.get("spec") or {}
    if is_taken_over(live):
        return taken_over_spec(live["kind"], live_spec, desired.get("spec") or {}) == live_spec
    spec = {k: v for k, v in (desired.get("spec") or {}).items() if k not in create_only}
    return is_subset(spec, live_spec)


def _updated(live: Obj, desired: Obj, want: str, create_only: Collection[str]) -> Obj:
    """The live object with our spec and metadata, keeping what the server or user owns: of
    a user's object (being taken over, or taken over before), only the steered fields change."""
    result = copy.deepcopy(live)
    meta = _meta(result)
    taken_over = (meta.get("labels") or {}).get(MANAGED_BY_LABEL) is None
    old_spec = live.get("spec") or {}
    if taken_over or is_taken_over(live):
        spec = taken_over_spec(result["kind"], old_spec, desired.get("spec") or {})
    else:
        spec = copy.deepcopy(desired.get("spec") or {})
        for key in tuple(create_only) + _SERVER_ASSIGNED_SPEC.get(result["kind"], ()):
            if key in old_spec:
                spec[key] = copy.deepcopy(old_spec[key])
    if "spec" in desired or "spec" in live:
        result["spec"] = spec
    for key in DATA_FIELDS:
        if key in desired:
            result[key] = copy.deepcopy(desired[key])
        elif key in ("data", "binaryData"):
            result.pop(key, None)
    desired_meta = desired["metadata"]
    labels, annotations = meta.get("labels") or {}, meta.get("annotations") or {}
    if not taken_over:
        # Our own object: drop GitOps/Helm tracking keys an older agent copied onto it (from
        # the target), so no such tool prunes it; a taken-over object is the user's.
        labels = _without_stale_tracking(labels, desired_meta.get("labels", {}))
        annotations = _without_stale_tracking(annotations, desired_meta.get("annotations", {}))
    meta["labels"] = {**labels, **desired_meta.get("labels", {})}
    annotations = {**annotations, **desired_meta.get("annotations", {})}
    annotations[APPLIED_HASH_ANNOTATION] = want
    if taken_over:
        # Remember the user's spec for `release`; never adopt their object for GC.
        annotations.setdefault(ORIGINAL_SPEC_ANNOTATION, json.dumps(old_spec, sort_keys=True))
    elif desired_meta.get("ownerReferences"):
        meta["ownerReferences"] = copy.deepcopy(desired_meta["ownerReferences"])
    meta["annotations"] = annotations
    return result


def _without_stale_tracking(live: Mapping[str, str], desired: Mapping[str, str]) -> dict[str, str]:
    return {k: v for k, v in live.items() if k in desired or not is_tracking(k)}


def release(
    client: ResourceClient,
    api_version: str,
    kind: str,
    namespace: str,
    name: str,
    canary: Canary,
    *,
    keep: Obj | None = None,
) -> None:
    """Give back an object `ensure` wrote for `canary` (docs/release-semantics.md).

    Taken over: restore the saved spec and drop our marks. Created by us: delete it, or, when
    `keep` is given, replace its spec with `keep` and hand it over (without our label,
    annotations and ownerReference), so deleting the Canary cannot garbage-collect something
    that still serves traffic. Objects that are not this Canary's (`metadata.is_ours`) are
    left alone.
    """
    for _ in range(WRITE_ATTEMPTS):
        # Deleted or handed back only as the API server has it, never as a cache remembers it.
        live = client.get_live(api_version, kind, namespace, name)
        if live is None or not is_ours(live, canary):
            return
        annotations = live["metadata"].get("annotations") or {}
        original = annotations.get(ORIGINAL_SPEC_ANNOTATION)
        if original is None and keep is None:
            version = live["metadata"].get("resourceVersion")
            try:
                client.delete(api_version, kind, namespace, name, resource_version=version)
            except ConflictError:
                continue  # changed since we read it: judge it again
            return
        spec: Obj = json.loads(original) if original is not None else (keep or {})
        try:
            client.replace(handed_over(live, spec, canary))
            return
        except ConflictError:
            continue
    raise ConflictError(f"{kind} {namespace}/{name}: release kept conflicting", 409)


def handed_over(live: Obj, spec: Obj, canary: Canary) -> Obj:
    """`live` with `spec` (server-assigned Service fields kept) and none of `canary`'s marks:
    its label, its annotations, its ownerReference."""
    result = copy.deepcopy(live)
    meta = _meta(result)
    new_spec = copy.deepcopy(spec)
    old_spec = live.get("spec") or {}
    for key in _SERVER_ASSIGNED_SPEC.get(result["kind"], ()):
        if key in old_spec and key not in new_spec:
            new_spec[key] = copy.deepcopy(old_spec[key])
    result["spec"] = new_spec
    labels = dict(meta.get("labels") or {})
    labels.pop(MANAGED_BY_LABEL, None)
    meta["labels"] = labels
    annotations = dict(meta.get("annotations") or {})
    annotations.pop(ORIGINAL_SPEC_ANNOTATION, None)
    annotations.pop(APPLIED_HASH_ANNOTATION, None)
    meta["annotations"] = annotations
    others = [
        ref
        for ref in meta.get("ownerReferences") or []
        if not is_owned_by({"metadata": {"ownerReferences": [ref]}}, canary)
    ]
    if others:
        meta["ownerReferences"] = others
    else:
        meta.pop("ownerReferences", None)
    return result
