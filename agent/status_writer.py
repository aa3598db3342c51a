"""Write a canary's status once per tick: skip when unchanged, guarded by resourceVersion.

After a conflict because someone changed the spec or an annotation meanwhile, the computed
status still stands: re-read the object and put it again on the fresh version, provided its
status is still the one the tick decided from. The next tick, triggered by that very change,
decides on the new spec. A status that changed meanwhile means another replica acted (a Lease
that changed hands, a process that slept past its Lease): this tick's decision is stale, so it
is dropped rather than written over the newer one (a repeated step otherwise).
"""

from __future__ import annotations

from typing import Any, Protocol

from kubectl_canary.api.model import API_VERSION
from kubectl_canary.resources import ConflictError, Obj

_ATTEMPTS = 3


class StatusClient(Protocol):
    def get(self, api_version: str, kind: str, namespace: str, name: str) -> Obj | None: ...

    def update_status(self, obj: Obj) -> Obj: ...


def same_status(old: Any, new: Any) -> bool:
    """Equal as JSON documents. Python's `==` already takes 1 == 1.0 (the server may return
    numbers as int where we had float), and costs no copy: this runs on every tick."""
    return bool((old or {}) == (new or {}))


def write_status(client: StatusClient, obj: Obj, status: dict[str, Any]) -> Obj | None:
    """PUT `status` onto `obj` unless it is already there. Returns the stored object, or None
    when nothing was written (unchanged, or the Canary is gone)."""
    decided_from = obj.get("status")
    current: Obj | None = obj
    for attempt in range(1, _ATTEMPTS + 1):
        if current is None or same_status(current.get("status"), status):
            return None
        if current is not obj and not same_status(current.get("status"), decided_from):
            return None  # another writer moved status on: this tick's decision is stale
        try:
            return client.update_status({**current, "status": status})
        except ConflictError:
            if attempt == _ATTEMPTS:
                raise
            meta = current["metadata"]
            current = client.get(API_VERSION, "Canary", meta["namespace"], meta["name"])
    return None
