"""The ReplicaSet controller: keeps `spec.replicas` pods per ReplicaSet, and its status."""

from __future__ import annotations

import copy
from typing import Any

from kubectl_canary.sandbox.simulation.context import Context
from kubectl_canary.sandbox.simulation.objects import (
    POD,
    REPLICASET,
    Obj,
    is_pod_ready,
    is_terminating,
    meta,
    name_of,
    owner_reference,
)
from kubectl_canary.sandbox.simulation.pods import NODE_IPS

# Pods created per sync; a huge scale-up continues on the next pass so other work interleaves.
_BURST = 250


def sync_replica_set(ctx: Context, namespace: str, name: str) -> None:
    rs = ctx.cache.get(REPLICASET, namespace, name)
    if rs is None or is_terminating(rs):
        return
    retry = ("replicaset", namespace, name)
    pods = [p for p in ctx.cache.dependents(POD, rs) if not is_terminating(p)]
    wanted = int((rs.get("spec") or {}).get("replicas", 0))
    if len(pods) < wanted:
        missing = wanted - len(pods)
        for _ in range(min(missing, _BURST)):
            pod = ctx.attempt(ctx.create, _new_pod(ctx, rs), retry)
            if pod is None:
                break
            pods.append(pod)
            ctx.queue.add(("pod", namespace, name_of(pod)))
        if missing > _BURST:
            ctx.queue.add(retry)
    elif len(pods) > wanted:
        # Like the real controller: not-ready pods go first, then the newest.
        ranked = sorted(pods, key=_creation, reverse=True)
        ranked.sort(key=is_pod_ready)
        for pod in ranked[: len(pods) - wanted]:
            if (
                ctx.attempt(ctx.delete, pod, retry) is not None
                or ctx.cache.get(POD, namespace, name_of(pod)) is None
            ):
                pods.remove(pod)
    _write_status(ctx, rs, pods, retry)


def _creation(pod: Obj) -> tuple[str, str]:
    return str(meta(pod).get("creationTimestamp", "")), name_of(pod)


def _new_pod(ctx: Context, rs: Obj) -> Obj:
    template = copy.deepcopy((rs.get("spec") or {}).get("template") or {})
    template_meta = template.get("metadata") or {}
    spec: dict[str, Any] = template.get("spec") or {}
    spec["nodeName"] = ctx.rng.choice(sorted(NODE_IPS))
    pod_meta: dict[str, Any] = {
        "name": f"{name_of(rs)}-{ctx.random_suffix()}",
        "namespace": meta(rs)["namespace"],
        "labels": dict(template_meta.get("labels") or {}),
        "ownerReferences": [owner_reference(rs)],
    }
    if template_meta.get("annotations"):
        pod_meta["annotations"] = dict(template_meta["annotations"])
    return {"apiVersion": "v1", "kind": "Pod", "metadata": pod_meta, "spec": spec}


def _write_status(ctx: Context, rs: Obj, pods: list[Obj], retry: Any) -> None:
    # Re-read the pods: the kubelet may have changed their readiness meanwhile.
    current = [ctx.cache.get(POD, meta(rs)["namespace"], name_of(p)) for p in pods]
    live = [p for p in current if p is not None and not is_terminating(p)]
    ready = sum(1 for p in live if is_pod_ready(p))
    status: dict[str, Any] = {"replicas": len(live)}
    for field, value in (
        ("fullyLabeledReplicas", len(live)),
        ("readyReplicas", ready),
        ("availableReplicas", ready),
    ):
        if value:
            status[field] = value
    status["observedGeneration"] = int(meta(rs).get("generation", 1))
    if status != (rs.get("status") or {}):
        updated = copy.deepcopy(rs)
        updated["status"] = status
        ctx.attempt(ctx.update_status, updated, retry)
