"""Admission of a written object, as the API server's registry does it: name rules, defaulting,
pruning and validation (schemas for custom resources, built-in rules for the rest), and the
checks of a CustomResourceDefinition itself."""

from __future__ import annotations

import re
from typing import Any

from . import builtin_defaults, schema
from .errors import BadRequest, Cause, invalid
from .kinds import ResourceType
from .metadata import metadata_causes

Obj = dict[str, Any]
StrList = list[str]

CRD_KEY = ("apiextensions.k8s.io", "CustomResourceDefinition")
NAMESPACE_KEY = ("", "Namespace")

_DNS_LABEL = re.compile(r"[a-z0-9]([-a-z0-9]*[a-z0-9])?")
_DNS_SUBDOMAIN = re.compile(r"[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*")


def check_name(t: ResourceType, name: str) -> None:
    """Raise Invalid unless `name` is a name the API server accepts for `t`."""
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


def admit(
    t: ResourceType,
    obj: Obj,
    *,
    creating: bool,
    version: str,
    field_validation: str = "Ignore",
    old: Obj | None = None,
) -> StrList:
    """Defaulting, pruning and validation (mutates obj); raises Invalid, or BadRequest
    for unknown fields under fieldValidation=Strict. Returns the warnings of
    fieldValidation=Warn (the pruned fields)."""
    meta = obj["metadata"]
    causes = metadata_causes(meta)
    warnings: StrList = []
    if t.schemas:
        pruned: list[str] = []
        causes += schema.admit(obj, t.schemas.get(version) or t.schemas[t.storage_version], pruned)
        if pruned and field_validation == "Strict":
            unknown = ", ".join(f'unknown field "{p}"' for p in pruned)
            raise BadRequest(
                f'{t.kind} in version "{version}" cannot be handled as a {t.kind}: '
                f"strict decoding error: {unknown}"
            )
        if pruned and field_validation == "Warn":
            warnings = [f'unknown field "{p}"' for p in pruned]
    else:
        builtin_defaults.apply_defaults(t.key, obj, creating, old)
        causes += builtin_defaults.validate(t.key, obj)
    if t.key == CRD_KEY and not causes:
        causes += crd_causes(obj)
    if causes:
        raise invalid(t.kind, t.group, meta.get("name", ""), causes)
    return warnings


def crd_causes(crd: Obj) -> list[Cause]:
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
