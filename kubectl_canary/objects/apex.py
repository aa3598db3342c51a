"""The apex Service at the hand-back: pointed at the target's pods; and whether a Service's
ready endpoints are a Deployment's pods yet: the target's (what both the agent's deletion and
offboard wait for) or the primary's (what onboarding waits for)."""

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


def has_ready_address(endpoints: Obj | None) -> bool:
    return any(s.get("addresses") for s in (endpoints or {}).get("subsets") or [])


def serves_only(endpoints: Obj | None, pods: Iterable[Obj]) -> bool:
    """Whether a Service's ready endpoints are all among `pods` (and there is one).

    A Service whose selector just changed still lists the pods of its old selector until the
    endpoints controller catches up. So every ready address naming a Pod must name one of
    `pods` (the pods a Deployment's selector chooses): the hand-back waits for the target's
    (letting go of the primary earlier would remove pods that still take requests), the
    onboarding for the primary's (scaling the target to zero earlier would). Ready addresses
    naming no Pod at all are maintained by hand (a Service without selector): nothing to
    compare them with, they pass.
    """
    addresses = [
        a for s in (endpoints or {}).get("subsets") or [] for a in s.get("addresses") or []
    ]
    if not addresses:
        return False
    refs = [a.get("targetRef") or {} for a in addresses]
    serving = {r["name"] for r in refs if r.get("kind") == "Pod" and r.get("name")}
    ours = {(p.get("metadata") or {}).get("name") for p in pods}
    return serving <= ours


def pods_of(client: ResourceClient, deployment: Obj | None) -> list[Obj] | None:
    """The pods a Deployment's selector chooses (a live list: Pods are not cached). None when
    it cannot tell: no Deployment, or one without selector (that would be every pod)."""
    if deployment is None:
        return None
    selector = label_selector((deployment.get("spec") or {}).get("selector") or {})
    if not selector:
        return None
    namespace = (deployment.get("metadata") or {}).get("namespace", "")
    pods, _ = client.list("v1", "Pod", namespace, label_selector=selector)
    return pods


def service_serves(
    client: ResourceClient, namespace: str, service: str, pods: list[Obj] | None
) -> bool | None:
    """`serves_only` read from the cluster (Endpoints are not cached); None without pods."""
    if pods is None:
        return None
    return serves_only(client.get("v1", "Endpoints", namespace, service), pods)


def apex_serves_target(client: ResourceClient, canary: Canary, target: Obj | None) -> bool | None:
    """Whether the apex Service's ready endpoints are the target's pods (two live reads).
    None when it cannot tell (see `pods_of`)."""
    return service_serves(client, canary.namespace, service_name(canary), pods_of(client, target))
