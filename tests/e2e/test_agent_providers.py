"""A release through the agent with the gatewayapi and kubernetes providers (istio is the story
in test_agent_story.py): initialise, advance, promote, with the routing each provider writes."""

from __future__ import annotations

from pathlib import Path

import pytest

from .agent_harness import (
    IMAGE_PREFIX,
    Cluster,
    running_agent,
    sample,
    wait_for,
)
from .scenario_helpers import install_app, release_stack

pytestmark = [pytest.mark.e2e, pytest.mark.prometheus]

NS = "apps"


def compressed(canary: dict, name: str) -> dict:
    canary["metadata"] = {"name": name, "namespace": NS}
    canary["spec"]["targetRef"]["name"] = name
    analysis = canary["spec"]["analysis"]
    analysis["interval"] = "2s"
    for metric in analysis.get("metrics", []):
        metric["interval"] = "10s"
    return canary


def advances(c: Cluster, name: str) -> list[str]:
    history = c.status(NS, name).get("history", [])
    return [h["message"] for h in history if h["message"].startswith(f"Advance {name}.{NS}")]


@pytest.mark.parametrize("provider", ["gatewayapi", "kubernetes"])
def test_release_with_provider(tmp_path: Path, provider: str) -> None:
    name = "podinfo"
    if provider == "gatewayapi":
        canary = compressed(sample("canary-gatewayapi.yaml"), name)
        expected = [f"Advance {name}.{NS} canary weight {w}" for w in (20, 40, 60)]
    else:
        canary = compressed(sample("canary-kubernetes.yaml"), name)
        spec = canary["spec"]
        spec.pop("autoscalerRef", None)
        spec["analysis"].pop("webhooks", None)
        spec["analysis"]["metrics"] = [
            {"name": "request-success-rate", "thresholdRange": {"min": 99}, "interval": "10s"}
        ]
        # The first check comes one 2 s interval after the first step, which comes as soon as
        # the canary is ready: its new pods' first requests take longer than that to reach
        # the sandbox's endpoints and then Prometheus (it drops a new series' first sample),
        # so the first checks may find no data (two in a row seen): they must not roll it back.
        spec["analysis"]["threshold"] = 4
        spec["service"] = {"port": 9898, "targetPort": 9898, "portName": "http"}
        expected = [f"Advance {name}.{NS} canary weight {w}" for w in (25, 50)]
    with release_stack(tmp_path) as stack:
        c, prom, sb = stack.cluster, stack.prometheus, stack.cluster.sandbox
        install_app(c, NS, name, replicas=4)
        c.traffic([{"namespace": NS, "service": name, "rps": 20}], {})
        c.apply(canary)
        with running_agent(
            sb.kubeconfig, tmp_path / "agent.log", metrics_server=prom.url, provider=provider
        ):
            c.wait_phase(NS, name, "Initialized")
            c.set_image(NS, name, IMAGE_PREFIX + "1.1.2")
            c.wait_phase(NS, name, "Succeeded", 150, 0.5)
            assert advances(c, name) == expected
            primary = c.get("apps/v1", "Deployment", NS, f"{name}-primary")
            assert primary is not None
            image = primary["spec"]["template"]["spec"]["containers"][0]["image"]
            assert image == IMAGE_PREFIX + "1.1.2"
            if provider == "gatewayapi":
                route = c.get("gateway.networking.k8s.io/v1", "HTTPRoute", NS, name)
                assert route is not None
                refs = route["spec"]["rules"][-1]["backendRefs"]
                weights = {r["name"]: r.get("weight", 1) for r in refs}
                assert weights == {f"{name}-primary": 100, f"{name}-canary": 0}
                assert route["spec"]["parentRefs"][0]["name"] == "public"
            else:
                apex = c.get("v1", "Service", NS, name)
                assert apex is not None
            wait_for(
                "canary at 0",
                lambda: c.get("apps/v1", "Deployment", NS, name)["spec"]["replicas"] == 0,
                30,
            )
