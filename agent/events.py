"""Kubernetes Events for a Canary: one core/v1 Event per message, never aggregated.

client-go's recorder (and the official Python client's helpers) merge similar events and drop
bursts, so "Advance weight 20" could vanish. We create each Event ourselves under a unique name
(`<canary>.<hex nanoseconds><hex random>`, the API server's own naming style plus randomness so
two agents or two ticks in one nanosecond never collide), with count 1. They are legacy-style
core/v1 Events (first/lastTimestamp, no eventTime), which every API server accepts and
`kubectl get events` sorts.
"""

from __future__ import annotations

import secrets
import time
from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any

from kubectl_canary.api.model import API_VERSION
from kubectl_canary.resources import Obj

COMPONENT = "kubectl-canary-agent"
# Event names are DNS subdomains (<= 253 characters); keep room for the suffix.
_NAME_MAX = 253 - 1 - 16 - 8


def event_name(canary_name: str, now_ns: int | None = None) -> str:
    stamp = now_ns if now_ns is not None else time.time_ns()
    return f"{canary_name[:_NAME_MAX]}.{stamp:x}{secrets.token_hex(4)}"


def rfc3339(t: datetime) -> str:
    return t.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def event_object(
    canary: Mapping[str, Any],
    type_: str,
    reason: str,
    message: str,
    now: datetime,
    instance: str,
) -> Obj:
    """An Event about the Canary object `canary` (only its metadata is read)."""
    meta = canary.get("metadata") or {}
    name, namespace = meta.get("name", ""), meta.get("namespace", "")
    stamp = rfc3339(now)
    return {
        "apiVersion": "v1",
        "kind": "Event",
        "metadata": {"name": event_name(name), "namespace": namespace},
        "involvedObject": {
            "apiVersion": API_VERSION,
            "kind": "Canary",
            "name": name,
            "namespace": namespace,
            "uid": meta.get("uid", ""),
            "resourceVersion": meta.get("resourceVersion", ""),
        },
        "type": type_,
        "reason": reason,
        "message": message,
        "source": {"component": COMPONENT},
        "reportingComponent": COMPONENT,
        "reportingInstance": instance,
        "firstTimestamp": stamp,
        "lastTimestamp": stamp,
        "action": reason,
        "count": 1,
    }
