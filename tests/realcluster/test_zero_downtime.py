"""Handing an app back under traffic on a real API server, with zero lost requests:
`kubectl canary offboard` (istio, after a Failed release: the target gets the last good 1.1.2
back, not the failed 1.1.3), `kubectl delete canary` with revertOnDeletion (kubernetes
provider, after a Succeeded release: the apex selector moves to the target's pods) and without
it (istio: Flagger's default, which garbage-collects the primary while the target sits at zero
replicas; here the same hand-back).

Measured from both sides: the simulated mesh's count of requests that found no ready endpoint
(503 UH, source-reported) must not grow, and the apex Service's Endpoints, polled every ~50 ms
and watched, must never be empty. Real endpoints and garbage-collection controllers do the rest.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from kubectl_canary.api.model import FINALIZER
from tests.e2e.agent_harness import ClusterView, deployment, wait_for
from tests.e2e.scenario_helpers import image
from tests.e2e.traffic_watch import (
    App,
    EndpointsSampler,
    app_canary,
    assert_nothing_lost,
    mesh_counts,
    ready_addresses,
    served_after,
)
from tests.realcluster.bed import BAD_TAG, Bed
from tests.realcluster.bed import image as tagged

pytestmark = [pytest.mark.realcluster]

ISTIO = "networking.istio.io/v1beta1"
RPS = 25


def released(bed: Bed, app: App, tmp_path: Path, **spec: object) -> ClusterView:
    """`app` under traffic, released from 1.1.1 to its new tag, ending as app.outcome says
    (the agent stays up for the hand-back)."""
    c = bed.view()
    c.apply(deployment(app.namespace, app.name, tagged("1.1.1"), replicas=app.replicas))
    c.apply(app_canary(app, **spec))
    bed.traffic(app.namespace, app.name, RPS)
    c.wait_phase(app.namespace, app.name, "Initialized", 90, 0.5)
    c.set_image(app.namespace, app.name, tagged(app.new_tag))
    c.wait_phase(app.namespace, app.name, app.outcome, 150, 0.5)
    return c


def hand_back_under_traffic(bed: Bed, c: ClusterView, app: App, command: tuple[str, ...]) -> None:
    ns, name = app.namespace, app.name
    primary = c.get("apps/v1", "Deployment", ns, f"{name}-primary")
    assert primary is not None
    last_good = image(c, ns, f"{name}-primary")
    replicas = primary["spec"]["replicas"]
    served_after(bed.mesh_metrics, ns, f"{name}-primary", 20, 30)  # a live app to start with

    before = mesh_counts(bed.mesh_metrics, ns)
    with EndpointsSampler(bed.admin_kubeconfig, ns, name) as sampler:
        done = bed.kubectl(*command, timeout=300)
        assert "did not confirm" not in done.stderr, done.stderr
        wait_for(
            f"{name}-primary gone",
            lambda: c.get("apps/v1", "Deployment", ns, f"{name}-primary") is None,
            60,
        )
        # Measure on until the target's own pods have answered more requests.
        served_after(bed.mesh_metrics, ns, name, 20, 30)
    after = mesh_counts(bed.mesh_metrics, ns)

    assert_nothing_lost(before, after, sampler, f"during `{' '.join(command)}`:\n{done.stdout}")

    target = c.get("apps/v1", "Deployment", ns, name)
    assert target is not None
    assert image(c, ns, name) == last_good, "the target serves the last promoted version"
    assert target["spec"]["replicas"] == replicas
    assert (target.get("status") or {}).get("readyReplicas") == replicas
    apex = c.get("v1", "Service", ns, name)
    assert apex is not None, "the apex Service keeps serving"
    assert apex["spec"]["selector"] == target["spec"]["selector"]["matchLabels"]
    assert not apex["metadata"].get("ownerReferences")
    serving = {a["targetRef"]["name"] for a in ready_addresses(c.get("v1", "Endpoints", ns, name))}
    assert serving and all(p.startswith(f"{name}-") and "-primary-" not in p for p in serving)
    generated = [
        ("v1", "Service", f"{name}-primary"),
        ("v1", "Service", f"{name}-canary"),
        (ISTIO, "VirtualService", name),
        (ISTIO, "DestinationRule", f"{name}-primary"),
        (ISTIO, "DestinationRule", f"{name}-canary"),
    ]
    wait_for(
        "the generated objects garbage-collected",
        lambda: not [n for api, kind, n in generated if c.get(api, kind, ns, n) is not None],
        60,
    )
    assert c.get("kubectl-canary.dev/v1alpha1", "Canary", ns, name) is None


@pytest.mark.timeout(420)
def test_offboard_after_a_failed_release(bed: Bed, ns: str, tmp_path: Path) -> None:
    bed.require_mesh()
    app = App(ns, "shop", "istio", 2, BAD_TAG, "Failed")
    with bed.agent(tmp_path / "agent.log"):
        c = released(bed, app, tmp_path)
        assert image(c, ns, f"{app.name}-primary") == tagged("1.1.1")
        command = ("canary", "offboard", app.name, "-n", ns, "--timeout", "90")
        hand_back_under_traffic(bed, c, app, command)


@pytest.mark.timeout(420)
def test_revert_on_deletion_after_a_succeeded_release(bed: Bed, ns: str, tmp_path: Path) -> None:
    bed.require_mesh()
    app = App(ns, "cart", "kubernetes", 3, "1.1.2", "Succeeded")
    with bed.agent(tmp_path / "agent.log"):
        c = released(bed, app, tmp_path, revertOnDeletion=True)
        # kubectl waits for the deletion to finish: for the agent's finalizer to go.
        command = ("delete", "canaries.kubectl-canary.dev", app.name, "-n", ns, "--timeout=150s")
        hand_back_under_traffic(bed, c, app, command)


@pytest.mark.timeout(420)
def test_deletion_without_revert_on_deletion_hands_the_app_back(
    bed: Bed, ns: str, tmp_path: Path
) -> None:
    bed.require_mesh()
    app = App(ns, "till", "istio", 3, "1.1.2", "Succeeded")
    with bed.agent(tmp_path / "agent.log"):
        c = released(bed, app, tmp_path)
        canary = c.get("kubectl-canary.dev/v1alpha1", "Canary", ns, app.name)
        assert canary is not None and "revertOnDeletion" not in canary["spec"]
        assert FINALIZER in canary["metadata"].get("finalizers", []), "held without asking"
        # kubectl waits for the deletion to finish: for the agent's finalizer to go.
        command = ("delete", "canaries.kubectl-canary.dev", app.name, "-n", ns, "--timeout=150s")
        hand_back_under_traffic(bed, c, app, command)
