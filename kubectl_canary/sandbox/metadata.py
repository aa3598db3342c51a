"""Validation of object metadata shared by every kind: label and annotation syntax, and the
256 KiB annotation budget (what makes client-side apply of a huge CRD fail on a real server)."""

from __future__ import annotations

import json
import re
from typing import Any

from .errors import Cause

ANNOTATIONS_MAX_BYTES = 256 * 1024
_NAME = re.compile(r"([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9]")
_PREFIX = re.compile(r"[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*")


def _key_problem(key: str) -> str | None:
    prefix, _, name = key.rpartition("/")
    if prefix and (len(prefix) > 253 or not _PREFIX.fullmatch(prefix)):
        return "prefix part must be a lowercase RFC 1123 subdomain"
    if not name or len(name) > 63 or not _NAME.fullmatch(name):
        return (
            "name part must consist of alphanumeric characters, '-', '_' or '.', and must "
            "start and end with an alphanumeric character, at most 63 characters"
        )
    return None


def metadata_causes(meta: dict[str, Any]) -> list[Cause]:
    causes = label_causes("metadata.labels", meta.get("labels"))
    causes += _map_causes("metadata.annotations", meta.get("annotations"), labels=False)
    annotations = meta.get("annotations")
    if isinstance(annotations, dict):
        size = sum(len(k) + len(str(v)) for k, v in annotations.items())
        if size > ANNOTATIONS_MAX_BYTES:
            causes.append(
                Cause(
                    "metadata.annotations",
                    f"Too long: may not be more than {ANNOTATIONS_MAX_BYTES} bytes",
                    "FieldValueTooLong",
                )
            )
    return causes


def label_causes(path: str, labels: Any) -> list[Cause]:
    """Problems of a label map at `path`: metadata.labels, and what a real server checks as
    labels too (a selector's matchLabels, a pod template's labels, a Service's selector)."""
    return _map_causes(path, labels, labels=True)


def _map_causes(path: str, values: Any, *, labels: bool) -> list[Cause]:
    if values is None:
        return []
    if not isinstance(values, dict):
        return [Cause(path, "Invalid value: must be a map of strings")]
    causes: list[Cause] = []
    for key, value in values.items():
        if not isinstance(value, str):
            causes.append(
                Cause(f"{path}.{key}", f"Invalid value: {json.dumps(value)}: must be a string")
            )
            continue
        problem = _key_problem(key)
        if problem:
            causes.append(Cause(path, f'Invalid value: "{key}": {problem}'))
        if labels and len(value) > 63:
            # The real server's wording for a label value that is too long.
            causes.append(
                Cause(path, f'Invalid value: "{value}": must be no more than 63 characters')
            )
        elif labels and value and not _NAME.fullmatch(value):
            causes.append(
                Cause(
                    path,
                    f'Invalid value: "{value}": a valid label must be an empty string or '
                    "consist of alphanumeric characters, '-', '_' or '.', and must start "
                    "and end with an alphanumeric character",
                )
            )
    return causes
