"""Checksums: the revision of a target (its pod template plus the configs it reads) and the
hash of what `writer.ensure` last wrote."""

from __future__ import annotations

import copy
import hashlib
import json
from collections.abc import Collection, Mapping
from typing import Any

from kubectl_canary.api.config_refs import referenced_configs
from kubectl_canary.api.model import GROUP
from kubectl_canary.resources import Obj

# Top-level content of the kinds without a spec that `ensure` writes (the ConfigMap/Secret
# copies): managed like a spec.
DATA_FIELDS = ("data", "binaryData", "type", "immutable")


def tracked_config_refs(deployment: Obj) -> list[tuple[str, str]]:
    """ConfigMaps and Secrets the pod template references (env, envFrom, volumes), sorted."""
    return referenced_configs(deployment.get("spec", {}).get("template", {}))


def config_key(kind: str, name: str) -> str:
    """Key of a tracked config in the `config_hashes` mapping (and status.trackedConfigs)."""
    return f"{kind}/{name}"


def config_hash(obj: Obj) -> str:
    """Checksum of a ConfigMap's or Secret's content."""
    content = {"data": obj.get("data") or {}, "binaryData": obj.get("binaryData") or {}}
    return digest(content)


def template_hash(deployment: Obj, config_hashes: Mapping[str, str]) -> str:
    """Stable checksum of the pod template plus the tracked configs' checksums.

    Labels and annotations under our own prefix are left out: the agent adds SHARED_POD_LABEL
    to the target's template itself, and that must not look like a new revision.
    `config_hashes` maps `config_key(kind, name)` to `config_hash(obj)`.
    """
    template = copy.deepcopy(deployment.get("spec", {}).get("template", {}))
    meta = template.get("metadata") or {}
    for key in ("labels", "annotations"):
        values = meta.get(key) or {}
        kept = {k: v for k, v in values.items() if not k.startswith(GROUP + "/")}
        if kept:
            meta[key] = kept
        else:
            meta.pop(key, None)
    return digest({"template": template, "configs": dict(sorted(config_hashes.items()))})


def applied_hash(desired: Obj, create_only: Collection[str] = ()) -> str:
    """Hash of what `ensure` manages in `desired`: spec (minus create-only keys), labels,
    annotations and ownerReferences."""
    spec = {k: v for k, v in (desired.get("spec") or {}).items() if k not in create_only}
    meta = desired.get("metadata", {})
    managed: Obj = {
        "spec": spec,
        "labels": meta.get("labels") or {},
        "annotations": meta.get("annotations") or {},
        "owners": meta.get("ownerReferences") or [],
    }
    data = {k: desired[k] for k in DATA_FIELDS if k in desired}
    if data:  # only then: the hashes of objects with a spec stay what they were
        managed["data"] = data
    return digest(managed)


def digest(value: Any) -> str:
    raw = json.dumps(value, sort_keys=True, separators=(",", ":")).encode()
    return hashlib.sha256(raw).hexdigest()[:16]
