"""Where a simulated request for a Service goes: the mesh routing rules, evaluated like a proxy.

Pure functions over plain objects. A request for Service `ns/svc` is routed by, in order:
an Istio VirtualService whose `spec.hosts` names the Service, else a Gateway API HTTPRoute for it
(named after the Service, attached to it as a parent, or sending to `<svc>-primary`), else the
Service itself (its endpoints pick the pod). The result names destination Services with weights.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

CLUSTER_SUFFIX = ".svc.cluster.local"


@dataclass(frozen=True)
class Destination:
    namespace: str
    service: str

    @property
    def host(self) -> str:
        return f"{self.service}.{self.namespace}{CLUSTER_SUFFIX}"


@dataclass(frozen=True)
class Route:
    """Weighted destinations for a class of requests, plus an optional mirror."""

    destinations: tuple[tuple[Destination, float], ...]
    mirror: Destination | None = None
    mirror_percent: float = 0.0
    routed_by: str = "Service endpoints"


@dataclass(frozen=True)
class Request:
    headers: Mapping[str, str]  # lower-case names
    path: str = "/"
    method: str = "GET"


def qualify_host(host: str, namespace: str) -> str:
    """Istio's reading of a host written in namespace `namespace` (short names are local)."""
    host = host.lower()
    if host.endswith(CLUSTER_SUFFIX):
        return host
    parts = host.split(".")
    if len(parts) == 1:
        return f"{host}.{namespace}{CLUSTER_SUFFIX}"
    if len(parts) == 2:
        return host + CLUSTER_SUFFIX
    if len(parts) == 3 and parts[2] == "svc":
        return host + ".cluster.local"
    return host


def destination_for_host(host: str, namespace: str) -> Destination | None:
    """The in-cluster Service a host names, or None for an external host."""
    qualified = qualify_host(host, namespace)
    if not qualified.endswith(CLUSTER_SUFFIX):
        return None
    parts = qualified[: -len(CLUSTER_SUFFIX)].split(".")
    if len(parts) != 2:
        return None
    return Destination(namespace=parts[1], service=parts[0])


def resolve_route(
    target: Destination,
    request: Request,
    virtual_services: Iterable[dict[str, Any]],
    http_routes: Iterable[dict[str, Any]],
) -> Route:
    vs = _select_virtual_service(target, virtual_services)
    if vs is not None:
        route = _route_by_virtual_service(vs, request)
        if route is not None:
            return route
        # A VirtualService with no matching http route: the proxy answers 404 itself, no pod
        # is reached; model it as no destination.
        return Route(destinations=(), routed_by=_describe("VirtualService", vs))
    http_route = _select_http_route(target, http_routes)
    if http_route is not None:
        return _route_by_http_route(http_route, request)
    return Route(destinations=((target, 1.0),))


def _describe(kind: str, obj: dict[str, Any]) -> str:
    meta = obj.get("metadata", {})
    return f"{kind} {meta.get('namespace', '')}/{meta.get('name', '')}"


def _age_key(obj: dict[str, Any]) -> tuple[str, str, str]:
    meta = obj.get("metadata", {})
    return (
        str(meta.get("creationTimestamp", "")),
        str(meta.get("namespace", "")),
        str(meta.get("name", "")),
    )


def _select_virtual_service(
    target: Destination, virtual_services: Iterable[dict[str, Any]]
) -> dict[str, Any] | None:
    """The oldest VirtualService naming the target's host (Istio keeps the oldest on conflict)."""
    candidates = []
    for vs in virtual_services:
        namespace = vs.get("metadata", {}).get("namespace", "default")
        hosts = (vs.get("spec") or {}).get("hosts") or []
        if any(qualify_host(str(h), namespace) == target.host for h in hosts):
            candidates.append(vs)
    return min(candidates, key=_age_key) if candidates else None


def _string_match(rule: Any, value: str, ignore_case: bool = False) -> bool:
    """Istio StringMatch: exact, prefix or (RE2, fully anchored) regex."""
    if not isinstance(rule, dict):
        return False
    if ignore_case:
        value = value.lower()
    if "exact" in rule:
        expected = str(rule["exact"])
        return value == (expected.lower() if ignore_case else expected)
    if "prefix" in rule:
        expected = str(rule["prefix"])
        return value.startswith(expected.lower() if ignore_case else expected)
    if "regex" in rule:
        try:
            return re.fullmatch(str(rule["regex"]), value) is not None
        except re.error:
            return False
    return False


# Istio match keys this simulation understands; a match using any other key never matches,
# so an unsupported rule cannot silently attract traffic.
_ISTIO_MATCH_KEYS = {
    "name",
    "headers",
    "withoutHeaders",
    "uri",
    "ignoreUriCase",
    "method",
    "gateways",
}


