"""The Deployment controller: ReplicaSets per pod template, rolling updates, and status.

Follows kube-controller-manager's deployment controller closely where clients can see it:
ReplicaSet names `<deployment>-<pod-template-hash>`, revision annotations, the rolling update
arithmetic of maxSurge/maxUnavailable, and the status fields and conditions that
`kubectl rollout status` and canary tools read (Available, Progressing with its reasons,
ProgressDeadlineExceeded). Simplified: minReadySeconds is ignored (ready means available),
no proportional scaling of several live ReplicaSets, no paused-condition reasons.
"""

from __future__ import annotations

import copy
import hashlib
import json
import math
import time
from typing import Any

from kubectl_canary.sandbox.simulation.context import Context
from kubectl_canary.sandbox.simulation.objects import (
    DEPLOYMENT,
    REPLICASET,
    Obj,
    condition,
    is_terminating,
    meta,
    name_of,
    owner_reference,
    rfc3339,
)

HASH_LABEL = "pod-template-hash"
REVISION = "deployment.kubernetes.io/revision"
DESIRED_REPLICAS = "deployment.kubernetes.io/desired-replicas"
MAX_REPLICAS = "deployment.kubernetes.io/max-replicas"
_HASH_ALPHABET = "bcdfghjklmnpqrstvwxz2456789"


def pod_template_hash(template: dict[str, Any]) -> str:
    """A stable short hash of a pod template, spelled with Kubernetes' safe alphabet."""
    digest = hashlib.sha256(json.dumps(template, sort_keys=True).encode()).digest()
    number = int.from_bytes(digest[:8], "big")
    chars = []
    for _ in range(10):
        number, index = divmod(number, len(_HASH_ALPHABET))
        chars.append(_HASH_ALPHABET[index])
    return "".join(chars)


def _resolve(value: Any, total: int, round_up: bool) -> int:
    """An IntOrString such as 1 or "25%" against `total` replicas."""
    if isinstance(value, str) and value.endswith("%"):
        exact = float(value[:-1]) * total / 100
        return math.ceil(exact) if round_up else math.floor(exact)
    return int(value or 0)


def surge_and_unavailable(deployment: Obj) -> tuple[int, int]:
    spec = deployment.get("spec") or {}
    replicas = int(spec.get("replicas", 1))
    strategy = spec.get("strategy") or {}
    if strategy.get("type") == "Recreate":
        return 0, replicas
    rolling = strategy.get("rollingUpdate") or {}
    surge = _resolve(rolling.get("maxSurge", "25%"), replicas, round_up=True)
    unavailable = _resolve(rolling.get("maxUnavailable", "25%"), replicas, round_up=False)
    if surge == 0 and unavailable == 0:
        unavailable = 1  # the real controller's rule, so a rollout can always make progress
    return surge, min(unavailable, replicas)


def _spec_replicas(rs: Obj) -> int:
    return int((rs.get("spec") or {}).get("replicas", 0))


def _status_int(obj: Obj, field: str) -> int:
    return int((obj.get("status") or {}).get(field, 0))


def _revision(rs: Obj) -> int:
    try:
        return int((meta(rs).get("annotations") or {}).get(REVISION, 0))
    except ValueError:
        return 0


def _created(rs: Obj) -> tuple[str, str]:
    return str(meta(rs).get("creationTimestamp", "")), name_of(rs)


def sync_deployment(ctx: Context, namespace: str, name: str) -> None:
    deployment = ctx.cache.get(DEPLOYMENT, namespace, name)
    if deployment is None or is_terminating(deployment):
        ctx.progress_marks.pop((namespace, name), None)
        return
    spec = deployment.get("spec") or {}
    template = spec.get("template") or {}
    template_hash = pod_template_hash(template)
    owned = [rs for rs in ctx.cache.dependents(REPLICASET, deployment) if not is_terminating(rs)]
    new_rs = next((rs for rs in owned if _labels(rs).get(HASH_LABEL) == template_hash), None)
    old = sorted((rs for rs in owned if rs is not new_rs), key=_created)
    conditions_update: tuple[str, str] | None = None  # (reason, message) for Progressing

    paused = bool(spec.get("paused"))
    if new_rs is None and not paused:
        new_rs = _create_replica_set(ctx, deployment, template, template_hash, old)
        if new_rs is None:
            return
        conditions_update = ("NewReplicaSetCreated", f'Created new replica set "{name_of(new_rs)}"')
    elif new_rs is not None:
        new_rs = _ensure_revision(ctx, deployment, new_rs, old)

    if new_rs is not None and not paused:
        if (spec.get("strategy") or {}).get("type") == "Recreate":
            _recreate(ctx, deployment, new_rs, old)
        else:
            new_rs = _scale_new(ctx, deployment, new_rs, old)
            _scale_down_old(ctx, deployment, new_rs, old)
    _clean_up_history(ctx, deployment, old)
    if new_rs is not None:
        _set_revision_annotation(ctx, deployment, new_rs)
    _write_status(ctx, namespace, name, new_rs, conditions_update)


