"""Each provider's promotion and rollback on a real API server (Istio's is the seed story):
the shipped gatewayapi and kubernetes samples, time-compressed, release a healthy 1.1.2
(Succeeded, served by the primary) and then 1.1.3, which fails half its requests and is rolled
back at the threshold while 1.1.2 keeps serving. Traffic and metrics come from the simulated
mesh through a real Prometheus: an HTTPRoute's weights, or the replica ratio behind the apex
Service's endpoints.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.e2e.agent_harness import ClusterView, deployment, wait_for
from tests.e2e.scenario_helpers import (
    advanced_weights,
    event_messages,
    history,
    image,
    provider_canary,
    replicas,
)
from tests.e2e.traffic_watch import ready_addresses
from tests.realcluster.bed import BAD_TAG, Bed
from tests.realcluster.bed import image as tagged

pytestmark = [pytest.mark.realcluster]

NAME = "podinfo"
THRESHOLD = 2
GATEWAY_API = "gateway.networking.k8s.io/v1"


def backend_weights(route: dict[str, object]) -> dict[str, int]:
    rules = route["spec"]["rules"]  # type: ignore[index]
    return {ref["name"]: int(ref.get("weight", 1)) for ref in rules[-1]["backendRefs"]}


@pytest.mark.timeout(420)
@pytest.mark.parametrize("provider", ["gatewayapi", "kubernetes"])
def test_promotion_then_rollback(bed: Bed, ns: str, provider: str, tmp_path: Path) -> None:
    bed.require_mesh()
    c = bed.view()
    c.apply(deployment(ns, NAME, tagged("1.1.1")))
    canary = provider_canary(provider, ns, NAME, THRESHOLD)
    step, top = canary["spec"]["analysis"]["stepWeight"], canary["spec"]["analysis"]["maxWeight"]
    c.apply(canary)
    bed.traffic(ns, NAME)
    with bed.agent(tmp_path / "agent.log"):
        c.wait_phase(ns, NAME, "Initialized", 90, 0.5)
        if provider == "gatewayapi":
            route = c.get(GATEWAY_API, "HTTPRoute", ns, NAME)
            assert route is not None, "the agent made the HTTPRoute"
            assert backend_weights(route) == {f"{NAME}-primary": 100, f"{NAME}-canary": 0}

        c.set_image(ns, NAME, tagged("1.1.2"))
        c.wait_phase(ns, NAME, "Succeeded", 180, 0.5)
        promoted = history(c, ns, NAME)
        assert advanced_weights(promoted, ns, NAME) == list(range(step, top + 1, step))
        assert promoted[-1] == f"Promotion completed! Scaling down {NAME}.{ns}"
        assert image(c, ns, f"{NAME}-primary") == tagged("1.1.2")
        wait_for("the canary scaled down", lambda: replicas(c, ns, NAME) == 0, 30)

        bed.wait_canary_traffic_gone(ns, NAME)
        c.set_image(ns, NAME, tagged(BAD_TAG))
        c.wait_phase(ns, NAME, "Failed", 180, 0.5)
        failed = history(c, ns, NAME)[len(promoted) :]
        assert f"Rolling back {NAME}.{ns} failed checks threshold reached {THRESHOLD}" in failed
        assert image(c, ns, f"{NAME}-primary") == tagged("1.1.2"), "1.1.2 keeps serving"
        wait_for("the canary scaled down", lambda: replicas(c, ns, NAME) == 0, 30)
        if provider == "gatewayapi":
            route = c.get(GATEWAY_API, "HTTPRoute", ns, NAME)
            assert route is not None
            assert backend_weights(route) == {f"{NAME}-primary": 100, f"{NAME}-canary": 0}
        else:
            wait_for(
                "the apex Service's endpoints all on the primary's pods",
                lambda: endpoint_owners(c, ns) == {f"{NAME}-primary"},
                30,
            )
        assert event_messages(c, ns, NAME) == history(c, ns, NAME)


def endpoint_owners(c: ClusterView, ns: str) -> set[str]:
    """The Deployments whose pods are the apex Service's ready endpoints (by pod name)."""
    endpoints = c.get("v1", "Endpoints", ns, NAME)
    pods = {a["targetRef"]["name"] for a in ready_addresses(endpoints)}
    primary_prefix = f"{NAME}-primary-"
    return {f"{NAME}-primary" if p.startswith(primary_prefix) else NAME for p in pods}
