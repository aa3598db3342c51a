"""Taking over an app that already serves traffic, on a real API server.

Onboarding: an app with its own Service (kubernetes provider), or Service and VirtualService
(istio), under simulated traffic: applying a Canary loses no request and the Service's
Endpoints are never empty (measured as in test_zero_downtime.py: the mesh's 503 UH count and
an Endpoints sampler).

Takeover and hand-back: a LoadBalancer Service (externalTrafficPolicy Local, sessionAffinity
ClientIP, loadBalancerSourceRanges) with a user's HPA on the target, and a NodePort Service
with a user's VirtualService: while managed, only the Service's selector and the
VirtualService's routes differ from the user's; after revertOnDeletion or `kubectl canary
offboard` their specs are exactly the user's again (nodePorts included), and the HPA was never
touched.
"""

from __future__ import annotations

import copy
from pathlib import Path
from typing import Any

import pytest

from tests.e2e.agent_harness import ClusterView, deployment, wait_for
from tests.e2e.traffic_watch import (
    App,
    EndpointsSampler,
    app_canary,
    assert_nothing_lost,
    mesh_counts,
    served_after,
)
from tests.realcluster.bed import Bed
from tests.realcluster.bed import image as tagged

pytestmark = [pytest.mark.realcluster]

ISTIO = "networking.istio.io/v1beta1"
HPA = "autoscaling/v2"
RPS = 25


def user_service(ns: str, name: str, **spec: Any) -> dict[str, Any]:
    return {
        "apiVersion": "v1",
        "kind": "Service",
        "metadata": {"name": name, "namespace": ns, "annotations": {"team": "shop"}},
        "spec": {
            "selector": {"app": name},
            "ports": [{"name": "http", "port": 9898, "targetPort": 9898, "protocol": "TCP"}],
            **spec,
        },
    }


def user_virtual_service(ns: str, name: str) -> dict[str, Any]:
    return {
        "apiVersion": ISTIO,
        "kind": "VirtualService",
        "metadata": {"name": name, "namespace": ns},
        "spec": {
            "hosts": [name, f"{name}.example.com"],
            "gateways": ["mesh"],
            "exportTo": ["."],
            "http": [{"route": [{"destination": {"host": name, "port": {"number": 9898}}}]}],
        },
    }


def user_hpa(ns: str, name: str) -> dict[str, Any]:
    return {
        "apiVersion": HPA,
        "kind": "HorizontalPodAutoscaler",
        "metadata": {"name": name, "namespace": ns, "labels": {"team": "shop"}},
        "spec": {
            "scaleTargetRef": {"apiVersion": "apps/v1", "kind": "Deployment", "name": name},
            "minReplicas": 2,
            "maxReplicas": 4,
        },
    }


def spec_of(c: ClusterView, api: str, kind: str, ns: str, name: str) -> dict[str, Any]:
    live = c.get(api, kind, ns, name)
    assert live is not None, f"{kind} {ns}/{name} is gone"
    return copy.deepcopy(live["spec"])


def user_view(c: ClusterView, api: str, kind: str, ns: str, name: str) -> dict[str, Any]:
    """What of an object is the user's: spec, labels, annotations."""
    live = c.get(api, kind, ns, name)
    assert live is not None
    meta = live["metadata"]
    return {
        "spec": live["spec"],
        "labels": meta.get("labels"),
        "annotations": meta.get("annotations"),
    }


@pytest.mark.timeout(300)
@pytest.mark.parametrize("provider", ["kubernetes", "istio"])
def test_onboarding_an_app_under_traffic_loses_no_request(
    bed: Bed, ns: str, tmp_path: Path, provider: str
) -> None:
    bed.require_mesh()
    name = "shop"
    c = bed.view()
    c.apply(deployment(ns, name, tagged("1.1.1"), replicas=3))
    c.apply(user_service(ns, name))
    if provider == "istio":
        c.apply(user_virtual_service(ns, name))
    bed.traffic(ns, name, RPS)
    served_after(bed.mesh_metrics, ns, name, 20, 30)  # the app serves before we come

    with bed.agent(tmp_path / "agent.log"):
        before = mesh_counts(bed.mesh_metrics, ns)
        with EndpointsSampler(bed.admin_kubeconfig, ns, name) as sampler:
            c.apply(app_canary(App(ns, name, provider, 3, "1.1.1", "Initialized")))
            c.wait_phase(ns, name, "Initialized", 120, 0.3)
            wait_for(
                "the target scaled to zero",
                lambda: (c.get("apps/v1", "Deployment", ns, name) or {})["spec"]["replicas"] == 0,
                30,
            )
            # Measure on until the primary alone has answered more requests.
            served_after(bed.mesh_metrics, ns, f"{name}-primary", 20, 30)
        after = mesh_counts(bed.mesh_metrics, ns)

    assert_nothing_lost(before, after, sampler, f"while onboarding ({provider})")
    assert after.by_workload.get(f"{name}-primary", 0) > before.by_workload.get(
        f"{name}-primary", 0
    )


