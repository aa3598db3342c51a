"""The weights a routing object holds, as the agent and `kubectl canary status` both read them.

The rule that counts is the first one holding the canary's destination: during an A/B test that
is the route for matching requests (canary 100), not the default route after it (primary 100),
so what the plugin shows is what the agent acts on.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True)
class Routes:
    """Weights as a router reports them; they sum to 100."""

    primary: int
    canary: int
    mirror: bool = False


@dataclass(frozen=True)
class RouteWeights:
    """Raw weights of the rule holding the canary (Gateway API weights are proportions)."""

    primary: int
    canary: int
    mirror: bool = False
    # Later rules take the requests this one does not match: an A/B rule for matching
    # requests, ahead of the default route.
    matching: bool = False


def virtual_service_weights(
    vs: Mapping[str, Any], primary_host: str, canary_host: str
) -> RouteWeights | None:
    """The http route of a VirtualService that holds `canary_host`; None when none does."""
    routes = (vs.get("spec") or {}).get("http") or []
    for index, route in enumerate(routes):
        destinations = route.get("route") or []
        hosts = {(d.get("destination") or {}).get("host") for d in destinations}
        if canary_host not in hosts:
            continue
        weights = {primary_host: 0, canary_host: 0}
        for d in destinations:
            host = (d.get("destination") or {}).get("host")
            # Istio: a lone destination without a weight takes everything.
            if host in weights:
                weights[host] = int(d.get("weight", 100 if len(destinations) == 1 else 0))
        return RouteWeights(
            weights[primary_host],
            weights[canary_host],
            mirror=bool((route.get("mirror") or {}).get("host")),
            matching=index < len(routes) - 1,
        )
    return None


def http_route_weights(
    route: Mapping[str, Any], primary_service: str, canary_service: str
) -> RouteWeights | None:
    """The rule of an HTTPRoute whose backendRefs hold `canary_service`; None when none does."""
    rules = (route.get("spec") or {}).get("rules") or []
    for index, rule in enumerate(rules):
        refs = rule.get("backendRefs") or []
        if canary_service not in {r.get("name") for r in refs}:
            continue
        # A backendRef's weight defaults to 1.
        return RouteWeights(
            sum(int(r.get("weight", 1)) for r in refs if r.get("name") == primary_service),
            sum(int(r.get("weight", 1)) for r in refs if r.get("name") == canary_service),
            mirror=any(f.get("type") == "RequestMirror" for f in rule.get("filters") or []),
            matching=index < len(rules) - 1,
        )
    return None
