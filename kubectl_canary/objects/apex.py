"""The apex Service at the hand-back: pointed at the target's pods, and whether its ready
endpoints are the target's pods yet (what both the agent's deletion and offboard wait for)."""

from __future__ import annotations

from collections.abc import Iterable

from kubectl_canary.api.model import Canary
from kubectl_canary.objects.builders import apex_service
from kubectl_canary.objects.names import service_name
from kubectl_canary.objects.selectors import target_selector
from kubectl_canary.objects.writer import release
from kubectl_canary.resources import Obj, ResourceClient


def release_apex_service(client: ResourceClient, canary: Canary, target: Obj) -> None:
    """Point the apex Service at the target's pods and hand it over: a taken-over Service
    gets its original spec back, one we created keeps serving without our marks (never
    deleted: it is what clients call)."""
    keep = apex_service(target, canary, target_selector(target))["spec"]
    release(client, "v1", "Service", canary.namespace, service_name(canary), canary, keep=keep)


def label_selector(selector: Obj) -> str:
    """A LabelSelector object (matchLabels, matchExpressions) as a `labelSelector` query."""
    parts = [f"{key}={value}" for key, value in sorted((selector.get("matchLabels") or {}).items())]
    for expression in selector.get("matchExpressions") or []:
        key, operator = expression["key"], expression["operator"]
        values = ",".join(expression.get("values") or [])
        if operator == "In":
            parts.append(f"{key} in ({values})")
        elif operator == "NotIn":
            parts.append(f"{key} notin ({values})")
        elif operator == "Exists":
            parts.append(key)
        elif operator == "DoesNotExist":
            parts.append(f"!{key}")
        else:
            raise ValueError(f"unknown label selector operator {operator!r}")
    return ",".join(parts)


def apex_on_target(endpoints: Obj | None, target_pods: Iterable[Obj]) -> bool:
    """Whether a Service's ready endpoints are all pods of the target (and there is one).

    Right after the hand-back points the apex Service at the target, its Endpoints still list
    the primary's pods until the endpoints controller catches up; letting go of the primary
    then (garbage collection, offboard's deletion) would remove pods that still take requests.
    So every ready address naming a Pod must name one of `target_pods` (the pods the target
    Deployment's selector chooses). Ready addresses naming no Pod at all are maintained by hand
    (a Service without selector): nothing to compare them with, they pass.
    """
    addresses = [
        a for s in (endpoints or {}).get("subsets") or [] for a in s.get("addresses") or []
    ]
    if not addresses:
        return False
    refs = [a.get("targetRef") or {} for a in addresses]
    serving = {r["name"] for r in refs if r.get("kind") == "Pod" and r.get("name")}
    ours = {(p.get("metadata") or {}).get("name") for p in target_pods}
    return serving <= ours


def apex_serves_target(client: ResourceClient, canary: Canary, target: Obj | None) -> bool | None:
    """`apex_on_target` read from the cluster: the apex Service's Endpoints and the target's
    pods (two live reads: neither is cached). None when it cannot tell (no target, or a
    target without selector, which would list every pod of the namespace)."""
    if target is None:
        return None
    selector = label_selector((target.get("spec") or {}).get("selector") or {})
    if not selector:
        return None
    ns = canary.namespace
    endpoints = client.get("v1", "Endpoints", ns, service_name(canary))
    pods, _ = client.list("v1", "Pod", ns, label_selector=selector)
    return apex_on_target(endpoints, pods)
