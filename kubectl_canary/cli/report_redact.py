"""What a support bundle may carry of an object: pure functions over the API server's dicts.

A bundle is sent to other people (a vendor, a public issue), so it never holds a Secret's
values unless asked for: a Secret keeps its name, type and keys, each value replaced by
REDACTED. A container's `env` value whose name looks like a credential is redacted too, and
the `last-applied-configuration` annotation goes (it repeats the object, Secret values
included). `managedFields` go because they are long and say nothing about a release.
"""

from __future__ import annotations

import copy
import re
from typing import Any

Obj = dict[str, Any]

REDACTED = "<redacted>"
LAST_APPLIED = "kubectl.kubernetes.io/last-applied-configuration"
# Names of env variables that carry credentials by convention.
_CREDENTIAL_NAME = re.compile(r"passw|secret|token|api_?key|credential|private_?key|auth", re.I)
_SECRET_VALUES = ("data", "stringData")


def for_bundle(obj: Obj, include_secrets: bool = False) -> Obj:
    """A copy of `obj` fit for a bundle (the object itself is left as it is)."""
    out = copy.deepcopy(obj)
    meta = out.get("metadata")
    if isinstance(meta, dict):
        meta.pop("managedFields", None)
        annotations = meta.get("annotations")
        if isinstance(annotations, dict):
            annotations.pop(LAST_APPLIED, None)
    if include_secrets:
        return out
    if out.get("kind") == "Secret":
        for key in _SECRET_VALUES:
            if isinstance(out.get(key), dict):
                out[key] = dict.fromkeys(out[key], REDACTED)
    _redact_env(out)
    return out


def _redact_env(node: Any) -> None:
    """Redact credential-looking env values in every container list under `node` (a Pod's
    spec, a Deployment's template, a list of either)."""
    if isinstance(node, list):
        for item in node:
            _redact_env(item)
        return
    if not isinstance(node, dict):
        return
    for key, value in node.items():
        if key in ("containers", "initContainers", "ephemeralContainers") and isinstance(
            value, list
        ):
            for container in value:
                for env in (container.get("env") or []) if isinstance(container, dict) else []:
                    if (
                        isinstance(env, dict)
                        and "value" in env
                        and _CREDENTIAL_NAME.search(str(env.get("name", "")))
                    ):
                        env["value"] = REDACTED
        else:
            _redact_env(value)