def _labels(obj: Obj) -> dict[str, str]:
    return meta(obj).get("labels") or {}


def _create_replica_set(
    ctx: Context, deployment: Obj, template: dict[str, Any], template_hash: str, old: list[Obj]
) -> Obj | None:
    spec = deployment["spec"]
    replicas = int(spec.get("replicas", 1))
    surge, _ = surge_and_unavailable(deployment)
    rs_template = copy.deepcopy(template)
    rs_template.setdefault("metadata", {}).setdefault("labels", {})[HASH_LABEL] = template_hash
    selector = copy.deepcopy(spec.get("selector") or {})
    selector.setdefault("matchLabels", {})[HASH_LABEL] = template_hash
    if (spec.get("strategy") or {}).get("type") == "Recreate" or not old:
        initial = replicas if not any(_spec_replicas(rs) for rs in old) else 0
    else:
        # Surge room left by the old ReplicaSets, as the real controller computes it.
        total = sum(_spec_replicas(rs) for rs in old)
        initial = max(0, min(replicas, replicas + surge - total))
    revision = max((_revision(rs) for rs in old), default=0) + 1
    rs: Obj = {
        "apiVersion": "apps/v1",
        "kind": "ReplicaSet",
        "metadata": {
            "name": f"{name_of(deployment)}-{template_hash}",
            "namespace": meta(deployment)["namespace"],
            "labels": dict(rs_template["metadata"]["labels"]),
            "annotations": {
                REVISION: str(revision),
                DESIRED_REPLICAS: str(replicas),
                MAX_REPLICAS: str(replicas + surge),
            },
            "ownerReferences": [owner_reference(deployment)],
        },
        "spec": {"replicas": initial, "selector": selector, "template": rs_template},
    }
    if "minReadySeconds" in spec:
        rs["spec"]["minReadySeconds"] = spec["minReadySeconds"]
    created: Obj | None = _write(ctx, ctx.create, rs, deployment)
    return created


def _write(ctx: Context, action: Any, obj: Obj, deployment: Obj) -> Any:
    retry = ("deployment", meta(deployment)["namespace"], name_of(deployment))
    return ctx.attempt(action, obj, retry)


def _ensure_revision(ctx: Context, deployment: Obj, new_rs: Obj, old: list[Obj]) -> Obj:
    """A template rolled back to an old ReplicaSet makes that one the newest revision."""
    newest_old = max((_revision(rs) for rs in old), default=0)
    if _revision(new_rs) > newest_old:
        return new_rs
    updated = copy.deepcopy(new_rs)
    updated["metadata"].setdefault("annotations", {})[REVISION] = str(newest_old + 1)
    return _write(ctx, ctx.update, updated, deployment) or new_rs


def _scale(ctx: Context, rs: Obj, replicas: int, deployment: Obj) -> Obj:
    spec_replicas = int((deployment.get("spec") or {}).get("replicas", 1))
    surge, _ = surge_and_unavailable(deployment)
    annotations = {
        DESIRED_REPLICAS: str(spec_replicas),
        MAX_REPLICAS: str(spec_replicas + surge),
    }
    current = meta(rs).get("annotations") or {}
    if _spec_replicas(rs) == replicas and all(current.get(k) == v for k, v in annotations.items()):
        return rs
    updated = copy.deepcopy(rs)
    updated["spec"]["replicas"] = replicas
    updated["metadata"].setdefault("annotations", {}).update(annotations)
    return _write(ctx, ctx.update, updated, deployment) or rs


def _scale_new(ctx: Context, deployment: Obj, new_rs: Obj, old: list[Obj]) -> Obj:
    replicas = int(deployment["spec"].get("replicas", 1))
    current = _spec_replicas(new_rs)
    if current > replicas:
        return _scale(ctx, new_rs, replicas, deployment)
    surge, _ = surge_and_unavailable(deployment)
    total = current + sum(_spec_replicas(rs) for rs in old)
    room = replicas + surge - total
    wanted = current + max(0, min(room, replicas - current))
    return _scale(ctx, new_rs, wanted, deployment)


