"""Istio: a VirtualService `<svc>` with two weighted destinations, and DestinationRules.

The VirtualService carries service.hosts (plus the apex Service name), service.gateways (the
`mesh` gateway when none are given), and one HTTP route with service.match/retries/timeout/
headers whose destinations are `<svc>-primary` and `<svc>-canary` at the service port.
For A/B testing (analysis.match) a first route sends matching requests to the weighted pair
(the core sets canary 100 while testing), and the default route sends everything else to the
primary. Mirroring adds `mirror` (and `mirrorPercentage` from analysis.mirrorWeight) to the
weighted route. DestinationRules `<svc>-primary` and `<svc>-canary` carry service.trafficPolicy.
"""

from __future__ import annotations

import copy
from typing import Any

from kubectl_canary.api.model import Canary
from kubectl_canary.objects.metadata import generated_metadata
from kubectl_canary.objects.names import service_names
from kubectl_canary.objects.routers.base import RouteObjectRouter, ab_matches, routes_in_percent
from kubectl_canary.objects.routes import Routes, virtual_service_weights
from kubectl_canary.objects.writer import ensure, release
from kubectl_canary.resources import Obj

API_VERSION = "networking.istio.io/v1beta1"


def _destination(canary: Canary, host: str, weight: int | None) -> Obj:
    entry: Obj = {"destination": {"host": host, "port": {"number": canary.spec.service.port}}}
    if weight is not None:
        entry["weight"] = weight
    return entry


def _http_route(canary: Canary, match: list[dict[str, Any]], route: list[Obj]) -> Obj:
    svc = canary.spec.service
    result: Obj = {}
    if match:
        result["match"] = match
    if svc.retries:
        result["retries"] = dict(svc.retries)
    if svc.timeout:
        result["timeout"] = svc.timeout
    if svc.headers:
        result["headers"] = dict(svc.headers)
    result["route"] = route
    return result


def virtual_service(canary: Canary, routes: Routes) -> Obj:
    """The VirtualService routing `routes.primary` / `routes.canary` percent."""
    apex, primary_host, canary_host = service_names(canary)
    svc = canary.spec.service
    hosts = list(svc.hosts)
    if apex not in hosts and "*" not in hosts:
        hosts.append(apex)
    gateways = list(svc.gateways) or ["mesh"]
    weighted = _http_route(
        canary,
        [dict(m) for m in svc.match],
        [
            _destination(canary, primary_host, routes.primary),
            _destination(canary, canary_host, routes.canary),
        ],
    )
    if routes.mirror:
        weighted["mirror"] = {"host": canary_host, "port": {"number": svc.port}}
        if canary.spec.analysis.mirror_weight > 0:
            weighted["mirrorPercentage"] = {"value": canary.spec.analysis.mirror_weight}
    http = [weighted]
    if canary.spec.analysis.match:
        weighted["match"] = ab_matches(canary)
        default = _http_route(
            canary, [dict(m) for m in svc.match], [_destination(canary, primary_host, 100)]
        )
        http.append(default)
    return {
        "apiVersion": API_VERSION,
        "kind": "VirtualService",
        "metadata": generated_metadata(canary, apex, svc.apex),
        "spec": {"hosts": hosts, "gateways": gateways, "http": http},
    }


def destination_rule(canary: Canary, host: str) -> Obj:
    spec: Obj = {"host": host}
    if canary.spec.service.traffic_policy:
        spec["trafficPolicy"] = dict(canary.spec.service.traffic_policy)
    return {
        "apiVersion": API_VERSION,
        "kind": "DestinationRule",
        "metadata": generated_metadata(canary, host),
        "spec": spec,
    }


def read_routes(vs: Obj, canary: Canary) -> Routes | None:
    """Weights of the route holding the canary destination (the A/B route when matching)."""
    _, primary_host, canary_host = service_names(canary)
    found = virtual_service_weights(vs, primary_host, canary_host)
    return None if found is None else routes_in_percent(found.primary, found.canary, found.mirror)


class IstioRouter(RouteObjectRouter):
    name = "istio"
    api_version = API_VERSION
    kind = "VirtualService"

    def build(self, canary: Canary, routes: Routes) -> Obj:
        return virtual_service(canary, routes)

    def read(self, live: Obj, canary: Canary) -> Routes | None:
        return read_routes(live, canary)

    def reconcile_companions(self, canary: Canary) -> None:
        _, primary_host, canary_host = service_names(canary)
        for host in (primary_host, canary_host):
            ensure(self._client, destination_rule(canary, host), detect_drift=True)

    def finalize_companions(self, canary: Canary) -> None:
        _, primary_host, canary_host = service_names(canary)
        for host in (primary_host, canary_host):
            release(self._client, API_VERSION, "DestinationRule", canary.namespace, host, canary)

    def handed_over_spec(self, canary: Canary, live: Obj) -> Obj | None:
        return handed_over_virtual_service(canary, live)


def handed_over_virtual_service(canary: Canary, live: Obj) -> Obj | None:
    """The spec of a VirtualService we created, sending all its routes to the apex Service
    (the primary and canary hosts and mirroring go away with the Canary); None when it
    serves the mesh only ("mesh" names the sidecars, not an ingress gateway)."""
    spec = copy.deepcopy(live.get("spec") or {})
    if not [g for g in spec.get("gateways") or [] if g != "mesh"]:
        return None
    apex = _destination(canary, service_names(canary)[0], 100)
    for route in spec.get("http") or []:
        route.pop("mirror", None)
        route.pop("mirrorPercentage", None)
        route["route"] = [copy.deepcopy(apex)]
    return spec