def _istio_match(match: dict[str, Any], request: Request) -> bool:
    if set(match) - _ISTIO_MATCH_KEYS:
        return False
    if "gateways" in match and "mesh" not in (match.get("gateways") or []):
        return False
    for name, rule in (match.get("headers") or {}).items():
        value = request.headers.get(str(name).lower())
        if value is None or not _string_match(rule, value):
            return False
    for name, rule in (match.get("withoutHeaders") or {}).items():
        value = request.headers.get(str(name).lower())
        if value is not None and (rule in ({}, None) or _string_match(rule, value)):
            return False
    if "uri" in match and not _string_match(
        match["uri"], request.path, bool(match.get("ignoreUriCase"))
    ):
        return False
    return "method" not in match or _string_match(match["method"], request.method)


def _route_by_virtual_service(vs: dict[str, Any], request: Request) -> Route | None:
    namespace = vs.get("metadata", {}).get("namespace", "default")
    for http in (vs.get("spec") or {}).get("http") or []:
        matches = http.get("match") or []
        if matches and not any(_istio_match(m, request) for m in matches):
            continue
        entries = http.get("route") or []
        weighted = []
        for entry in entries:
            host = (entry.get("destination") or {}).get("host")
            destination = destination_for_host(str(host), namespace) if host else None
            if destination is not None:
                # A lone destination gets everything; among several a missing weight is 0.
                default = 100 if len(entries) == 1 else 0
                weighted.append((destination, float(entry.get("weight", default) or 0)))
        mirror = None
        mirror_host = (http.get("mirror") or {}).get("host")
        if mirror_host:
            mirror = destination_for_host(str(mirror_host), namespace)
        percent = (http.get("mirrorPercentage") or {}).get("value", 100.0)
        return Route(
            destinations=_normalise(weighted),
            mirror=mirror,
            mirror_percent=float(percent) if mirror else 0.0,
            routed_by=_describe("VirtualService", vs),
        )
    return None


def _normalise(weighted: list[tuple[Destination, float]]) -> tuple[tuple[Destination, float], ...]:
    if weighted and sum(w for _, w in weighted) <= 0:
        return tuple((d, 1.0) for d, _ in weighted)
    return tuple((d, w) for d, w in weighted if w > 0)


def _select_http_route(
    target: Destination, http_routes: Iterable[dict[str, Any]]
) -> dict[str, Any] | None:
    candidates = []
    for route in http_routes:
        meta = route.get("metadata", {})
        if meta.get("namespace", "default") != target.namespace:
            continue
        spec = route.get("spec") or {}
        named_after = meta.get("name") == target.service
        parent = any(
            p.get("kind") == "Service" and p.get("name") == target.service
            for p in spec.get("parentRefs") or []
        )
        to_primary = any(
            ref.get("name") == f"{target.service}-primary"
            for rule in spec.get("rules") or []
            for ref in rule.get("backendRefs") or []
        )
        if named_after or parent or to_primary:
            candidates.append(route)
    return min(candidates, key=_age_key) if candidates else None


def _gateway_match(match: dict[str, Any], request: Request) -> bool:
    if set(match) - {"path", "headers", "method"}:
        return False
    path = match.get("path") or {"type": "PathPrefix", "value": "/"}
    kind, value = path.get("type", "PathPrefix"), str(path.get("value", "/"))
    if kind == "Exact" and request.path != value:
        return False
    if kind == "PathPrefix" and not (
        request.path == value or request.path.startswith(value.rstrip("/") + "/") or value == "/"
    ):
        return False
    if kind == "RegularExpression" and re.fullmatch(value, request.path) is None:
        return False
    for header in match.get("headers") or []:
        actual = request.headers.get(str(header.get("name", "")).lower())
        expected = str(header.get("value", ""))
        if actual is None:
            return False
        if header.get("type", "Exact") == "RegularExpression":
            if re.search(expected, actual) is None:
                return False
        elif actual != expected:
            return False
    return "method" not in match or match["method"] == request.method


def _match_precedence(match: dict[str, Any]) -> tuple[int, int, int]:
    """Gateway API precedence: exact path, then longest path, then most header matches."""
    path = match.get("path") or {}
    return (
        1 if path.get("type") == "Exact" else 0,
        len(str(path.get("value", "/"))),
        len(match.get("headers") or []),
    )


def _route_by_http_route(route: dict[str, Any], request: Request) -> Route:
    namespace = route.get("metadata", {}).get("namespace", "default")
    candidates = []
    for order, rule in enumerate((route.get("spec") or {}).get("rules") or []):
        for match in rule.get("matches") or [{}]:
            if _gateway_match(match, request):
                precedence = _match_precedence(match)
                candidates.append(((-precedence[0], -precedence[1], -precedence[2], order), rule))
    if not candidates:
        return Route(destinations=(), routed_by=_describe("HTTPRoute", route))
    rule = min(candidates, key=lambda item: item[0])[1]
    weighted = []
    for ref in rule.get("backendRefs") or []:
        if ref.get("kind", "Service") != "Service" or ref.get("group", "") not in ("", "core"):
            continue
        destination = Destination(str(ref.get("namespace", namespace)), str(ref.get("name")))
        weighted.append((destination, float(ref.get("weight", 1))))
    total = sum(w for _, w in weighted)
    destinations = tuple((d, w) for d, w in weighted if w > 0) if total > 0 else ()
    return Route(destinations=destinations, routed_by=_describe("HTTPRoute", route))
