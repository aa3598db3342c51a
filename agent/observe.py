"""Build the core's Observations from objects the tick read (no API requests of its own).

A Deployment counts as ready only at its current template: while the controller has not yet
observed the latest generation, or replicas still run an older template, the ready count is what
is ready *and* updated. Otherwise a canary just bumped to a new image would look ready on the
old pods' account. `readyReplicas` counts the old ReplicaSets' pods too, so while any of them
remain (`status.replicas` above the updated count) only what readiness is left once they are
all counted out is the new pods' (Flagger: "old replicas are pending termination"). The
agent acts on a rollout's end as soon as it sees it, so this must not be early.
"""

from __future__ import annotations

import logging
from collections.abc import Callable

from agent.core.types import Observations, Routes, WorkloadObservation
from kubectl_canary.api.errors import InvalidResource
from kubectl_canary.api.model import Canary, Request
from kubectl_canary.api.parse import parse_request
from kubectl_canary.resources import Obj

log = logging.getLogger("agent.observe")


def workload(dep: Obj | None, template_hash: str = "") -> WorkloadObservation:
    if dep is None:
        return WorkloadObservation(exists=False)
    meta = dep.get("metadata") or {}
    spec = dep.get("spec") or {}
    status = dep.get("status") or {}
    replicas = int(spec.get("replicas", 1) if spec.get("replicas") is not None else 1)
    generation = int(meta.get("generation") or 0)
    observed = int(status.get("observedGeneration") or 0)
    ready = int(status.get("readyReplicas") or 0)
    updated = int(status.get("updatedReplicas") or 0)
    available = int(status.get("availableReplicas") or 0)
    old = max(0, int(status.get("replicas") or updated) - updated)  # pods of older templates
    if generation and observed < generation:
        # The controller has not acted on the latest spec yet: nothing counts as updated.
        updated, ready, available = 0, 0, 0
    else:
        ready = max(0, min(ready - old, updated))
        available = max(0, min(available - old, updated))
    containers = ((spec.get("template") or {}).get("spec") or {}).get("containers") or []
    conditions = status.get("conditions") or []
    deadline = any(
        c.get("type") == "Progressing" and c.get("reason") == "ProgressDeadlineExceeded"
        for c in conditions
    )
    return WorkloadObservation(
        exists=True,
        replicas=replicas,
        ready_replicas=ready,
        updated_replicas=updated,
        available_replicas=available,
        template_hash=template_hash,
        images=tuple(str(c.get("image", "")) for c in containers),
        deadline_exceeded=deadline,
        deleting=bool(meta.get("deletionTimestamp")),
    )


def pending_request(canary: Canary, warn: Callable[[str], None]) -> Request | None:
    """The plugin's request unless already acknowledged (status.lastRequest.id is its id)."""
    try:
        request = parse_request(canary.annotations)
    except InvalidResource as exc:
        warn(f"ignoring malformed request annotation: {exc}")
        return None
    if request is None:
        return None
    ack = canary.status.last_request
    if ack is not None and ack.id == request.id:
        return None
    return request


def observations(
    canary: Canary,
    target: Obj | None,
    target_hash: str,
    primary: Obj | None,
    primary_hash: str,
    routes: Routes | None,
    hpa: Obj | None,
    request: Request | None,
    spec_error: str | None = None,
    apex_on_target: bool | None = None,
) -> Observations:
    return Observations(
        target=workload(target, target_hash),
        primary=workload(primary, primary_hash),
        routes=routes,
        hpa_present=hpa is not None,
        request=request,
        deleting=canary.deletion_timestamp is not None,
        spec_error=spec_error,
        apex_on_target=apex_on_target,
    )
