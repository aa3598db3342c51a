"""The agent and `kubectl canary status` read the same weights from a routing object, in every
strategy: weighted steps, blue/green and, above all, A/B, where the rule that counts is the
one for matching requests (the agent's canary=100), not the default route after it
(`status` used to show primary 100 there)."""

from __future__ import annotations

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
from kubectl_canary.cli.detail_view import Workload
from kubectl_canary.cli.status import read_routes as status_reads
from kubectl_canary.objects.routers.gatewayapi import http_route
from kubectl_canary.objects.routers.gatewayapi import read_routes as agent_reads_http_route
from kubectl_canary.objects.routers.istio import read_routes as agent_reads_virtual_service
from kubectl_canary.objects.routers.istio import virtual_service
from tests.store_client import StoreClient

AB_MATCH = ({"headers": {"x-canary": {"exact": "insider"}}},)
STRATEGIES = {
    "canary": (AnalysisSpec(), Routes(primary=70, canary=30)),
    "blue-green": (AnalysisSpec(iterations=5), Routes(primary=0, canary=100)),
    "a-b": (AnalysisSpec(iterations=5, match=AB_MATCH), Routes(primary=0, canary=100)),
    "a-b-idle": (AnalysisSpec(iterations=5, match=AB_MATCH), Routes(primary=100, canary=0)),
}


def canary(provider: str, analysis: AnalysisSpec) -> Canary:
    refs = (GatewayRef(name="public", namespace="gateways"),) if provider == "gatewayapi" else ()
    return Canary(
        namespace="test",
        name="podinfo",
        uid="uid-1",
        spec=CanarySpec(
            target_ref=TargetRef("podinfo"),
            service=ServiceSpec(port=9898, gateway_refs=refs),
            analysis=analysis,
            provider=provider,
        ),
    )


@pytest.mark.parametrize("provider", ["istio", "gatewayapi"])
@pytest.mark.parametrize("strategy", sorted(STRATEGIES))
def test_agent_and_status_read_the_same_weights(provider: str, strategy: str) -> None:
    analysis, routes = STRATEGIES[strategy]
    c = canary(provider, analysis)
    if provider == "istio":
        obj = virtual_service(c, routes)
        agent = agent_reads_virtual_service(obj, c)
    else:
        obj = http_route(c, routes)
        agent = agent_reads_http_route(obj, c)
    kube = StoreClient(namespace="test")
    kube.add(obj)
    view = status_reads(
        kube,
        c,
        Workload("podinfo-primary", True, replicas=2, ready=2),
        Workload("podinfo", True, replicas=2, ready=2),
    )
    assert agent == routes, "the agent reads back what it wrote"
    assert not view.problem, view.problem
    assert dict(view.weights) == {
        "podinfo-primary": routes.primary,
        "podinfo-canary": routes.canary,
    }
    assert view.source.endswith(", requests that match") == strategy.startswith("a-b")
