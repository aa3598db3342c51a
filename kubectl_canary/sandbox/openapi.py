"""Minimal OpenAPI v3 documents: paths and parameters, no schemas.

kubectl (--validate=strict, the default) asks /openapi/v3 whether a kind's PATCH endpoint
takes the `fieldValidation` parameter; if it does, validation is left to the server, which
the sandbox performs. Without these documents kubectl refuses to apply ("failed to download
openapi"). The documents carry no component schemas on purpose: kubectl then builds
strategic merge patches from its compiled-in types for built-in kinds and JSON merge patches
for custom resources, exactly as against a server whose schemas it cannot use.
"""

from __future__ import annotations

import hashlib
from typing import Any

from .kinds import ResourceType

_PARAMS = [
    {"name": name, "in": "query", "schema": {"type": "string"}, "uniqueItems": True}
    for name in ("dryRun", "fieldManager", "fieldValidation", "force", "pretty")
]


def _gv_path(group: str, version: str) -> str:
    return f"apis/{group}/{version}" if group else f"api/{version}"


def _hash(types: list[ResourceType], generation: int) -> str:
    seed = f"{generation}:" + ",".join(sorted(f"{t.group}/{t.kind}" for t in types))
    return hashlib.sha256(seed.encode()).hexdigest()[:32].upper()


def root(types: list[ResourceType], generation: int) -> dict[str, Any]:
    h = _hash(types, generation)
    paths = {}
    for t in types:
        for v in t.versions:
            p = _gv_path(t.group, v)
            paths[p] = {"serverRelativeURL": f"/openapi/v3/{p}?hash={h}"}
    return {"paths": dict(sorted(paths.items()))}


def group_version(types: list[ResourceType], group: str, version: str) -> dict[str, Any] | None:
    served = [t for t in types if t.group == group and version in t.versions]
    if not served:
        return None
    paths: dict[str, Any] = {}
    for t in served:
        gvk = {"group": group, "version": version, "kind": t.kind}
        ns = "/namespaces/{namespace}" if t.namespaced else ""
        item = f"/{_gv_path(group, version)}{ns}/{t.plural}/{{name}}"
        collection = f"/{_gv_path(group, version)}{ns}/{t.plural}"
        op = {
            "x-kubernetes-group-version-kind": gvk,
            "parameters": _PARAMS,
            "responses": {"200": {"description": "OK"}},
        }
        paths[item] = {"get": op, "put": op, "patch": op, "delete": op}
        paths[collection] = {"get": op, "post": op}
    return {
        "openapi": "3.0.0",
        "info": {"title": "Kubernetes", "version": "v1.32.0-sandbox"},
        "paths": paths,
        "components": {"schemas": {}},
    }
