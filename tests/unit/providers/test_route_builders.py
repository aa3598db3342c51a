"""What the Istio and Gateway API routers write: hosts, gateways, A/B, mirror, translation."""

from __future__ import annotations

from typing import Any

import pytest

from agent.core.types import Routes
from kubectl_canary.api.model import (
    AnalysisSpec,
    Canary,
    CanarySpec,
    GatewayRef,
    ServiceSpec,
    TargetRef,
)
from kubectl_canary.objects.routers import RouterError
from kubectl_canary.objects.routers.gatewayapi import http_route, translate_match
from kubectl_canary.objects.routers.gatewayapi import read_routes as read_http_route
from kubectl_canary.objects.routers.istio import destination_rule, virtual_service
from kubectl_canary.objects.routers.istio import read_routes as read_virtual_service

PORT = {"number": 9898}
AB_MATCH = ({"headers": {"x-canary": {"exact": "insider"}}},)


def canary(analysis: AnalysisSpec | None = None, **service: Any) -> Canary:
    return Canary(
        namespace="test",
        name="podinfo",
        uid="uid-1",
        spec=CanarySpec(
            target_ref=TargetRef("podinfo"),
            service=ServiceSpec(port=9898, **service),
            analysis=analysis or AnalysisSpec(),
        ),
    )


def test_virtual_service_carries_the_service_settings() -> None:
    c = canary(
        hosts=("app.example.com",),
        gateways=("public-gateway",),
        retries={"attempts": 3, "perTryTimeout": "1s"},
        timeout="5s",
        headers={"request": {"set": {"x-env": "prod"}}},
        match=({"uri": {"prefix": "/api"}},),
    )

    spec = virtual_service(c, Routes(primary=80, canary=20))["spec"]

    assert spec["hosts"] == ["app.example.com", "podinfo"]
    assert spec["gateways"] == ["public-gateway"]
    assert spec["http"] == [
        {
            "match": [{"uri": {"prefix": "/api"}}],
            "retries": {"attempts": 3, "perTryTimeout": "1s"},
            "timeout": "5s",
            "headers": {"request": {"set": {"x-env": "prod"}}},
            "route": [
                {
                    "destination": {"host": "podinfo-primary", "port": {"number": 9898}},
                    "weight": 80,
                },
                {"destination": {"host": "podinfo-canary", "port": {"number": 9898}}, "weight": 20},
            ],
        }
    ]


def test_virtual_service_defaults_to_the_mesh_gateway() -> None:
    spec = virtual_service(canary(hosts=("*",)), Routes(100, 0))["spec"]
    assert spec["hosts"] == ["*"] and spec["gateways"] == ["mesh"]


def test_virtual_service_ab_route_then_default_route() -> None:
    c = canary(AnalysisSpec(iterations=10, match=AB_MATCH), match=({"uri": {"prefix": "/"}},))

    http = virtual_service(c, Routes(primary=0, canary=100))["spec"]["http"]

    assert http[0]["match"] == [
        {"uri": {"prefix": "/"}, "headers": {"x-canary": {"exact": "insider"}}}
    ]
    assert [d["weight"] for d in http[0]["route"]] == [0, 100]
    assert http[1]["match"] == [{"uri": {"prefix": "/"}}]
    assert http[1]["route"] == [
        {"destination": {"host": "podinfo-primary", "port": {"number": 9898}}, "weight": 100}
    ]
    vs = virtual_service(c, Routes(primary=0, canary=100))
    assert read_virtual_service(vs, c) == Routes(primary=0, canary=100)


def test_virtual_service_mirror() -> None:
    c = canary(AnalysisSpec(mirror=True, mirror_weight=25))
    vs = virtual_service(c, Routes(primary=100, canary=0, mirror=True))
    route = vs["spec"]["http"][0]

    assert route["mirror"] == {"host": "podinfo-canary", "port": {"number": 9898}}
    assert route["mirrorPercentage"] == {"value": 25}
    assert read_virtual_service(vs, c) == Routes(primary=100, canary=0, mirror=True)


def test_read_virtual_service_normalises_and_rejects() -> None:
    c = canary()
    vs = virtual_service(c, Routes(50, 50))
    vs["spec"]["http"][0]["route"][0]["weight"] = 3
    vs["spec"]["http"][0]["route"][1]["weight"] = 1
    assert read_virtual_service(vs, c) == Routes(primary=75, canary=25)
    vs["spec"]["http"][0]["route"][1]["destination"]["host"] = "elsewhere"
    assert read_virtual_service(vs, c) is None


def test_destination_rules_carry_the_traffic_policy() -> None:
    policy = {"tls": {"mode": "ISTIO_MUTUAL"}}
    assert destination_rule(canary(traffic_policy=policy), "podinfo-canary")["spec"] == {
        "host": "podinfo-canary",
        "trafficPolicy": policy,
    }
    assert destination_rule(canary(), "podinfo-primary")["spec"] == {"host": "podinfo-primary"}