@pytest.mark.timeout(420)
@pytest.mark.parametrize("hand_back", ["revertOnDeletion", "offboard"])
def test_takeover_changes_only_the_steered_fields_and_the_hand_back_restores_them(
    bed: Bed, ns: str, tmp_path: Path, hand_back: str
) -> None:
    c = bed.view()
    lb, np = "lb", "np"
    for name in (lb, np):
        c.apply(deployment(ns, name, tagged("1.1.1"), replicas=2))
    c.apply(
        user_service(
            ns,
            lb,
            type="LoadBalancer",
            externalTrafficPolicy="Local",
            sessionAffinity="ClientIP",
            loadBalancerSourceRanges=["10.0.0.0/8"],
        )
    )
    c.apply(user_hpa(ns, lb))
    c.apply(user_service(ns, np, type="NodePort"))
    c.apply(user_virtual_service(ns, np))
    lb_spec = spec_of(c, "v1", "Service", ns, lb)
    np_spec = spec_of(c, "v1", "Service", ns, np)
    vs_spec = spec_of(c, ISTIO, "VirtualService", ns, np)
    hpa_before = user_view(c, HPA, "HorizontalPodAutoscaler", ns, lb)
    assert lb_spec.get("healthCheckNodePort") and np_spec["ports"][0].get("nodePort")

    revert = {"revertOnDeletion": True} if hand_back == "revertOnDeletion" else {}
    lb_canary = app_canary(App(ns, lb, "kubernetes", 2, "1.1.1", "Initialized"), **revert)
    lb_canary["spec"]["autoscalerRef"] = {
        "apiVersion": HPA,
        "kind": "HorizontalPodAutoscaler",
        "name": lb,
    }
    np_canary = app_canary(App(ns, np, "istio", 2, "1.1.1", "Initialized"), **revert)
    with bed.agent(tmp_path / "agent.log"):
        c.apply(lb_canary)
        c.apply(np_canary)
        c.wait_phase(ns, lb, "Initialized", 120, 0.3)
        c.wait_phase(ns, np, "Initialized", 120, 0.3)

        assert spec_of(c, "v1", "Service", ns, lb) == {**lb_spec, "selector": {"app": "lb-primary"}}
        assert spec_of(c, "v1", "Service", ns, np) == {**np_spec, "selector": {"app": "np-primary"}}
        managed_vs = spec_of(c, ISTIO, "VirtualService", ns, np)
        assert {k: v for k, v in managed_vs.items() if k != "http"} == {
            k: v for k, v in vs_spec.items() if k != "http"
        }
        hosts = {d["destination"]["host"] for d in managed_vs["http"][0]["route"]}
        assert hosts == {"np-primary", "np-canary"}
        assert c.get(HPA, "HorizontalPodAutoscaler", ns, "lb-primary") is not None

        for name in (lb, np):
            if hand_back == "offboard":
                bed.kubectl("canary", "offboard", name, "-n", ns, "--timeout", "90", timeout=200)
            else:
                bed.kubectl(
                    "delete", "canaries.kubectl-canary.dev", name, "-n", ns, "--timeout=150s"
                )

    assert spec_of(c, "v1", "Service", ns, lb) == lb_spec
    assert spec_of(c, "v1", "Service", ns, np) == np_spec
    assert spec_of(c, ISTIO, "VirtualService", ns, np) == vs_spec
    for name in (lb, np):
        meta = (c.get("v1", "Service", ns, name) or {})["metadata"]
        assert meta.get("annotations") == {"team": "shop"}, "none of our marks are left"
    assert user_view(c, HPA, "HorizontalPodAutoscaler", ns, lb) == hpa_before
