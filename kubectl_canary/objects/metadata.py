"""The marks by which a generated or taken-over object is known as a Canary's.

- MANAGED_BY_LABEL (the Canary's name) on everything `writer.ensure` wrote;
- an ownerReference to the Canary on what we created, so garbage collection removes it with
  the Canary; never on a taken-over object (it is the user's: ORIGINAL_SPEC_ANNOTATION holds
  its spec for the hand-back);
- APPLIED_HASH_ANNOTATION, the hash of what we last wrote (see `writer`).
"""

from __future__ import annotations

from collections.abc import Mapping

from kubectl_canary.api.model import (
    API_VERSION,
    GROUP,
    MANAGED_BY_LABEL,
    ORIGINAL_SPEC_ANNOTATION,
    Canary,
    ObjectMetadata,
)
from kubectl_canary.resources import Obj

# Hash of the managed content we last wrote (see `writer`).
APPLIED_HASH_ANNOTATION = f"{GROUP}/applied-hash"


def owner_reference(canary: Canary) -> Obj:
    if not canary.uid:
        raise ValueError(f"Canary {canary.key} has no uid; read it from the API server first")
    return {
        "apiVersion": API_VERSION,
        "kind": "Canary",
        "name": canary.name,
        "uid": canary.uid,
        "controller": True,
        "blockOwnerDeletion": True,
    }


def generated_metadata(
    canary: Canary,
    name: str,
    extra: ObjectMetadata | None = None,
    labels: Mapping[str, str] | None = None,
) -> Obj:
    """Metadata of an object we create: managed label, ownerReference, optional user metadata."""
    all_labels = dict(labels or {})
    annotations: dict[str, str] = {}
    if extra is not None:
        all_labels.update(extra.labels)
        annotations.update(extra.annotations)
    all_labels[MANAGED_BY_LABEL] = canary.name
    meta: Obj = {
        "name": name,
        "namespace": canary.namespace,
        "labels": all_labels,
        "ownerReferences": [owner_reference(canary)],
    }
    if annotations:
        meta["annotations"] = annotations
    return meta


def managed_by(obj: Obj | None) -> str | None:
    """Name of the Canary managing `obj` (MANAGED_BY_LABEL), None when unmanaged or missing."""
    if obj is None:
        return None
    return (obj.get("metadata", {}).get("labels") or {}).get(MANAGED_BY_LABEL)


def is_owned_by(obj: Obj, canary: Canary) -> bool:
    """Whether `obj` has an ownerReference to this Canary (this one: same uid when known, so a
    Canary recreated under the same name does not claim its predecessor's objects)."""
    refs = (obj.get("metadata") or {}).get("ownerReferences") or []
    return any(refers_to_canary(ref, canary.name, canary.uid) for ref in refs)


def refers_to_canary(ref: Obj, name: str, uid: str | None = None) -> bool:
    """Whether an ownerReference names the Canary `name` (and `uid`, when given)."""
    return (
        ref.get("apiVersion", "").split("/")[0] == GROUP
        and ref.get("kind") == "Canary"
        and ref.get("name") == name
        and (not uid or ref.get("uid") == uid)
    )


def is_taken_over(obj: Obj) -> bool:
    """Whether `obj` was the user's before we wrote it (its original spec is saved)."""
    return ORIGINAL_SPEC_ANNOTATION in ((obj.get("metadata") or {}).get("annotations") or {})


def is_ours(obj: Obj | None, canary: Canary) -> bool:
    """Whether the hand-back may change or delete `obj`: it carries this Canary's label and is
    either taken over by it or owned by it. Anything else is left alone."""
    if obj is None or managed_by(obj) != canary.name:
        return False
    return is_taken_over(obj) or is_owned_by(obj, canary)
