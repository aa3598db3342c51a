"""Custom resources against their CRD's structural openAPIV3Schema, as a real server does:
prune unknown fields, drop non-nullable nulls, apply defaults, then validate.

CEL rules (`x-kubernetes-validations`) are ignored, as on Kubernetes 1.24 with default feature
gates; formats are not checked. Error messages follow the real server's wording so that
`kubectl` output and client error handling look the same.
"""

from __future__ import annotations

import copy
import json
import re
from functools import lru_cache
from typing import Any

from .errors import Cause

Schema = dict[str, Any]
_ROOT_KEEP = ("apiVersion", "kind", "metadata")


def admit(obj: dict[str, Any], schema: Schema, pruned: list[str] | None = None) -> list[Cause]:
    """Prune, default and validate a whole custom resource in place; return field errors.
    The paths of pruned unknown fields are appended to `pruned` (for fieldValidation)."""
    props = schema.get("properties") or {}
    root_schema = {
        **schema,
        "properties": {k: v for k, v in props.items() if k not in _ROOT_KEEP},
        "required": [r for r in schema.get("required") or [] if r not in _ROOT_KEEP],
    }
    body = {k: v for k, v in obj.items() if k not in _ROOT_KEEP}
    body = _normalize(body, root_schema, "", pruned if pruned is not None else [])
    for key in list(obj):
        if key not in _ROOT_KEEP:
            del obj[key]
    obj.update(body)
    causes: list[Cause] = []
    # A CRD may restrict metadata.name (and nothing else of metadata): a real server checks
    # its length, with this wording.
    name_schema = ((props.get("metadata") or {}).get("properties") or {}).get("name") or {}
    name = (obj.get("metadata") or {}).get("name")
    limit = name_schema.get("maxLength")
    if isinstance(name, str) and isinstance(limit, int) and len(name) > limit:
        causes.append(
            Cause(
                "metadata.name",
                f'Invalid value: "{name}": metadata.name in body should be at most '
                f"{limit} chars long",
            )
        )
    _validate(body, root_schema, "", causes)
    return causes


def _normalize(value: Any, schema: Schema, path: str, pruned: list[str]) -> Any:
    """Prune unknown fields, drop non-nullable nulls and apply defaults (returns the value)."""
    if isinstance(value, dict) and _is_object_schema(schema):
        props = schema.get("properties")
        additional = schema.get("additionalProperties")
        preserve = bool(schema.get("x-kubernetes-preserve-unknown-fields"))
        out: dict[str, Any] = {}
        for key, item in value.items():
            sub = props.get(key) if props else None
            if sub is None and isinstance(additional, dict):
                sub = additional
            if sub is None:
                if preserve or additional is True:
                    out[key] = item
                else:
                    pruned.append(_join(path, key))  # a real server drops unknown fields
                continue
            if item is None and not sub.get("nullable"):
                continue
            out[key] = _normalize(item, sub, _join(path, key), pruned)
        for key, sub in (props or {}).items():
            if key not in out and "default" in sub:
                out[key] = _normalize(copy.deepcopy(sub["default"]), sub, _join(path, key), [])
        return out
    if isinstance(value, list) and isinstance(schema.get("items"), dict):
        items_schema = schema["items"]
        return [
            _normalize(v, items_schema, f"{path}[{i}]", pruned)
            for i, v in enumerate(value)
            if v is not None or items_schema.get("nullable")
        ]
    return value


def _is_object_schema(schema: Schema) -> bool:
    return schema.get("type") == "object" or (
        "type" not in schema and ("properties" in schema or "additionalProperties" in schema)
    )


def _show(value: Any) -> str:
    return json.dumps(value) if isinstance(value, str) else _plain(value)


def _plain(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (dict, list)):
        return json.dumps(value, separators=(",", ":"))
    if value is None:
        return "null"
    return str(value)


@lru_cache(maxsize=2048)
def _regex(pattern: str) -> re.Pattern[str]:
    return re.compile(pattern)


_TYPE_NAMES = {
    str: "string",
    bool: "boolean",
    int: "integer",
    float: "number",
    dict: "object",
    list: "array",
    type(None): "null",
}


def _type_ok(value: Any, schema: Schema) -> bool:
    if schema.get("x-kubernetes-int-or-string"):
        return isinstance(value, (int, str)) and not isinstance(value, bool)
    wanted = schema.get("type")
    if wanted is None:
        return True
    if value is None:
        return bool(schema.get("nullable"))
    if wanted == "integer":
        return isinstance(value, int) and not isinstance(value, bool)
    if wanted == "number":
        return isinstance(value, (int, float)) and not isinstance(value, bool)
    return bool(_TYPE_NAMES.get(type(value)) == wanted)


def _validate(value: Any, schema: Schema, path: str, causes: list[Cause]) -> None:
    where = path or "<root>"
    if not _type_ok(value, schema):
        actual = _TYPE_NAMES.get(type(value), "unknown")
        wanted = "integer or string" if schema.get("x-kubernetes-int-or-string") else schema["type"]
        causes.append(
            Cause(
                path,
                f"Invalid value: {_show(actual)}: {where} in body must be of type {wanted}: "
                f"{_show(actual)}",
                "FieldValueTypeMismatch",
            )
        )
        return
    if value is None:
        return
    _validate_value(value, schema, path, causes)
    if isinstance(value, dict):
        props = schema.get("properties") or {}
        for req in schema.get("required") or []:
            if req not in value:
                causes.append(Cause(_join(path, req), "Required value", "FieldValueRequired"))
        additional = schema.get("additionalProperties")
        for key, item in value.items():
            sub = props.get(key)
            if sub is None and isinstance(additional, dict):
                sub = additional
            if sub is not None:
                _validate(item, sub, _join(path, key), causes)
    elif isinstance(value, list) and isinstance(schema.get("items"), dict):
        for i, item in enumerate(value):
            _validate(item, schema["items"], f"{path}[{i}]", causes)


