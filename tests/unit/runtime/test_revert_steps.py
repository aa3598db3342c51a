"""The two revert steps of the provider wiring: `revert` hands the apex Service to the target
(every provider, repeatable while the endpoints catch up), `finalize` then gives the routing
object back. With the kubernetes provider the apex Service is the routing object itself."""

from __future__ import annotations

import pytest

from agent.wiring import ProviderToolkit
from kubectl_canary.api.model import MANAGED_BY_LABEL
from kubectl_canary.objects.routers import router_for
from tests.contract.backends import Backend, fake_backend
from tests.store_client import StoreClient

ISTIO = "networking.istio.io/v1beta1"


@pytest.fixture
def backend() -> Backend:
    return fake_backend()


@pytest.mark.parametrize("provider", ["kubernetes", "istio"])
def test_revert_hands_the_apex_service_over_and_repeats_without_writing(
    backend: Backend, provider: str
) -> None:
    canary = backend.canary(provider)
    backend.install(canary)
    router_for(provider, backend.client).reconcile(canary)
    backend.client.patch_merge(
        "apps/v1", "Deployment", backend.namespace, "podinfo", {"spec": {"replicas": 0}}
    )
    kit = ProviderToolkit(lambda ns, name: None)

    kit.revert(canary, backend.client)

    apex = backend.raw.get("v1", "Service", backend.namespace, "podinfo")
    assert apex is not None and apex["spec"]["selector"] == {"app": "podinfo"}
    assert MANAGED_BY_LABEL not in (apex["metadata"].get("labels") or {})
    assert not apex["metadata"].get("ownerReferences")
    target = backend.raw.get("apps/v1", "Deployment", backend.namespace, "podinfo")
    assert target is not None and target["spec"]["replicas"] == 2, "the primary's replicas"
    if provider == "istio":  # the routing waits for the second step
        assert backend.raw.get(ISTIO, "VirtualService", backend.namespace, "podinfo")

    assert isinstance(backend.raw, StoreClient)
    written = list(backend.raw.writes)
    kit.revert(canary, backend.client)  # a tick still waiting for the endpoints
    assert backend.raw.writes == written

    router_for(provider, backend.client).finalize(canary)
    assert backend.raw.get(ISTIO, "VirtualService", backend.namespace, "podinfo") is None
    after = backend.raw.get("v1", "Service", backend.namespace, "podinfo")
    assert after is not None and after["spec"]["selector"] == {"app": "podinfo"}


def test_initialize_never_rewrites_what_the_primary_runs(backend: Backend) -> None:
    """Initialize runs again on a Canary spec change or a repair mid-release: the target then
    holds an unanalysed revision, which must not reach the primary that way."""
    canary = backend.canary("istio")
    backend.install(canary)
    kit = ProviderToolkit(lambda ns, name: None)
    target = backend.raw.get("apps/v1", "Deployment", backend.namespace, "podinfo")
    assert target is not None
    kit.initialize(canary, backend.client, target, True)
    primary = backend.raw.get("apps/v1", "Deployment", backend.namespace, "podinfo-primary")
    assert primary is not None

    target["spec"]["template"]["spec"]["containers"][0]["image"] = "podinfo:unanalysed"
    target["spec"]["strategy"] = {"type": "Recreate"}
    backend.raw.replace(target)
    target = backend.raw.get("apps/v1", "Deployment", backend.namespace, "podinfo")
    assert target is not None
    kit.initialize(canary, backend.client, target, True)

    after = backend.raw.get("apps/v1", "Deployment", backend.namespace, "podinfo-primary")
    assert after is not None
    assert after["spec"]["template"] == primary["spec"]["template"]
    assert after["spec"].get("strategy") == primary["spec"].get("strategy")
