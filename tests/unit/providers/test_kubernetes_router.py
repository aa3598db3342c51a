"""The kubernetes router: weights achieved by replica ratio behind the apex Service."""

from __future__ import annotations

from dataclasses import replace

import pytest

from agent.core.types import Routes
from kubectl_canary.api.model import SHARED_POD_LABEL, AnalysisSpec
from kubectl_canary.objects.routers import RouterError
from kubectl_canary.objects.routers.kubernetes import KubernetesRouter
from tests.contract.backends import Backend, fake_backend


@pytest.fixture
def backend() -> Backend:
    return fake_backend()


def apex_selector(backend: Backend) -> dict[str, str]:
    svc = backend.raw.get("v1", "Service", backend.namespace, "podinfo")
    assert svc is not None
    return dict(svc["spec"]["selector"])


def test_reconcile_labels_the_target_pods(backend: Backend) -> None:
    canary = backend.canary("kubernetes")
    backend.install(canary)

    KubernetesRouter(backend.client).reconcile(canary)

    target = backend.raw.get("apps/v1", "Deployment", backend.namespace, "podinfo")
    assert target is not None
    assert target["spec"]["template"]["metadata"]["labels"][SHARED_POD_LABEL] == "podinfo"
    primary = backend.raw.get("apps/v1", "Deployment", backend.namespace, "podinfo-primary")
    assert primary is not None
    assert primary["spec"]["template"]["metadata"]["labels"][SHARED_POD_LABEL] == "podinfo"
    assert apex_selector(backend) == {"app": "podinfo-primary"}


@pytest.mark.parametrize(
    ("primary_ready", "canary_ready", "asked", "achieved"),
    [(3, 1, 10, 25), (2, 2, 10, 50), (1, 2, 60, 67), (4, 0, 50, 0), (0, 0, 50, 0)],
)
def test_achieved_weight_is_the_ready_replica_ratio(
    backend: Backend, primary_ready: int, canary_ready: int, asked: int, achieved: int
) -> None:
    canary = backend.canary("kubernetes")
    backend.install(canary)
    router = KubernetesRouter(backend.client)
    router.reconcile(canary)
    backend.set_ready("podinfo-primary", primary_ready)
    backend.set_ready("podinfo", canary_ready)

    assert router.set_routes(canary, 100 - asked, asked) == achieved
    assert apex_selector(backend) == {SHARED_POD_LABEL: "podinfo"}
    assert router.get_routes(canary) == Routes(primary=100 - achieved, canary=achieved)


def test_zero_and_full_weights_switch_the_selector(backend: Backend) -> None:
    canary = backend.canary("kubernetes")
    backend.install(canary)
    router = KubernetesRouter(backend.client)
    router.reconcile(canary)

    assert router.set_routes(canary, 0, 100) == 100
    assert apex_selector(backend) == {"app": "podinfo"}  # blue/green: the canary's pods
    assert router.set_routes(canary, 100, 0) == 0
    assert apex_selector(backend) == {"app": "podinfo-primary"}


def test_mirroring_is_not_achieved(backend: Backend) -> None:
    canary = backend.canary("kubernetes")
    backend.install(canary)
    router = KubernetesRouter(backend.client)
    router.reconcile(canary)

    router.set_routes(canary, 100, 0, mirror=True)

    assert router.get_routes(canary) == Routes(primary=100, canary=0, mirror=False)


def test_request_matching_is_refused(backend: Backend) -> None:
    base = backend.canary("kubernetes")
    analysis = AnalysisSpec(iterations=3, match=({"headers": {"x": {"exact": "1"}}},))
    canary = replace(base, spec=replace(base.spec, analysis=analysis))
    backend.install(canary)

    with pytest.raises(RouterError, match="cannot route by request match"):
        KubernetesRouter(backend.client).reconcile(canary)


def test_missing_target_is_an_error(backend: Backend) -> None:
    with pytest.raises(RouterError, match="Deployment contract/podinfo not found"):
        KubernetesRouter(backend.client).reconcile(backend.canary("kubernetes"))