def test_http_route_with_gateways_and_hosts() -> None:
    c = canary(
        hosts=("app.example.com",),
        gateway_refs=(GatewayRef("public", "gateways", "https"), GatewayRef("internal")),
    )

    spec = http_route(c, Routes(primary=90, canary=10))["spec"]

    assert spec["parentRefs"] == [
        {
            "group": "gateway.networking.k8s.io",
            "kind": "Gateway",
            "name": "public",
            "namespace": "gateways",
            "sectionName": "https",
        },
        {"group": "gateway.networking.k8s.io", "kind": "Gateway", "name": "internal"},
    ]
    assert spec["hostnames"] == ["app.example.com"]
    assert spec["rules"] == [
        {
            "matches": [{"path": {"type": "PathPrefix", "value": "/"}}],
            "backendRefs": [
                {
                    "group": "",
                    "kind": "Service",
                    "name": "podinfo-primary",
                    "port": 9898,
                    "weight": 90,
                },
                {
                    "group": "",
                    "kind": "Service",
                    "name": "podinfo-canary",
                    "port": 9898,
                    "weight": 10,
                },
            ],
        }
    ]


def test_http_route_without_gateways_binds_to_the_service_mesh() -> None:
    spec = http_route(canary(), Routes(100, 0))["spec"]
    assert spec["parentRefs"] == [{"group": "", "kind": "Service", "name": "podinfo", "port": 9898}]
    assert "hostnames" not in spec


def test_http_route_ab_and_mirror() -> None:
    c = canary(AnalysisSpec(iterations=5, match=AB_MATCH, mirror_weight=10))
    route = http_route(c, Routes(primary=0, canary=100, mirror=True))
    ab, default = route["spec"]["rules"]

    assert ab["matches"] == [
        {
            "path": {"type": "PathPrefix", "value": "/"},
            "headers": [{"name": "x-canary", "type": "Exact", "value": "insider"}],
        }
    ]
    assert ab["filters"] == [
        {
            "type": "RequestMirror",
            "requestMirror": {
                "backendRef": {
                    "group": "",
                    "kind": "Service",
                    "name": "podinfo-canary",
                    "port": 9898,
                },
                "percent": 10,
            },
        }
    ]
    assert [b["name"] for b in default["backendRefs"]] == ["podinfo-primary"]
    assert read_http_route(route, c) == Routes(primary=0, canary=100, mirror=True)


@pytest.mark.parametrize(
    ("istio", "gateway"),
    [
        ({"uri": {"exact": "/login"}}, {"path": {"type": "Exact", "value": "/login"}}),
        (
            {"uri": {"regex": "/v[12]/.*"}},
            {"path": {"type": "RegularExpression", "value": "/v[12]/.*"}},
        ),
        (
            {"headers": {"user-agent": {"prefix": "Mozilla/5.0 (X"}}},
            {
                "path": {"type": "PathPrefix", "value": "/"},
                "headers": [
                    {
                        "name": "user-agent",
                        "type": "RegularExpression",
                        "value": r"^Mozilla/5\.0\ \(X",
                    }
                ],
            },
        ),
        (
            {"headers": {"cookie": {"regex": "^(.*?;)?(canary=always)(;.*)?$"}}},
            {
                "path": {"type": "PathPrefix", "value": "/"},
                "headers": [
                    {
                        "name": "cookie",
                        "type": "RegularExpression",
                        "value": "^(.*?;)?(canary=always)(;.*)?$",
                    }
                ],
            },
        ),
        (
            {"queryParams": {"beta": {"exact": "1"}}, "method": {"exact": "get"}},
            {
                "path": {"type": "PathPrefix", "value": "/"},
                "queryParams": [{"name": "beta", "type": "Exact", "value": "1"}],
                "method": "GET",
            },
        ),
    ],
)
def test_istio_matches_translate_to_http_route_matches(
    istio: dict[str, Any], gateway: dict[str, Any]
) -> None:
    assert translate_match(istio) == gateway


@pytest.mark.parametrize(
    ("istio", "message"),
    [
        ({"sourceLabels": {"app": "x"}}, "'sourceLabels' cannot be expressed"),
        ({"headers": {"x": {"suffix": "y"}}}, "unsupported match type 'suffix'"),
        ({"uri": {"prefix": "/a", "exact": "/b"}}, "expected one of exact/prefix/regex"),
        ({"method": {"regex": "GET|POST"}}, "only exact"),
    ],
)
def test_untranslatable_matches_are_errors(istio: dict[str, Any], message: str) -> None:
    with pytest.raises(RouterError, match=message):
        translate_match(istio)


def test_read_http_route_normalises_relative_weights() -> None:
    c = canary()
    route = http_route(c, Routes(50, 50))
    route["spec"]["rules"][0]["backendRefs"][0]["weight"] = 1
    route["spec"]["rules"][0]["backendRefs"][1]["weight"] = 3
    assert read_http_route(route, c) == Routes(primary=25, canary=75)
    route["spec"]["rules"][0]["backendRefs"][0]["weight"] = 0
    route["spec"]["rules"][0]["backendRefs"][1]["weight"] = 0
    assert read_http_route(route, c) is None
