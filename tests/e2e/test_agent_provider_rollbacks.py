"""The rollback path with the gatewayapi and kubernetes providers (their promotion path is in
test_agent_providers.py; istio's rollback is in test_agent_story.py).

A new version that fails half its requests fails its checks `threshold` times; the agent then
routes everything back to the primary (HTTPRoute weights 100/0, or the apex Service selecting
the primary's pods), scales the canary to zero and ends Failed, while the primary, still on the
previous version, keeps answering the simulated clients, as Prometheus sees it.

One sandbox, one Prometheus and one agent serve both providers (each app sets
`spec.provider` and lives in its own namespace), to keep the module lean.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from typing import Any

import pytest

from .agent_harness import IMAGE_PREFIX, sample, wait_for
from .scenario_helpers import (
    Stack,
    event_messages,
    history,
    image,
    install_app,
    provider_canary,
    release_stack,
    replicas,
    requests_served,
)

pytestmark = [pytest.mark.e2e, pytest.mark.prometheus]

NAME = "podinfo"
THRESHOLD = 3
GOOD_TAG, BAD_TAG = "1.1.1", "1.1.3"
RPS = 20  # per simulated second, per app
GATEWAY_API = "gateway.networking.k8s.io/v1"
NAMESPACES = {"gatewayapi": "rollback-gw", "kubernetes": "rollback-k8s"}


def canary_for(provider: str) -> dict[str, Any]:
    return provider_canary(provider, NAMESPACES[provider], NAME, THRESHOLD)


@pytest.fixture(scope="module")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    """Sandbox + Prometheus + agent; both apps get traffic and the bad tag fails half of it."""
    workdir = tmp_path_factory.mktemp("provider-rollbacks")
    # Sanity: the sample canaries are still what this module adapts.
    assert sample("canary-gatewayapi.yaml")["spec"]["service"]["gatewayRefs"]
    with release_stack(workdir) as s:
        s.cluster.traffic(
            [{"namespace": ns, "service": NAME, "rps": RPS} for ns in NAMESPACES.values()],
            {BAD_TAG: {"errorRate": 0.5}},
        )
        with s.agent(provider="kubernetes"):
            yield s


def routes_to_primary_only(stack: Stack, provider: str) -> bool:
    """Whether the provider's routing object sends every request to the primary."""
    c, ns = stack.cluster, NAMESPACES[provider]
    if provider == "gatewayapi":
        route = c.get(GATEWAY_API, "HTTPRoute", ns, NAME)
        assert route is not None, f"HTTPRoute {ns}/{NAME} missing"
        refs = route["spec"]["rules"][-1]["backendRefs"]
        weights = {r["name"]: r.get("weight", 1) for r in refs}
        return weights == {f"{NAME}-primary": 100, f"{NAME}-canary": 0}
    apex = c.get("v1", "Service", ns, NAME)
    assert apex is not None, f"apex Service {ns}/{NAME} missing"
    return bool(apex["spec"]["selector"] == {"app": f"{NAME}-primary"})


@pytest.mark.parametrize("provider", ["gatewayapi", "kubernetes"])
def test_failing_version_is_rolled_back(stack: Stack, provider: str) -> None:
    c, prom, ns = stack.cluster, stack.prometheus, NAMESPACES[provider]
    display = f"{NAME}.{ns}"
    install_app(c, ns, NAME, replicas=4)
    c.apply(canary_for(provider))
    c.wait_phase(ns, NAME, "Initialized", 60, 0.2)
    assert routes_to_primary_only(stack, provider)
    wait_for(
        "the primary answering (per Prometheus)",
        lambda: requests_served(prom, ns, f"{NAME}-primary") > 0,
        60,
        0.5,
    )

    c.set_image(ns, NAME, IMAGE_PREFIX + BAD_TAG)
    # The canary must really take traffic before it is judged: sample the routing while the
    # release runs, until it ends.
    shifted: list[bool] = []

    def ended() -> bool:
        shifted.append(not routes_to_primary_only(stack, provider))
        return c.phase(ns, NAME) == "Failed"

    wait_for(f"phase Failed for {BAD_TAG}", ended, 150, 0.2)

    messages = history(c, ns, NAME)
    assert any(shifted), "the bad version never received a share of the traffic"
    assert f"Starting canary analysis for {display}" in messages
    halts = [m for m in messages if m.startswith(f"Halt {display} advancement")]
    # A first check may land before Prometheus scraped the canary's first requests ("no values
    # found"); a fair failure, but at least one must be judged on the measured error rate.
    assert any(re.search(r"success rate [0-9.]+% < 99%", m) for m in halts), halts
    rollback = f"Rolling back {display} failed checks threshold reached {THRESHOLD}"
    assert rollback in messages, messages
    assert rollback in event_messages(c, ns, NAME), "the rollback must be a Kubernetes Event"
    status = c.status(ns, NAME)
    assert status["failedChecks"] == THRESHOLD
    # Status omits fields at their defaults (canaryWeight 0, primaryWeight 100).
    assert (status.get("canaryWeight", 0), status.get("primaryWeight", 100)) == (0, 100)
    conditions = {x["type"]: x["status"] for x in status.get("conditions", [])}
    assert conditions.get("Promoted") == "False"

    assert routes_to_primary_only(stack, provider), "routing must be back on the primary"
    assert image(c, ns, f"{NAME}-primary") == IMAGE_PREFIX + GOOD_TAG
    wait_for("the canary scaled to 0", lambda: replicas(c, ns, NAME) == 0, 30, 0.2)
    # The previous version keeps serving: Prometheus sees the primary answer after the
    # rollback, and the canary's traffic drain to nothing.
    wait_for(
        "the canary to stop answering (per Prometheus)",
        lambda: requests_served(prom, ns, NAME, window="3s") == 0,
        60,
        0.5,
    )
    assert requests_served(prom, ns, f"{NAME}-primary", window="3s") > 0
