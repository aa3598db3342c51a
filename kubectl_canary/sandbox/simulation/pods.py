"""The simulated kubelet: pods start, become Ready after a delay, or crash-loop on a bad image.

Delays are simulated seconds (divided by the speed-up factor). A container whose image matches
the bad-image rule never becomes ready: it stays `waiting: CrashLoopBackOff` and its
restartCount grows with the kubelet's back-off (10 s doubling to 5 min).
"""

from __future__ import annotations

import copy
import hashlib
import time
from typing import Any

from kubectl_canary.sandbox.simulation.context import Context
from kubectl_canary.sandbox.simulation.objects import POD, Obj, is_terminating, meta, rfc3339

NODE_IPS = {
    "sandbox-node-1": "10.0.0.11",
    "sandbox-node-2": "10.0.0.12",
    "sandbox-node-3": "10.0.0.13",
}
_BACKOFF_START = 10.0
_BACKOFF_MAX = 300.0


def _containers(pod: Obj) -> list[dict[str, Any]]:
    return list((pod.get("spec") or {}).get("containers") or [])


def _container_id(pod: Obj, container: dict[str, Any], restarts: int) -> str:
    seed = f"{meta(pod).get('uid')}/{container.get('name')}/{restarts}".encode()
    return "containerd://" + hashlib.sha256(seed).hexdigest()


def _set(conditions: list[dict[str, Any]], kind: str, value: str, now: str, **extra: str) -> None:
    for item in conditions:
        if item["type"] == kind:
            if item["status"] != value:
                item.update(status=value, lastTransitionTime=now, **extra)
            return
    conditions.append({"type": kind, "status": value, "lastTransitionTime": now, **extra})


def sync_pod(ctx: Context, namespace: str, name: str) -> None:
    pod = ctx.cache.get(POD, namespace, name)
    if pod is None or is_terminating(pod):
        return
    uid = str(meta(pod).get("uid"))
    config = ctx.get_config()
    bad = [c for c in _containers(pod) if config.is_bad_image(str(c.get("image", "")))]
    status = copy.deepcopy(pod.get("status") or {})
    now_mono, now = time.monotonic(), rfc3339()
    item = ("pod", namespace, name)
    if not status.get("podIP"):
        ctx.pod_started[uid] = now_mono
        _start(ctx, pod, status, now, bad)
        ctx.attempt(ctx.update_status, {**pod, "status": status}, item)
        if bad:
            ctx.pod_last_crash[uid] = now_mono
            ctx.queue.add_after(item, ctx.real_seconds(_BACKOFF_START))
        else:
            ctx.queue.add_after(item, ctx.real_seconds(config.ready_delay_seconds))
        return
    started = ctx.pod_started.setdefault(uid, now_mono)
    if bad:
        _crash_loop(ctx, pod, status, bad, now_mono, now, item)
        return
    ready = next((c for c in status.get("conditions") or [] if c["type"] == "Ready"), None)
    if ready is not None and ready.get("status") == "True":
        return
    remaining = started + ctx.real_seconds(config.ready_delay_seconds) - now_mono
    if remaining > 0:
        ctx.queue.add_after(item, remaining)
        return
    conditions = status.setdefault("conditions", [])
    for kind in ("ContainersReady", "Ready"):
        for entry in conditions:
            if entry["type"] == kind:
                entry.pop("reason", None)
                entry.pop("message", None)
        _set(conditions, kind, "True", now)
    for container_status in status.get("containerStatuses") or []:
        container_status["ready"] = True
        container_status["started"] = True
    ctx.attempt(ctx.update_status, {**pod, "status": status}, item)


def _start(ctx: Context, pod: Obj, status: dict[str, Any], now: str, bad: list[Any]) -> None:
    spec = pod.get("spec") or {}
    status.update(
        phase="Running",
        podIP=ctx.next_pod_ip(),
        hostIP=NODE_IPS.get(str(spec.get("nodeName", "")), "10.0.0.9"),
        startTime=now,
        qosClass="BestEffort",
    )
    status["podIPs"] = [{"ip": status["podIP"]}]
    status["hostIPs"] = [{"ip": status["hostIP"]}]
    unready = [str(c.get("name")) for c in _containers(pod)]
    not_ready = {
        "reason": "ContainersNotReady",
        "message": f"containers with unready status: [{' '.join(unready)}]",
    }
    conditions: list[dict[str, Any]] = []
    _set(conditions, "PodReadyToStartContainers", "True", now)
    _set(conditions, "Initialized", "True", now)
    _set(conditions, "Ready", "False", now, **not_ready)
    _set(conditions, "ContainersReady", "False", now, **not_ready)
    _set(conditions, "PodScheduled", "True", now)
    status["conditions"] = conditions
    statuses = []
    for container in _containers(pod):
        image = str(container.get("image", ""))
        entry: dict[str, Any] = {
            "name": container.get("name"),
            "image": image,
            "imageID": f"{image}@sha256:{hashlib.sha256(image.encode()).hexdigest()}",
            "ready": False,
            "restartCount": 0,
            "lastState": {},
        }
        if container in bad:
            entry.update(started=False, state=_waiting(pod, container, _BACKOFF_START))
        else:
            entry.update(
                started=True,
                containerID=_container_id(pod, container, 0),
                state={"running": {"startedAt": now}},
            )
        statuses.append(entry)
    status["containerStatuses"] = statuses


def _waiting(pod: Obj, container: dict[str, Any], backoff: float) -> dict[str, Any]:
    m = meta(pod)
    return {
        "waiting": {
            "reason": "CrashLoopBackOff",
            "message": (
                f"back-off {int(backoff)}s restarting failed container={container.get('name')} "
                f"pod={m.get('name')}_{m.get('namespace')}({m.get('uid')})"
            ),
        }
    }


def _crash_loop(
    ctx: Context,
    pod: Obj,
    status: dict[str, Any],
    bad: list[dict[str, Any]],
    now_mono: float,
    now: str,
    item: tuple[str, str, str],
) -> None:
    uid = str(meta(pod).get("uid"))
    bad_names = {c.get("name") for c in bad}
    restarts = max(
        (
            int(s.get("restartCount", 0))
            for s in status.get("containerStatuses") or []
            if s.get("name") in bad_names
        ),
        default=0,
    )
    backoff = min(_BACKOFF_MAX, _BACKOFF_START * 2**restarts)
    last = ctx.pod_last_crash.setdefault(uid, now_mono)
    remaining = last + ctx.real_seconds(backoff) - now_mono
    if remaining > 0:
        ctx.queue.add_after(item, remaining)
        return
    ctx.pod_last_crash[uid] = now_mono
    next_backoff = min(_BACKOFF_MAX, backoff * 2)
    for entry in status.get("containerStatuses") or []:
        container = next((c for c in bad if c.get("name") == entry.get("name")), None)
        if container is None:
            continue
        entry["restartCount"] = int(entry.get("restartCount", 0)) + 1
        entry["lastState"] = {
            "terminated": {
                "exitCode": 1,
                "reason": "Error",
                "startedAt": now,
                "finishedAt": now,
                "containerID": _container_id(pod, container, entry["restartCount"]),
            }
        }
        entry["state"] = _waiting(pod, container, next_backoff)
    ctx.attempt(ctx.update_status, {**pod, "status": status}, item)
    ctx.queue.add_after(item, ctx.real_seconds(next_backoff))


def forget_pod(ctx: Context, uid: str) -> None:
    ctx.pod_started.pop(uid, None)
    ctx.pod_last_crash.pop(uid, None)
