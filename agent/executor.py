"""Carry out the core's actions, in order, against the cluster.

Events are not sent here: they are collected and recorded after the status write succeeds, so
the Events always match `status.history` (a tick that fails half-way writes neither).
`QueryMetrics` / `RunGates` belong to the tick's two-pass protocol and never reach this module.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from agent.core.types import (
    Action,
    AddFinalizer,
    EmitEvent,
    Initialize,
    Notify,
    PromoteTemplate,
    QueryMetrics,
    RemoveFinalizer,
    RequeueAfter,
    RestoreTargetTemplate,
    Revert,
    RevertRouting,
    RunGates,
    ScaleTarget,
    SetRoutes,
)
from agent.toolkit import Toolkit
from kubectl_canary.api.model import API_VERSION, FINALIZER, Canary
from kubectl_canary.objects.primary import ensure_primary_hpa
from kubectl_canary.resources import Obj, ResourceClient

DEPLOYMENT_API = "apps/v1"


@dataclass
class Outcome:
    """What the tick still has to do after the actions ran."""

    canary_obj: Obj  # the Canary as last returned by the API (finalizer patches change it)
    events: list[EmitEvent] = field(default_factory=list)
    requeue: float | None = None


class Executor:
    def __init__(self, client: ResourceClient, toolkit: Toolkit, log: Any) -> None:
        self._client = client
        self._toolkit = toolkit
        self._log = log

    def run(
        self,
        canary: Canary,
        canary_obj: Obj,
        target: Obj | None,
        actions: tuple[Action, ...],
    ) -> Outcome:
        out = Outcome(canary_obj)
        for action in actions:
            self._one(canary, target, action, out)
        return out

    def _one(self, canary: Canary, target: Obj | None, action: Action, out: Outcome) -> None:
        client, kit = self._client, self._toolkit
        if isinstance(action, EmitEvent):
            out.events.append(action)
        elif isinstance(action, RequeueAfter):
            out.requeue = (
                action.seconds if out.requeue is None else min(out.requeue, action.seconds)
            )
        elif isinstance(action, Initialize):
            if target is None:
                raise RuntimeError(f"cannot initialize: Deployment {canary.spec.target_ref.name}")
            kit.initialize(canary, client, target, action.routing)
            ensure_primary_hpa(client, canary)
            if action.routing:
                kit.router(canary, client).reconcile(canary)
        elif isinstance(action, ScaleTarget):
            self._scale_target(canary, target, action.replicas)
        elif isinstance(action, SetRoutes):
            router = kit.router(canary, client)
            router.set_routes(canary, action.primary, action.canary, action.mirror, action.match)
            self._log.info(
                "routes set",
                extra={"primary": action.primary, "canaryWeight": action.canary},
            )
        elif isinstance(action, PromoteTemplate):
            if target is None:
                raise RuntimeError(f"cannot promote: Deployment {canary.spec.target_ref.name}")
            ensure_primary_hpa(client, canary)
            kit.promote(canary, client, target, action.with_replicas)
        elif isinstance(action, Notify):
            for hook in action.webhooks:
                payload = kit.webhook_payload(canary, hook, action.phase)
                if action.message:
                    payload["metadata"]["eventMessage"] = action.message
                result = kit.call_webhook(hook, payload)
                if not result.ok:
                    self._log.warning(
                        "webhook %s failed: %s",
                        hook.name,
                        result.message,
                        extra={"webhook": hook.name},
                    )
        elif isinstance(action, AddFinalizer):
            out.canary_obj = self._add_finalizer(out.canary_obj)
        elif isinstance(action, RemoveFinalizer):
            out.canary_obj = self._remove_finalizer(out.canary_obj)
        elif isinstance(action, RestoreTargetTemplate):
            kit.restore_target(canary, client)
            self._log.info("restored the target's last promoted template")
        elif isinstance(action, Revert):
            kit.revert(canary, client)
        elif isinstance(action, RevertRouting):
            kit.router(canary, client).finalize(canary)
            self._log.info("routing reverted")
        elif isinstance(action, QueryMetrics | RunGates):
            raise RuntimeError(f"{type(action).__name__} left after the second pass")
        else:  # pragma: no cover - the Action union is exhaustive
            raise RuntimeError(f"unknown action {action!r}")

    def _scale_target(self, canary: Canary, target: Obj | None, replicas: int) -> None:
        if target is not None and (target.get("spec") or {}).get("replicas") == replicas:
            return
        self._client.patch_merge(
            DEPLOYMENT_API,
            "Deployment",
            canary.namespace,
            canary.spec.target_ref.name,
            {"spec": {"replicas": replicas}},
        )
        self._log.info("scaled target", extra={"replicas": replicas})

    def _add_finalizer(self, obj: Obj) -> Obj:
        meta = obj["metadata"]
        finalizers = list(meta.get("finalizers") or [])
        if FINALIZER in finalizers:
            return obj
        guard = {
            "op": "test",
            "path": "/metadata/resourceVersion",
            "value": meta["resourceVersion"],
        }
        op: Obj
        if finalizers:
            op = {"op": "add", "path": "/metadata/finalizers/-", "value": FINALIZER}
        else:
            op = {"op": "add", "path": "/metadata/finalizers", "value": [FINALIZER]}
        return self._client.patch_json(
            API_VERSION, "Canary", meta["namespace"], meta["name"], [guard, op]
        )

    def _remove_finalizer(self, obj: Obj) -> Obj:
        meta = obj["metadata"]
        finalizers = list(meta.get("finalizers") or [])
        if FINALIZER not in finalizers:
            return obj
        i = finalizers.index(FINALIZER)
        ops = [
            {"op": "test", "path": f"/metadata/finalizers/{i}", "value": FINALIZER},
            {"op": "remove", "path": f"/metadata/finalizers/{i}"},
        ]
        return self._client.patch_json(API_VERSION, "Canary", meta["namespace"], meta["name"], ops)
