"""Steering a release: write a request annotation, wait for the agent's acknowledgement.

The plugin never writes status (the agent alone does). It merge-patches REQUEST_ANNOTATION with
`{id, action, skipAnalysis}`; the agent answers by copying the id into `status.lastRequest`,
with `accepted` and a message. Requests that cannot make sense are refused before writing.
"""

from __future__ import annotations

import uuid
from typing import Any

from kubectl_canary.api import steering
from kubectl_canary.api.model import (
    API_VERSION,
    REQUEST_ANNOTATION,
    Phase,
    Request,
    RequestAck,
    RequestAction,
)
from kubectl_canary.api.steering import Refusal
from kubectl_canary.cli.errors import RefusedError, TimeoutExceeded
from kubectl_canary.cli.options import Session

Obj = dict[str, Any]

POLL_SECONDS = 0.25


def refusal(obj: Obj, action: RequestAction) -> str | None:
    """Why `action` makes no sense for this canary right now (the agent's own rules,
    kubectl_canary/api/steering.py), or None when it may."""
    status = obj.get("status") or {}
    phase = status.get("phase") or Phase.INITIALIZING.value
    paused = bool(status.get("paused"))
    name = obj["metadata"]["name"]
    deleting = bool(obj["metadata"].get("deletionTimestamp"))
    why = steering.refusal(action, phase, paused=paused, deleting=deleting)
    if why is None:
        return None
    if why is Refusal.DELETING:
        return f"canary {name} is being deleted"
    if why is Refusal.NOT_FAILED:
        return (
            f"canary {name} is {phase}, not Failed: retry re-runs the analysis of a failed revision"
        )
    if why is Refusal.NOT_PAUSED:
        return f"canary {name} is not paused ({phase}): nothing to resume"
    if why is Refusal.TOO_LATE:
        return f"canary {name} is already being promoted ({phase}): too late to {action.value}"
    if why is Refusal.ALREADY_PAUSED:
        return f"canary {name} is already paused"
    return f"canary {name} is {phase}: no release in progress to {action.value}"


def request_patch(request: Request) -> Obj:
    from kubectl_canary.api.render import render_request

    return {"metadata": {"annotations": {REQUEST_ANNOTATION: render_request(request)}}}


def _ack(obj: Obj, request_id: str) -> RequestAck | None:
    last = (obj.get("status") or {}).get("lastRequest") or {}
    if last.get("id") != request_id:
        return None
    return RequestAck(
        id=request_id,
        action=str(last.get("action", "")),
        accepted=bool(last.get("accepted")),
        message=str(last.get("message", "")),
        time=str(last.get("time", "")),
    )


def send(
    session: Session,
    name: str,
    action: RequestAction,
    *,
    skip_analysis: bool = False,
    timeout: float = 60.0,
) -> RequestAck:
    """Ask the agent to `action` canary `name`; return its acceptance, raise on refusal."""
    from kubectl_canary.cli.reads import get_canary

    kube, ns, runtime = session.kube, session.namespace, session.runtime
    obj = get_canary(kube, ns, name)
    why = refusal(obj, action)
    if why:
        raise RefusedError(why)
    request = Request(id=str(uuid.uuid4()), action=action, skip_analysis=skip_analysis)
    kube.patch_merge(API_VERSION, "Canary", ns, name, request_patch(request))
    start = runtime.monotonic()
    while True:
        ack = _ack(get_canary(kube, ns, name), request.id)
        if ack is not None:
            if not ack.accepted:
                raise RefusedError(f"the agent refused to {action.value} {name}: {ack.message}")
            return ack
        if runtime.monotonic() - start >= timeout:
            raise TimeoutExceeded(
                f"the agent did not acknowledge the {action.value} request within {timeout:g}s; "
                "it stays pending until the agent handles it (see `kubectl canary doctor`)"
            )
        runtime.sleep(POLL_SECONDS)
