"""Gateway API: an HTTPRoute `<svc>` with weighted backendRefs to `<svc>-primary`/`-canary`.

Parents are service.gatewayRefs (Gateways); with none, the route attaches to the apex Service
itself (the GAMMA mesh binding), so east-west traffic is split too. Hostnames come from
service.hosts. Match conditions are written Istio-style in the Canary (service.match,
analysis.match, as Flagger users know them) and translated here; anything an HTTPRoute cannot
express is a RouterError, never silently dropped.

The route is written with every field the CRD would default (backendRef group/kind, the
PathPrefix "/" match, header match type) so that what we write is what we read back.
"""

from __future__ import annotations

import copy
import re
from typing import Any

from kubectl_canary.api.model import Canary
from kubectl_canary.objects.metadata import generated_metadata
from kubectl_canary.objects.names import service_name, service_names
from kubectl_canary.objects.routers.base import (
    RouteObjectRouter,
    RouterError,
    ab_matches,
    routes_in_percent,
)
from kubectl_canary.objects.routes import Routes, http_route_weights
from kubectl_canary.resources import Obj

API_VERSION = "gateway.networking.k8s.io/v1"
_GATEWAY_GROUP = "gateway.networking.k8s.io"
_DEFAULT_PATH = {"type": "PathPrefix", "value": "/"}
_URI_TYPES = {"exact": "Exact", "prefix": "PathPrefix", "regex": "RegularExpression"}


def _string_match(field: str, name: str, condition: dict[str, Any]) -> dict[str, str]:
    """An Istio StringMatch ({exact|prefix|regex: v}) as a Gateway API header/query match.

    HTTPRoute headers and query params have no prefix type: a prefix becomes an anchored
    regular expression."""
    if len(condition) != 1:
        raise RouterError(f"{field} {name!r}: expected one of exact/prefix/regex, got {condition}")
    ((kind, value),) = condition.items()
    if kind == "exact":
        return {"name": name, "type": "Exact", "value": str(value)}
    if kind == "prefix":
        return {"name": name, "type": "RegularExpression", "value": "^" + re.escape(str(value))}
    if kind == "regex":
        return {"name": name, "type": "RegularExpression", "value": str(value)}
    raise RouterError(f"{field} {name!r}: unsupported match type {kind!r}")


def translate_match(match: dict[str, Any]) -> Obj:
    """One Istio HTTPMatchRequest as one HTTPRouteMatch."""
    result: Obj = {"path": dict(_DEFAULT_PATH)}
    for key, value in match.items():
        if key == "uri":
            if len(value) != 1 or next(iter(value)) not in _URI_TYPES:
                raise RouterError(f"uri match {value}: expected one of exact/prefix/regex")
            ((kind, path),) = value.items()
            result["path"] = {"type": _URI_TYPES[kind], "value": str(path)}
        elif key == "headers":
            result["headers"] = [_string_match("header", n, c) for n, c in value.items()]
        elif key == "queryParams":
            result["queryParams"] = [_string_match("query param", n, c) for n, c in value.items()]
        elif key == "method":
            if set(value) != {"exact"}:
                raise RouterError(f"method match {value}: only exact is supported")
            result["method"] = str(value["exact"]).upper()
        else:
            raise RouterError(f"match field {key!r} cannot be expressed in an HTTPRoute match")
    return result


def _matches(istio_matches: list[dict[str, Any]]) -> list[Obj]:
    if not istio_matches:
        return [{"path": dict(_DEFAULT_PATH)}]
    return [translate_match(m) for m in istio_matches]


def _backend(canary: Canary, name: str, weight: int) -> Obj:
    return {
        "group": "",
        "kind": "Service",
        "name": name,
        "port": canary.spec.service.port,
        "weight": weight,
    }


def _parent_refs(canary: Canary) -> list[Obj]:
    svc = canary.spec.service
    if not svc.gateway_refs:
        return [{"group": "", "kind": "Service", "name": service_name(canary), "port": svc.port}]
    refs = []
    for ref in svc.gateway_refs:
        parent: Obj = {"group": _GATEWAY_GROUP, "kind": "Gateway", "name": ref.name}
        if ref.namespace:
            parent["namespace"] = ref.namespace
        if ref.section_name:
            parent["sectionName"] = ref.section_name
        refs.append(parent)
    return refs


def http_route(canary: Canary, routes: Routes) -> Obj:
    """The HTTPRoute routing `routes.primary` / `routes.canary` percent."""
    apex, primary_svc, canary_svc = service_names(canary)
    svc = canary.spec.service
    service_match = [dict(m) for m in svc.match]
    weighted: Obj = {
        "matches": _matches(ab_matches(canary) if canary.spec.analysis.match else service_match),
        "backendRefs": [
            _backend(canary, primary_svc, routes.primary),
            _backend(canary, canary_svc, routes.canary),
        ],
    }
    if routes.mirror:
        mirror: Obj = {
            "backendRef": {"group": "", "kind": "Service", "name": canary_svc, "port": svc.port}
        }
        if canary.spec.analysis.mirror_weight > 0:
            mirror["percent"] = canary.spec.analysis.mirror_weight
        weighted["filters"] = [{"type": "RequestMirror", "requestMirror": mirror}]
    rules = [weighted]
    if canary.spec.analysis.match:
        rules.append(
            {
                "matches": _matches(service_match),
                "backendRefs": [_backend(canary, primary_svc, 100)],
            }
        )
    spec: Obj = {"parentRefs": _parent_refs(canary), "rules": rules}
    if svc.hosts:
        spec["hostnames"] = list(svc.hosts)
    return {
        "apiVersion": API_VERSION,
        "kind": "HTTPRoute",
        "metadata": generated_metadata(canary, apex, svc.apex),
        "spec": spec,
    }


def read_routes(route: Obj, canary: Canary) -> Routes | None:
    """Weights of the rule holding the canary backend (the A/B rule when matching)."""
    _, primary_svc, canary_svc = service_names(canary)
    found = http_route_weights(route, primary_svc, canary_svc)
    # Gateway API weights are relative; we write percentages but read any proportion.
    return None if found is None else routes_in_percent(found.primary, found.canary, found.mirror)


class GatewayAPIRouter(RouteObjectRouter):
    name = "gatewayapi"
    api_version = API_VERSION
    kind = "HTTPRoute"

    def build(self, canary: Canary, routes: Routes) -> Obj:
        return http_route(canary, routes)

    def read(self, live: Obj, canary: Canary) -> Routes | None:
        return read_routes(live, canary)

    def handed_over_spec(self, canary: Canary, live: Obj) -> Obj | None:
        return handed_over_http_route(canary, live)


def handed_over_http_route(canary: Canary, live: Obj) -> Obj:
    """The spec of an HTTPRoute we created, sending every rule to the apex Service. Always
    kept: its parents (a Gateway, or the apex Service itself for the mesh) keep serving it."""
    spec = copy.deepcopy(live.get("spec") or {})
    apex = _backend(canary, service_name(canary), 100)
    for rule in spec.get("rules") or []:
        rule["backendRefs"] = [copy.deepcopy(apex)]
        filters = [f for f in rule.get("filters") or [] if f.get("type") != "RequestMirror"]
        if filters:
            rule["filters"] = filters
        else:
            rule.pop("filters", None)
    return spec
