"""Taking over a user's object: what may be taken, and the few fields that change.

Only what users call is ever taken over: the apex Service and the routing object named like
it (`writer.ensure(adopt=True)`). Taking one over changes only the fields the router must
steer, and keeps everything else of the user's, because everything else can matter outside
the cluster: a LoadBalancer Service's type, nodePorts, `externalTrafficPolicy`,
`sessionAffinity` or `loadBalancerSourceRanges` changed would, on a cloud, re-create or open
the load balancer; a VirtualService's hosts and gateways say who reaches the app at all.

- Service: the selector; the ports only when none of the user's serves the Canary's port
  (same port, targetPort and protocol), and then a port whose number stays keeps its nodePort.
- VirtualService: `http` (the routes); HTTPRoute: `rules`.

The whole spec as it was is saved first (ORIGINAL_SPEC_ANNOTATION) and put back on release
(`writer.release`), so what users had is restored exactly (docs/release-semantics.md).

Not taken over at all (an OwnershipError): an object another controller owns (an
ownerReference with `controller: true` that is not this Canary's), or one another progressive
delivery tool steers (`FOREIGN_MANAGERS`): two controllers writing the same selector or routes
would fight over every request.
"""

from __future__ import annotations

import copy
from typing import Any

from kubectl_canary.objects import metadata
from kubectl_canary.resources import Obj

# The spec fields a takeover may change, by kind (the Service's ports only when needed).
TAKEOVER_FIELDS: dict[str, tuple[str, ...]] = {
    "Service": ("selector", "ports"),
    "VirtualService": ("http",),
    "HTTPRoute": ("rules",),
}
# Annotations by which another progressive delivery controller marks what it steers.
FOREIGN_MANAGERS = ("argo-rollouts.argoproj.io/managed-by-rollouts",)


def taken_over_spec(kind: str, live: Obj, desired: Obj) -> Obj:
    """`live` (the user's spec) with only the fields of `desired` a takeover must change."""
    fields = TAKEOVER_FIELDS.get(kind)
    if fields is None:
        raise ValueError(f"a {kind} is never taken over; only {', '.join(TAKEOVER_FIELDS)}")
    spec = copy.deepcopy(live)
    for key in fields:
        if key == "ports":
            spec["ports"] = _ports(live.get("ports") or [], desired.get("ports") or [])
        elif key == "selector":
            spec[key] = copy.deepcopy(desired.get(key) or {})
        elif not is_subset(desired.get(key), live.get(key)):
            # Route lists are compared as a subset: the API server may add defaults to them.
            spec[key] = copy.deepcopy(desired.get(key))
    return spec


def is_subset(desired: Any, live: Any) -> bool:
    """True when every field of `desired` has the same value in `live` (which may hold more:
    server defaults). Lists must have the same length and match element by element."""
    if isinstance(desired, dict):
        return isinstance(live, dict) and all(
            k in live and is_subset(v, live[k]) for k, v in desired.items()
        )
    if isinstance(desired, list):
        return (
            isinstance(live, list)
            and len(desired) == len(live)
            and all(is_subset(d, x) for d, x in zip(desired, live, strict=True))
        )
    return bool(desired == live)


def _serves(ours: Obj, theirs: Obj) -> bool:
    """Whether the user's port entry does what ours asks: same port, targetPort, protocol."""
    return (
        theirs.get("port") == ours.get("port")
        and theirs.get("targetPort", theirs.get("port")) == ours.get("targetPort", ours.get("port"))
        and theirs.get("protocol", "TCP") == ours.get("protocol", "TCP")
    )


def _ports(live: list[Obj], desired: list[Obj]) -> list[Obj]:
    """The user's ports when they serve ours; else ours, a port number that stays keeping the
    nodePort it had (a NodePort or LoadBalancer Service's callers and firewall rules use it)."""
    if all(any(_serves(d, p) for p in live) for d in desired):
        return copy.deepcopy(live)
    node_ports = {p.get("port"): p["nodePort"] for p in live if p.get("nodePort")}
    result = []
    for port in desired:
        entry = copy.deepcopy(port)
        if port.get("port") in node_ports:
            entry["nodePort"] = node_ports[port.get("port")]
        result.append(entry)
    return result


def foreign_manager(obj: Obj, canary_name: str) -> str | None:
    """Who else manages `obj`, in words; None when nobody but the user (or this Canary)."""
    meta = obj.get("metadata") or {}
    for ref in meta.get("ownerReferences") or []:
        if ref.get("controller") and not metadata.refers_to_canary(ref, canary_name):
            return f"its controller {ref.get('kind')} {ref.get('name')} ({ref.get('apiVersion')})"
    annotations = meta.get("annotations") or {}
    for key in FOREIGN_MANAGERS:
        if key in annotations:
            return f"another tool (annotation {key}={annotations[key]})"
    return None
