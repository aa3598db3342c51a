"""Routing rules as a mesh proxy evaluates them (pure functions, no cluster)."""

from __future__ import annotations

from typing import Any

from kubectl_canary.sandbox.simulation.routing import (
    Destination,
    Request,
    qualify_host,
    resolve_route,
)

MHS = Destination("test", "mhs")
PRIMARY = Destination("test", "mhs-primary")
CANARY = Destination("test", "mhs-canary")


def vs(hosts: list[str], http: list[dict[str, Any]], namespace: str = "test") -> dict[str, Any]:
    return {
        "kind": "VirtualService",
        "metadata": {"name": "mhs", "namespace": namespace},
        "spec": {"hosts": hosts, "http": http},
    }


def route_to(*pairs: tuple[str, int]) -> list[dict[str, Any]]:
    return [{"destination": {"host": h}, "weight": w} for h, w in pairs]


def request(**headers: str) -> Request:
    return Request(headers={k.replace("_", "-"): v for k, v in headers.items()})


def test_without_routing_object_the_service_endpoints_serve() -> None:
    route = resolve_route(MHS, request(), [], [])
    assert route.destinations == ((MHS, 1.0),)
    assert route.routed_by == "Service endpoints"


def test_virtual_service_weights_by_short_and_full_host() -> None:
    for host in ("mhs", "mhs.test", "mhs.test.svc.cluster.local"):
        canary_fqdn = "mhs-canary.test.svc.cluster.local"
        rules = [{"route": route_to(("mhs-primary", 90), (canary_fqdn, 10))}]
        route = resolve_route(MHS, request(), [vs([host], rules)], [])
        assert route.destinations == ((PRIMARY, 90.0), (CANARY, 10.0)), host
        assert route.routed_by == "VirtualService test/mhs"


def test_zero_weight_destination_gets_nothing_and_lone_destination_gets_all() -> None:
    rules = [{"route": route_to(("mhs-primary", 100), ("mhs-canary", 0))}]
    assert resolve_route(MHS, request(), [vs(["mhs"], rules)], []).destinations == (
        (PRIMARY, 100.0),
    )
    lone = [{"route": [{"destination": {"host": "mhs-canary"}}]}]
    assert resolve_route(MHS, request(), [vs(["mhs"], lone)], []).destinations == ((CANARY, 100.0),)


def test_short_host_in_another_namespace_does_not_apply() -> None:
    other = vs(["mhs"], [{"route": route_to(("mhs-canary", 100))}], namespace="other")
    assert resolve_route(MHS, request(), [other], []).destinations == ((MHS, 1.0),)


def test_http_routes_are_matched_in_order_by_headers() -> None:
    rules = [
        {
            "match": [
                {"headers": {"x-canary": {"exact": "insider"}}},
                {"headers": {"cookie": {"regex": "^(.*?;)?(canary=always)(;.*)?$"}}},
            ],
            "route": route_to(("mhs-canary", 100)),
        },
        {"route": route_to(("mhs-primary", 100))},
    ]
    services = [vs(["mhs"], rules)]
    assert resolve_route(MHS, request(x_canary="insider"), services, []).destinations == (
        (CANARY, 100.0),
    )
    assert resolve_route(MHS, request(cookie="a=b;canary=always"), services, []).destinations == (
        (CANARY, 100.0),
    )
    assert resolve_route(MHS, request(x_canary="outsider"), services, []).destinations == (
        (PRIMARY, 100.0),
    )
    prefix = [
        {
            "match": [{"headers": {"user-agent": {"prefix": "curl"}}}],
            "route": route_to(("mhs-canary", 100)),
        }
    ]
    assert resolve_route(
        MHS, request(user_agent="curl/8"), [vs(["mhs"], prefix)], []
    ).destinations == ((CANARY, 100.0),)


def test_unsupported_match_keys_never_match_and_no_match_routes_nowhere() -> None:
    rules = [{"match": [{"sourceLabels": {"app": "x"}}], "route": route_to(("mhs-canary", 100))}]
    route = resolve_route(MHS, request(), [vs(["mhs"], rules)], [])
    assert route.destinations == ()


def test_mirror_is_reported() -> None:
    rules = [
        {
            "route": route_to(("mhs-primary", 100)),
            "mirror": {"host": "mhs-canary"},
            "mirrorPercentage": {"value": 25.0},
        }
    ]
    route = resolve_route(MHS, request(), [vs(["mhs"], rules)], [])
    assert route.mirror == CANARY and route.mirror_percent == 25.0


def http_route(name: str, rules: list[dict[str, Any]], **spec: Any) -> dict[str, Any]:
    return {
        "kind": "HTTPRoute",
        "metadata": {"name": name, "namespace": "test"},
        "spec": {"rules": rules, **spec},
    }


def backends(*pairs: tuple[str, int]) -> list[dict[str, Any]]:
    return [{"name": n, "port": 80, "weight": w} for n, w in pairs]


def test_http_route_weights_and_header_precedence() -> None:
    rules = [
        {"backendRefs": backends(("mhs-primary", 80), ("mhs-canary", 20))},
        {
            "matches": [{"headers": [{"name": "X-Canary", "value": "insider"}]}],
            "backendRefs": backends(("mhs-canary", 1)),
        },
    ]
    routes = [http_route("mhs", rules)]
    plain = resolve_route(MHS, request(), [], routes)
    assert plain.destinations == ((PRIMARY, 80.0), (CANARY, 20.0))
    assert plain.routed_by == "HTTPRoute test/mhs"
    # The rule with a header match is more specific, although it comes second.
    assert resolve_route(MHS, request(x_canary="insider"), [], routes).destinations == (
        (CANARY, 1.0),
    )


def test_http_route_selected_by_primary_backend_or_service_parent() -> None:
    by_backend = http_route("some-route", [{"backendRefs": backends(("mhs-primary", 100))}])
    assert resolve_route(MHS, request(), [], [by_backend]).destinations == ((PRIMARY, 100.0),)
    by_parent = http_route(
        "other",
        [{"backendRefs": backends(("mhs-canary", 100))}],
        parentRefs=[{"kind": "Service", "name": "mhs"}],
    )
    assert resolve_route(MHS, request(), [], [by_parent]).destinations == ((CANARY, 100.0),)
    unrelated = http_route("other", [{"backendRefs": backends(("web", 100))}])
    assert resolve_route(MHS, request(), [], [unrelated]).destinations == ((MHS, 1.0),)


def test_virtual_service_wins_over_http_route() -> None:
    vs_rules = [{"route": route_to(("mhs-canary", 100))}]
    routes = [http_route("mhs", [{"backendRefs": backends(("mhs-primary", 100))}])]
    assert resolve_route(MHS, request(), [vs(["mhs"], vs_rules)], routes).destinations == (
        (CANARY, 100.0),
    )


def test_qualify_host() -> None:
    assert qualify_host("mhs", "test") == "mhs.test.svc.cluster.local"
    assert qualify_host("mhs.other", "test") == "mhs.other.svc.cluster.local"
    assert qualify_host("mhs.other.svc", "test") == "mhs.other.svc.cluster.local"
    assert qualify_host("example.com.au", "test") == "example.com.au"
