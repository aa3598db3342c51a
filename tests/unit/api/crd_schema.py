"""Test helpers: load our CRDs and samples, and read a CRD's OpenAPI schema the way a real API
server does (as JSON Schema, with structural defaulting)."""

from __future__ import annotations

import copy
import functools
from pathlib import Path
from typing import Any

import jsonschema
import yaml

from kubectl_canary.api import model

MANIFESTS = Path(model.__file__).resolve().parent.parent / "manifests"
CRD_FILES = {"Canary": "canary.yaml", "MetricTemplate": "metrictemplate.yaml"}
Loader = getattr(yaml, "CSafeLoader", yaml.SafeLoader)


def load_all(path: Path) -> list[Any]:
    with path.open() as f:
        return [doc for doc in yaml.load_all(f, Loader=Loader) if doc is not None]


@functools.cache
def crd(kind: str) -> dict[str, Any]:
    """The CRD document (cached: callers must not modify it)."""
    (doc,) = load_all(MANIFESTS / "crds" / CRD_FILES[kind])
    assert isinstance(doc, dict)
    return doc


def openapi(kind: str) -> dict[str, Any]:
    (version,) = crd(kind)["spec"]["versions"]
    schema = version["schema"]["openAPIV3Schema"]
    assert isinstance(schema, dict)
    return schema


def samples() -> list[tuple[str, dict[str, Any]]]:
    found = []
    for path in sorted((MANIFESTS / "samples").glob("*.yaml")):
        for index, doc in enumerate(load_all(path)):
            found.append((f"{path.name}#{index}", doc))
    return found


def to_json_schema(node: dict[str, Any], *, at_metadata: bool = False) -> dict[str, Any]:
    """OpenAPI v3 (Kubernetes flavour) -> JSON Schema draft 7, rejecting unknown fields the way
    `kubectl apply --validate=strict` does (the API server would otherwise prune them)."""
    out: dict[str, Any] = {}
    for key, value in node.items():
        if key == "properties":
            out[key] = {
                name: to_json_schema(sub, at_metadata=name == "metadata" and not at_metadata)
                for name, sub in value.items()
            }
        elif key in ("items", "additionalProperties") and isinstance(value, dict):
            out[key] = to_json_schema(value)
        elif key.startswith("x-kubernetes-") or key in ("nullable", "format"):
            continue
        else:
            out[key] = copy.deepcopy(value)
    if node.get("nullable"):
        out["type"] = [out["type"], "null"]
    if node.get("x-kubernetes-int-or-string"):
        out["anyOf"] = [{"type": "integer"}, {"type": "string"}]
    if (
        node.get("type") == "object"
        and "additionalProperties" not in node
        and not node.get("x-kubernetes-preserve-unknown-fields")
        and not at_metadata
    ):
        out["additionalProperties"] = False
    return out


@functools.cache
def _validator(kind: str) -> jsonschema.Draft7Validator:
    return jsonschema.Draft7Validator(to_json_schema(openapi(kind)))


def schema_errors(kind: str, doc: Any) -> list[str]:
    validator = _validator(kind)
    pruned = drop_nulls(copy.deepcopy(doc), openapi(kind))
    return [
        f"{'.'.join(map(str, e.absolute_path))}: {e.message}" for e in validator.iter_errors(pruned)
    ]


def drop_nulls(doc: Any, node: dict[str, Any]) -> Any:
    """The API server drops `null` from fields that are not `nullable` before validating."""
    if isinstance(doc, dict):
        props = node.get("properties", {})
        for name in list(doc):
            sub = props.get(name, node.get("additionalProperties"))
            if not isinstance(sub, dict):
                continue
            if doc[name] is None and not sub.get("nullable"):
                del doc[name]
            else:
                drop_nulls(doc[name], sub)
    elif isinstance(doc, list) and isinstance(node.get("items"), dict):
        for item in doc:
            drop_nulls(item, node["items"])
    return doc


def apply_defaults(doc: Any, node: dict[str, Any]) -> Any:
    """What the API server's structural defaulting does to `doc`: set absent defaulted fields,
    then recurse (so a defaulted `{}` gets its own fields' defaults)."""
    if isinstance(doc, dict):
        for name, sub in node.get("properties", {}).items():
            if name not in doc and "default" in sub:
                doc[name] = copy.deepcopy(sub["default"])
        for name, value in doc.items():
            if name in node.get("properties", {}):
                apply_defaults(value, node["properties"][name])
            elif isinstance(node.get("additionalProperties"), dict):
                apply_defaults(value, node["additionalProperties"])
    elif isinstance(doc, list) and isinstance(node.get("items"), dict):
        for item in doc:
            apply_defaults(item, node["items"])
    return doc


def walk(node: dict[str, Any], path: str = "") -> list[tuple[str, dict[str, Any]]]:
    """Every schema node with its path (`spec.analysis.metrics[].name`)."""
    found = [(path, node)]
    for name, sub in node.get("properties", {}).items():
        found += walk(sub, f"{path}.{name}" if path else name)
    if isinstance(node.get("items"), dict):
        found += walk(node["items"], f"{path}[]")
    if isinstance(node.get("additionalProperties"), dict):
        found += walk(node["additionalProperties"], f"{path}{{}}")
    return found


def at(kind: str, path: str) -> dict[str, Any]:
    return dict(walk(openapi(kind)))[path]
