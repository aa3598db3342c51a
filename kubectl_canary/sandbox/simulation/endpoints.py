"""The endpoints controllers: a Service's ready and unready pods, as Endpoints and as an
EndpointSlice (discovery.k8s.io/v1), which is what meshes and `kubectl describe svc` read."""

from __future__ import annotations

import copy
from typing import Any

from kubectl_canary.sandbox.simulation.context import Context
from kubectl_canary.sandbox.simulation.objects import (
    ENDPOINT_SLICE,
    ENDPOINTS,
    SERVICE,
    Obj,
    is_pod_ready,
    is_terminating,
    labels_of,
    meta,
    name_of,
    owner_reference,
)

SERVICE_NAME_LABEL = "kubernetes.io/service-name"
MANAGED_BY_LABEL = "endpointslice.kubernetes.io/managed-by"
MANAGED_BY = "endpointslice-controller.k8s.io"


def selected_pods(ctx: Context, service: Obj) -> list[Obj]:
    selector = (service.get("spec") or {}).get("selector") or {}
    return sorted(
        (
            pod
            for pod in ctx.cache.pods_matching(meta(service)["namespace"], selector)
            if not is_terminating(pod) and (pod.get("status") or {}).get("podIP")
        ),
        key=lambda pod: str(pod["status"]["podIP"]),
    )


def _target_port(port: dict[str, Any], pod: Obj | None) -> int:
    """A Service port's targetPort, resolving a named port through the pod's containers."""
    target = port.get("targetPort", port.get("port"))
    if isinstance(target, int) or (isinstance(target, str) and target.isdigit()):
        return int(target)
    for container in ((pod or {}).get("spec") or {}).get("containers") or []:
        for container_port in container.get("ports") or []:
            if container_port.get("name") == target:
                return int(container_port.get("containerPort", 0))
    return int(port.get("port", 0))


def _ports(service: Obj, pod: Obj | None) -> list[dict[str, Any]]:
    ports = []
    for port in (service.get("spec") or {}).get("ports") or []:
        entry: dict[str, Any] = {
            "port": _target_port(port, pod),
            "protocol": port.get("protocol", "TCP"),
        }
        if port.get("name"):
            entry["name"] = port["name"]
        ports.append(entry)
    return ports


def _target_ref(pod: Obj) -> dict[str, Any]:
    m = meta(pod)
    return {"kind": "Pod", "name": m["name"], "namespace": m["namespace"], "uid": m.get("uid")}


def sync_service(ctx: Context, namespace: str, name: str) -> None:
    service = ctx.cache.get(SERVICE, namespace, name)
    retry = ("service", namespace, name)
    if service is None or is_terminating(service):
        # EndpointSlices are garbage-collected through their ownerReference; Endpoints carry
        # none, so the controller deletes them, as the real one does.
        stale = ctx.cache.get(ENDPOINTS, namespace, name)
        if stale is not None:
            ctx.attempt(ctx.delete, stale, retry)
        return
    if not (service.get("spec") or {}).get("selector"):
        return  # a Service without selector has hand-managed endpoints
    pods = selected_pods(ctx, service)
    _sync_endpoints(ctx, service, pods, retry)
    _sync_slice(ctx, service, pods, retry)


def _sync_endpoints(ctx: Context, service: Obj, pods: list[Obj], retry: Any) -> None:
    namespace, name = meta(service)["namespace"], name_of(service)
    ready = [p for p in pods if is_pod_ready(p)]
    unready = [p for p in pods if not is_pod_ready(p)]
    subsets = []
    if pods:
        subset: dict[str, Any] = {}
        for field, group in (("addresses", ready), ("notReadyAddresses", unready)):
            if group:
                subset[field] = [
                    {
                        "ip": p["status"]["podIP"],
                        "nodeName": (p.get("spec") or {}).get("nodeName", ""),
                        "targetRef": _target_ref(p),
                    }
                    for p in group
                ]
        subset["ports"] = _ports(service, pods[0])
        subsets.append(subset)
    labels = dict(labels_of(service))
    existing = ctx.cache.get(ENDPOINTS, namespace, name)
    if existing is None:
        body: Obj = {
            "apiVersion": "v1",
            "kind": "Endpoints",
            "metadata": {"name": name, "namespace": namespace, "labels": labels},
        }
        if subsets:
            body["subsets"] = subsets
        ctx.attempt(ctx.create, body, retry)
        return
    if (existing.get("subsets") or []) == subsets and labels_of(existing) == labels:
        return
    updated = copy.deepcopy(existing)
    updated["metadata"]["labels"] = labels
    if subsets:
        updated["subsets"] = subsets
    else:
        updated.pop("subsets", None)
    ctx.attempt(ctx.update, updated, retry)


def _sync_slice(ctx: Context, service: Obj, pods: list[Obj], retry: Any) -> None:
    namespace, name = meta(service)["namespace"], name_of(service)
    endpoints = []
    for pod in pods:
        ready = is_pod_ready(pod)
        endpoints.append(
            {
                "addresses": [pod["status"]["podIP"]],
                "conditions": {"ready": ready, "serving": ready, "terminating": False},
                "nodeName": (pod.get("spec") or {}).get("nodeName", ""),
                "targetRef": _target_ref(pod),
            }
        )
    labels = {**labels_of(service), SERVICE_NAME_LABEL: name, MANAGED_BY_LABEL: MANAGED_BY}
    ports = _ports(service, pods[0] if pods else None)
    existing = next(
        (
            s
            for s in ctx.cache.dependents(ENDPOINT_SLICE, service)
            if labels_of(s).get(MANAGED_BY_LABEL) == MANAGED_BY
        ),
        None,
    )
    if existing is None:
        body: Obj = {
            "apiVersion": "discovery.k8s.io/v1",
            "kind": "EndpointSlice",
            "metadata": {
                "name": f"{name}-{ctx.random_suffix()}",
                "namespace": namespace,
                "labels": labels,
                "ownerReferences": [owner_reference(service)],
            },
            "addressType": "IPv4",
            "endpoints": endpoints,
            "ports": ports,
        }
        ctx.attempt(ctx.create, body, retry)
        return
    if (
        (existing.get("endpoints") or []) == endpoints
        and (existing.get("ports") or []) == ports
        and labels_of(existing) == labels
    ):
        return
    updated = copy.deepcopy(existing)
    updated.update(endpoints=endpoints, ports=ports)
    updated["metadata"]["labels"] = labels
    ctx.attempt(ctx.update, updated, retry)


def services_selecting(ctx: Context, namespace: str, *label_sets: dict[str, str]) -> list[str]:
    """Names of the Services in `namespace` that select a pod with any of these label sets."""
    return sorted(
        {
            name_of(service)
            for labels in label_sets
            for service in ctx.cache.services_selecting(namespace, labels)
        }
    )