def _scale_down_old(ctx: Context, deployment: Obj, new_rs: Obj, old: list[Obj]) -> None:
    replicas = int(deployment["spec"].get("replicas", 1))
    _, max_unavailable = surge_and_unavailable(deployment)
    min_available = replicas - max_unavailable
    live_old = [rs for rs in old if _spec_replicas(rs) > 0]
    if not live_old:
        return
    new_unavailable = _spec_replicas(new_rs) - _status_int(new_rs, "availableReplicas")
    all_pods = _spec_replicas(new_rs) + sum(_spec_replicas(rs) for rs in live_old)
    budget = all_pods - min_available - new_unavailable
    if budget <= 0:
        return
    # First remove old pods that are not available anyway (they serve nobody), oldest first.
    for index, rs in enumerate(live_old):
        if budget <= 0:
            break
        unhealthy = _spec_replicas(rs) - _status_int(rs, "availableReplicas")
        cut = min(budget, max(0, unhealthy))
        if cut:
            live_old[index] = _scale(ctx, rs, _spec_replicas(rs) - cut, deployment)
            budget -= cut
    # Then scale down available old pods while enough available ones remain overall.
    available = _status_int(new_rs, "availableReplicas") + sum(
        min(_status_int(rs, "availableReplicas"), _spec_replicas(rs)) for rs in live_old
    )
    budget = available - min_available
    for rs in live_old:
        if budget <= 0:
            break
        cut = min(budget, _spec_replicas(rs))
        if cut:
            _scale(ctx, rs, _spec_replicas(rs) - cut, deployment)
            budget -= cut


def _recreate(ctx: Context, deployment: Obj, new_rs: Obj, old: list[Obj]) -> None:
    for rs in old:
        if _spec_replicas(rs):
            _scale(ctx, rs, 0, deployment)
    if any(_status_int(rs, "replicas") for rs in old):
        return  # the real controller waits for all old pods to be gone
    _scale(ctx, new_rs, int(deployment["spec"].get("replicas", 1)), deployment)


def _clean_up_history(ctx: Context, deployment: Obj, old: list[Obj]) -> None:
    limit = int((deployment.get("spec") or {}).get("revisionHistoryLimit", 10))
    idle = [rs for rs in old if _spec_replicas(rs) == 0 and not _status_int(rs, "replicas")]
    for rs in sorted(idle, key=_revision)[: max(0, len(idle) - limit)]:
        _write(ctx, ctx.delete, rs, deployment)


def _set_revision_annotation(ctx: Context, deployment: Obj, new_rs: Obj) -> None:
    current = ctx.cache.get(DEPLOYMENT, meta(deployment)["namespace"], name_of(deployment))
    if current is None:
        return
    revision = str(_revision(new_rs))
    annotations = meta(current).get("annotations") or {}
    if annotations.get(REVISION) == revision:
        return
    updated = copy.deepcopy(current)
    updated["metadata"].setdefault("annotations", {})[REVISION] = revision
    _write(ctx, ctx.update, updated, deployment)


def _write_status(
    ctx: Context,
    namespace: str,
    name: str,
    new_rs: Obj | None,
    created: tuple[str, str] | None,
) -> None:
    deployment = ctx.cache.get(DEPLOYMENT, namespace, name)
    if deployment is None:
        return
    spec = deployment.get("spec") or {}
    replicas = int(spec.get("replicas", 1))
    owned = [rs for rs in ctx.cache.dependents(REPLICASET, deployment) if not is_terminating(rs)]
    counts = {
        "replicas": sum(_status_int(rs, "replicas") for rs in owned),
        "updatedReplicas": _status_int(new_rs, "replicas") if new_rs is not None else 0,
        "readyReplicas": sum(_status_int(rs, "readyReplicas") for rs in owned),
        "availableReplicas": sum(_status_int(rs, "availableReplicas") for rs in owned),
    }
    # As calculateStatus does: desired pods of all ReplicaSets (spec) minus available ones.
    desired = sum(_spec_replicas(rs) for rs in owned)
    counts["unavailableReplicas"] = max(0, desired - counts["availableReplicas"])
    old_status = deployment.get("status") or {}
    status: dict[str, Any] = {
        "observedGeneration": int(meta(deployment).get("generation", 1)),
        # Zero counts are omitted, as the real API does (omitempty).
        **{field: value for field, value in counts.items() if value},
        "conditions": copy.deepcopy(old_status.get("conditions") or []),
    }
    if "collisionCount" in old_status:
        status["collisionCount"] = old_status["collisionCount"]
    now = rfc3339()
    _, max_unavailable = surge_and_unavailable(deployment)
    if counts["availableReplicas"] >= replicas - max_unavailable:
        _set_condition(
            status,
            "Available",
            "True",
            "MinimumReplicasAvailable",
            "Deployment has minimum availability.",
            now,
        )
    else:
        _set_condition(
            status,
            "Available",
            "False",
            "MinimumReplicasUnavailable",
            "Deployment does not have minimum availability.",
            now,
        )
    _progress(ctx, deployment, status, old_status, new_rs, created, now)
    if status != old_status:
        updated = copy.deepcopy(deployment)
        updated["status"] = status
        _write(ctx, ctx.update_status, updated, deployment)


