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
    causes: list[Cause] = []
    for field in ("labels", "annotations"):
        values = meta.get(field)
        if values is None:
            continue
        if not isinstance(values, dict):
            causes.append(Cause(f"metadata.{field}", "Invalid value: must be a map of strings"))
            continue
        for key, value in values.items():
            path = f"metadata.{field}"
            if not isinstance(value, str):
                causes.append(
                    Cause(f"{path}.{key}", f"Invalid value: {json.dumps(value)}: must be a string")
                )
                continue
            problem = _key_problem(key)
            if problem:
                causes.append(Cause(path, f'Invalid value: "{key}": {problem}'))
            if field == "labels" and value and (len(value) > 63 or not _NAME.fullmatch(value)):
                causes.append(
                    Cause(
                        path,
                        f'Invalid value: "{value}": a valid label must be an empty string or '
                        "consist of alphanumeric characters, '-', '_' or '.', and must start "
                        "and end with an alphanumeric character, at most 63 characters",
                    )
                )
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