def _join(path: str, key: str) -> str:
    return f"{path}.{key}" if path else key


def _validate_value(value: Any, schema: Schema, path: str, causes: list[Cause]) -> None:
    """Value constraints and combinators (allOf/anyOf/oneOf/not), without recursion into
    properties: the structural walk in `_validate` does that."""
    where = path or "<root>"
    shown = _show(value)
    if "enum" in schema and value not in schema["enum"]:
        supported = ", ".join(_show(v) for v in schema["enum"])
        causes.append(
            Cause(
                path,
                f"Unsupported value: {shown}: supported values: {supported}",
                "FieldValueNotSupported",
            )
        )
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        lo, hi = schema.get("minimum"), schema.get("maximum")
        if lo is not None:
            if schema.get("exclusiveMinimum") and value <= lo:
                causes.append(
                    Cause(
                        path,
                        f"Invalid value: {shown}: {where} in body should be greater than "
                        f"{_plain(lo)}",
                    )
                )
            elif value < lo:
                causes.append(
                    Cause(
                        path,
                        f"Invalid value: {shown}: {where} in body should be greater than or "
                        f"equal to {_plain(lo)}",
                    )
                )
        if hi is not None:
            if schema.get("exclusiveMaximum") and value >= hi:
                causes.append(
                    Cause(
                        path,
                        f"Invalid value: {shown}: {where} in body should be less than {_plain(hi)}",
                    )
                )
            elif value > hi:
                causes.append(
                    Cause(
                        path,
                        f"Invalid value: {shown}: {where} in body should be less than or equal "
                        f"to {_plain(hi)}",
                    )
                )
        step = schema.get("multipleOf")
        if step and (value / step) != int(value / step):
            causes.append(
                Cause(
                    path, f"Invalid value: {shown}: {where} in body should be a multiple of {step}"
                )
            )
    if isinstance(value, str):
        if "pattern" in schema and not _regex(schema["pattern"]).search(value):
            causes.append(
                Cause(
                    path,
                    f"Invalid value: {shown}: {where} in body should match '{schema['pattern']}'",
                )
            )
        if "maxLength" in schema and len(value) > schema["maxLength"]:
            causes.append(
                Cause(
                    path,
                    f"Too long: may not be more than {schema['maxLength']} bytes",
                    "FieldValueTooLong",
                )
            )
        if "minLength" in schema and len(value) < schema["minLength"]:
            causes.append(
                Cause(
                    path,
                    f"Invalid value: {shown}: {where} in body should be at least "
                    f"{schema['minLength']} chars long",
                )
            )
    if isinstance(value, list):
        if "maxItems" in schema and len(value) > schema["maxItems"]:
            causes.append(
                Cause(
                    path,
                    f"Too many: {len(value)}: must have at most {schema['maxItems']} items",
                    "FieldValueTooMany",
                )
            )
        if "minItems" in schema and len(value) < schema["minItems"]:
            causes.append(
                Cause(
                    path,
                    f"Invalid value: {len(value)}: {where} in body should have at least "
                    f"{schema['minItems']} items",
                )
            )
    if isinstance(value, dict):
        if "maxProperties" in schema and len(value) > schema["maxProperties"]:
            causes.append(
                Cause(
                    path,
                    f"Too many: {len(value)}: must have at most {schema['maxProperties']} items",
                    "FieldValueTooMany",
                )
            )
        if "minProperties" in schema and len(value) < schema["minProperties"]:
            causes.append(
                Cause(
                    path,
                    f"Invalid value: {len(value)}: {where} in body should have at least "
                    f"{schema['minProperties']} properties",
                )
            )
    for sub in schema.get("allOf") or []:
        causes.extend(_combinator_causes(value, sub, path))
    any_of = schema.get("anyOf") if not schema.get("x-kubernetes-int-or-string") else None
    if any_of and all(_combinator_causes(value, sub, path) for sub in any_of):
        causes.append(
            Cause(
                path,
                f"Invalid value: {shown}: {where} in body must match at least one schema in anyOf",
            )
        )
    if schema.get("oneOf"):
        matching = sum(1 for sub in schema["oneOf"] if not _combinator_causes(value, sub, path))
        if matching != 1:
            causes.append(
                Cause(
                    path,
                    f"Invalid value: {_plain(value)}: {where} in body must validate one and "
                    "only one schema (oneOf)",
                )
            )
    if isinstance(schema.get("not"), dict) and not _combinator_causes(value, schema["not"], path):
        causes.append(
            Cause(
                path,
                f"Invalid value: {_plain(value)}: {where} in body must not validate the "
                "schema (not)",
            )
        )


def _combinator_causes(value: Any, schema: Schema, path: str) -> list[Cause]:
    """Errors of a value against a combinator branch (structural rules forbid types and
    defaults there, so value constraints, `required` and nested properties are enough)."""
    causes: list[Cause] = []
    if not _type_ok(value, schema):
        return [Cause(path, "type mismatch")]
    _validate_value(value, schema, path, causes)
    if isinstance(value, dict):
        for req in schema.get("required") or []:
            if req not in value:
                causes.append(Cause(_join(path, req), "Required value", "FieldValueRequired"))
        for key, sub in (schema.get("properties") or {}).items():
            if key in value:
                causes.extend(_combinator_causes(value[key], sub, _join(path, key)))
    elif isinstance(value, list) and isinstance(schema.get("items"), dict):
        for i, item in enumerate(value):
            causes.extend(_combinator_causes(item, schema["items"], f"{path}[{i}]"))
    return causes