def _set_condition(
    status: dict[str, Any],
    kind: str,
    value: str,
    reason: str,
    message: str,
    now: str,
    keep_transition_if_same_status: bool = True,
) -> None:
    """Kubernetes' SetDeploymentCondition: unchanged status+reason is a no-op; the transition
    time only moves when the status flips."""
    conditions = status["conditions"]
    current = next((c for c in conditions if c.get("type") == kind), None)
    if current is not None and current.get("status") == value and current.get("reason") == reason:
        return
    transition = now
    if current is not None and current.get("status") == value:
        transition = current.get("lastTransitionTime", now)
    fresh = {
        "type": kind,
        "status": value,
        "lastUpdateTime": now,
        "lastTransitionTime": transition,
        "reason": reason,
        "message": message,
    }
    status["conditions"] = [c for c in conditions if c.get("type") != kind] + [fresh]


def _progress(
    ctx: Context,
    deployment: Obj,
    status: dict[str, Any],
    old_status: dict[str, Any],
    new_rs: Obj | None,
    created: tuple[str, str] | None,
    now: str,
) -> None:
    """The Progressing condition, as the real controller's syncRolloutStatus sets it."""
    spec = deployment.get("spec") or {}
    key = (meta(deployment)["namespace"], name_of(deployment))
    if spec.get("paused"):
        ctx.progress_marks.pop(key, None)
        return
    if created is not None:
        _set_condition(status, "Progressing", "True", *created, now)
        ctx.progress_marks[key] = time.monotonic()
    elif new_rs is not None and condition(status, "Progressing") is None:
        _set_condition(
            status,
            "Progressing",
            "True",
            "FoundNewReplicaSet",
            f'Found new replica set "{name_of(new_rs)}"',
            now,
        )
        ctx.progress_marks[key] = time.monotonic()
    replicas = int(spec.get("replicas", 1))
    current = condition(status, "Progressing")
    rs_name = name_of(new_rs) if new_rs is not None else ""
    complete_already = (
        status.get("replicas", 0) == status.get("updatedReplicas", 0)
        and current is not None
        and current.get("reason") == "NewReplicaSetAvailable"
    )
    if complete_already:
        return
    if (
        status.get("updatedReplicas", 0) == replicas
        and status.get("replicas", 0) == replicas
        and status.get("availableReplicas", 0) == replicas
    ):
        _set_condition(
            status,
            "Progressing",
            "True",
            "NewReplicaSetAvailable",
            f'ReplicaSet "{rs_name}" has successfully progressed.',
            now,
        )
        ctx.progress_marks.pop(key, None)
        return
    if _made_progress(old_status, status):
        # The real controller refreshes lastUpdateTime on every bit of progress.
        conditions = [c for c in status["conditions"] if c.get("type") != "Progressing"]
        transition = now
        if current is not None and current.get("status") == "True":
            transition = current.get("lastTransitionTime", now)
        conditions.append(
            {
                "type": "Progressing",
                "status": "True",
                "lastUpdateTime": now,
                "lastTransitionTime": transition,
                "reason": "ReplicaSetUpdated",
                "message": f'ReplicaSet "{rs_name}" is progressing.',
            }
        )
        status["conditions"] = conditions
        ctx.progress_marks[key] = time.monotonic()
    current = condition(status, "Progressing")
    if current is None or current.get("reason") == "ProgressDeadlineExceeded":
        return
    deadline = ctx.real_seconds(float(spec.get("progressDeadlineSeconds", 600)))
    mark = ctx.progress_marks.setdefault(key, time.monotonic())
    remaining = mark + deadline - time.monotonic()
    if remaining <= 0:
        _set_condition(
            status,
            "Progressing",
            "False",
            "ProgressDeadlineExceeded",
            f'ReplicaSet "{rs_name}" has timed out progressing.',
            now,
        )
    else:
        ctx.queue.add_after(("deployment", key[0], key[1]), remaining + 0.01)


def _made_progress(old: dict[str, Any], new: dict[str, Any]) -> bool:
    """DeploymentProgressing: more updated/ready/available pods, or fewer old pods."""

    def get(status: dict[str, Any], field: str) -> int:
        return int(status.get(field, 0))

    old_old = get(old, "replicas") - get(old, "updatedReplicas")
    new_old = get(new, "replicas") - get(new, "updatedReplicas")
    return (
        get(new, "updatedReplicas") > get(old, "updatedReplicas")
        or new_old < old_old
        or get(new, "readyReplicas") > get(old, "readyReplicas")
        or get(new, "availableReplicas") > get(old, "availableReplicas")
    )
