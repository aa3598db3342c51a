"""The Router contract, run against every provider (DESIGN §2, STYLE 'a contract test per
protocol'): set→get round trip, weights sum to 100, reconcile writes nothing when nothing
changed, a pre-existing routing object is taken over and restored on finalize."""

from __future__ import annotations

import copy
import json

import pytest

from agent.core.types import Routes
from kubectl_canary.api.model import (
    API_VERSION,
    MANAGED_BY_LABEL,
    ORIGINAL_SPEC_ANNOTATION,
    AnalysisSpec,
    Canary,
)
from kubectl_canary.objects.metadata import APPLIED_HASH_ANNOTATION, managed_by
from kubectl_canary.objects.routers import (
    Router,
    RouterError,
    UnknownProviderError,
    router_for,
    router_names,
)
from kubectl_canary.objects.takeover import is_subset
from kubectl_canary.objects.writer import OwnershipError
from kubectl_canary.resources import ConflictError, Obj
from tests.store_client import StoreClient

from .backends import Backend, fake_backend

PROVIDERS = ["istio", "gatewayapi", "kubernetes"]
MIRRORS = {"istio": True, "gatewayapi": True, "kubernetes": False}
ROUTING_OBJECT = {
    "istio": ("networking.istio.io/v1beta1", "VirtualService"),
    "gatewayapi": ("gateway.networking.k8s.io/v1", "HTTPRoute"),
    "kubernetes": ("v1", "Service"),
}


def foreign_routing_object(provider: str, namespace: str) -> Obj:
    """A routing object named like the apex Service that a user created before onboarding."""
    api_version, kind = ROUTING_OBJECT[provider]
    meta = {"name": "podinfo", "namespace": namespace, "labels": {"owner": "user"}}
    specs: dict[str, Obj] = {
        "istio": {
            "hosts": ["podinfo.example.com"],
            "http": [{"route": [{"destination": {"host": "podinfo"}}]}],
        },
        "gatewayapi": {
            "parentRefs": [
                {"name": "public", "group": "gateway.networking.k8s.io", "kind": "Gateway"}
            ],
            "rules": [{"backendRefs": [{"name": "podinfo", "port": 80}]}],
        },
        "kubernetes": {"selector": {"app": "podinfo"}, "ports": [{"port": 80, "targetPort": 9898}]},
    }
    return {"apiVersion": api_version, "kind": kind, "metadata": meta, "spec": specs[provider]}


def live_routing_object(backend: Backend, provider: str) -> Obj | None:
    api_version, kind = ROUTING_OBJECT[provider]
    return backend.raw.get(api_version, kind, backend.namespace, "podinfo")


def reconciled(backend: Backend, provider: str, canary: Canary) -> Router:
    """A router that has reconciled `canary`, once the pods it may have relabelled are ready
    again (the kubernetes router labels the target's pod template)."""
    router = router_for(provider, backend.client)
    router.reconcile(canary)
    backend.settle("podinfo")
    return router


@pytest.fixture(params=PROVIDERS)
def provider(request: pytest.FixtureRequest) -> str:
    return str(request.param)


def test_reconcile_routes_everything_to_the_primary(backend: Backend, provider: str) -> None:
    canary = backend.canary(provider)
    backend.install(canary)
    router = router_for(provider, backend.client)

    router.reconcile(canary)

    assert router.get_routes(canary) == Routes(primary=100, canary=0)
    assert managed_by(live_routing_object(backend, provider)) == "podinfo"


@pytest.mark.parametrize("weights", [[10, 20, 50], [100, 0], [30, 30, 0, 60]])
def test_set_then_get_round_trip(backend: Backend, provider: str, weights: list[int]) -> None:
    canary = backend.canary(provider)
    backend.install(canary)
    router = reconciled(backend, provider, canary)

    for weight in weights:
        achieved = router.set_routes(canary, 100 - weight, weight)
        routes = router.get_routes(canary)
        assert routes is not None
        assert routes.primary + routes.canary == 100
        assert routes.canary == achieved
        if router.exact_weights:
            assert achieved == weight
        else:
            # Replica-ratio routing: 0 and 100 are exact, anything between is what pods allow.
            assert achieved == weight if weight in (0, 100) else 0 < achieved < 100


def test_mirror_round_trip(backend: Backend, provider: str) -> None:
    canary = backend.canary(provider, AnalysisSpec(mirror=True, mirror_weight=50))
    backend.install(canary)
    router = reconciled(backend, provider, canary)

    assert router.set_routes(canary, 100, 0, mirror=True) == 0

    # Only a mesh can mirror; the kubernetes router reports that it did not.
    assert router.get_routes(canary) == Routes(primary=100, canary=0, mirror=MIRRORS[provider])
    router.set_routes(canary, 100, 0)
    assert router.get_routes(canary) == Routes(primary=100, canary=0, mirror=False)


def test_ab_testing_round_trip(backend: Backend, provider: str) -> None:
    match = ({"headers": {"x-canary": {"exact": "insider"}}},)
    canary = backend.canary(provider, AnalysisSpec(iterations=5, match=match))
    backend.install(canary)
    router = router_for(provider, backend.client)
    if provider == "kubernetes":
        with pytest.raises(RouterError, match="cannot route by request match"):
            router.reconcile(canary)
        return
    router.reconcile(canary)

    assert router.set_routes(canary, 0, 100) == 100
    assert router.get_routes(canary) == Routes(primary=0, canary=100)
    backend.client.writes.clear()
    router.reconcile(canary)
    assert backend.client.writes == []


def test_reconcile_and_set_routes_write_nothing_when_unchanged(
    backend: Backend, provider: str
) -> None:
    canary = backend.canary(provider)
    backend.install(canary)
    router = reconciled(backend, provider, canary)
    achieved = router.set_routes(canary, 70, 30)
    backend.client.writes.clear()

    router.reconcile(canary)
    assert router.set_routes(canary, 70, 30) == achieved
    router.reconcile(canary)

    assert backend.client.writes == []
    routes = router.get_routes(canary)
    assert routes is not None and routes.canary == achieved  # reconcile kept the weights


def test_reconcile_repairs_an_edited_routing_object(backend: Backend, provider: str) -> None:
    canary = backend.canary(provider)
    backend.install(canary)
    router = reconciled(backend, provider, canary)
    live = live_routing_object(backend, provider)
    assert live is not None
    edited = copy.deepcopy(live)
    edited["spec"].pop(
        "hosts" if provider == "istio" else "selector" if provider == "kubernetes" else "parentRefs"
    )
    backend.raw.replace(edited)

    router.reconcile(canary)

    assert router.get_routes(canary) == Routes(primary=100, canary=0)
    repaired = live_routing_object(backend, provider)
    assert repaired is not None and repaired["spec"] != edited["spec"]


def test_takeover_saves_the_original_and_finalize_restores_it(
    backend: Backend, provider: str
) -> None:
    canary = backend.canary(provider)
    original = foreign_routing_object(provider, backend.namespace)
    backend.raw.create(original)
    backend.install(canary)
    router = router_for(provider, backend.client)

    router.reconcile(canary)
    taken = live_routing_object(backend, provider)
    assert taken is not None
    saved = json.loads(taken["metadata"]["annotations"][ORIGINAL_SPEC_ANNOTATION])
    assert is_subset(original["spec"], saved)  # as read back: with server defaults, if any
    assert taken["metadata"]["labels"]["owner"] == "user"
    # The user's object is never adopted for garbage collection.
    assert not [
        r for r in taken["metadata"].get("ownerReferences") or [] if r["apiVersion"] == API_VERSION
    ]
    router.set_routes(canary, 50, 50)
    router.reconcile(canary)  # a second reconcile must not overwrite the saved original

    router.finalize(canary)

    restored = live_routing_object(backend, provider)
    assert restored is not None
    assert restored["spec"] == saved
    labels = restored["metadata"].get("labels") or {}
    annotations = restored["metadata"].get("annotations") or {}
    assert MANAGED_BY_LABEL not in labels and labels["owner"] == "user"
    assert ORIGINAL_SPEC_ANNOTATION not in annotations
    assert APPLIED_HASH_ANNOTATION not in annotations
    assert router.get_routes(canary) is None  # no longer ours to read


def test_finalize_of_our_own_object(backend: Backend, provider: str) -> None:
    canary = backend.canary(provider)
    backend.install(canary)
    router = reconciled(backend, provider, canary)
    router.set_routes(canary, 0, 100)

    router.finalize(canary)
    router.finalize(canary)  # idempotent

    live = live_routing_object(backend, provider)
    if provider == "kubernetes":
        # The apex Service keeps serving: handed back, pointing at the target's pods.
        assert live is not None
        assert live["spec"]["selector"] == {"app": "podinfo"}
        assert managed_by(live) is None
        assert not live["metadata"].get("ownerReferences")
    elif provider == "gatewayapi":
        # An HTTPRoute keeps serving its parents: handed over, every rule to the apex Service.
        assert live is not None
        assert_handed_over(live)
        backends = [ref for rule in live["spec"]["rules"] for ref in rule["backendRefs"]]
        assert {(ref["name"], ref["weight"]) for ref in backends} == {("podinfo", 100)}
    else:
        # A mesh-only VirtualService: callers reach the apex Service directly without it.
        assert live is None


def assert_handed_over(live: Obj) -> None:
    """None of the Canary's marks are left: no label, no annotations of ours, no
    ownerReference (garbage collection must not delete what still serves traffic)."""
    assert managed_by(live) is None
    annotations = live["metadata"].get("annotations") or {}
    assert ORIGINAL_SPEC_ANNOTATION not in annotations
    assert APPLIED_HASH_ANNOTATION not in annotations
    assert not [
        r for r in live["metadata"].get("ownerReferences") or [] if r["apiVersion"] == API_VERSION
    ]


def test_finalize_hands_over_a_virtual_service_serving_a_gateway(backend: Backend) -> None:
    canary = backend.canary("istio", gateways=("public-gateway", "mesh"))
    backend.install(canary)
    router = reconciled(backend, "istio", canary)
    router.set_routes(canary, 50, 50, mirror=True)

    router.finalize(canary)
    router.finalize(canary)  # idempotent

    live = live_routing_object(backend, "istio")
    assert live is not None
    assert_handed_over(live)
    assert live["spec"]["gateways"] == ["public-gateway", "mesh"]
    for route in live["spec"]["http"]:
        assert route["route"] == [
            {"destination": {"host": "podinfo", "port": {"number": 9898}}, "weight": 100}
        ]
        assert "mirror" not in route


def test_set_routes_retries_on_conflict(provider: str) -> None:
    # Conflicts are injected, so this runs on the fake client only.
    backend = fake_backend()
    raw = backend.raw
    assert isinstance(raw, StoreClient)
    canary = backend.canary(provider)
    backend.install(canary)
    router = reconciled(backend, provider, canary)
    raw.fail("update", None, ConflictError("the object has been modified", 409), times=2)

    achieved = router.set_routes(canary, 0, 100)

    assert achieved == 100
    assert router.get_routes(canary) == Routes(primary=0, canary=100)


def test_an_object_of_another_canary_is_not_taken(backend: Backend, provider: str) -> None:
    canary = backend.canary(provider)
    backend.install(canary)
    other = foreign_routing_object(provider, backend.namespace)
    other["metadata"]["labels"][MANAGED_BY_LABEL] = "someone-else"
    if provider == "kubernetes":  # install() left the apex Service to the router
        assert backend.raw.get("v1", "Service", backend.namespace, "podinfo") is None
    backend.raw.create(other)
    router = router_for(provider, backend.client)

    with pytest.raises(OwnershipError, match="someone-else"):
        router.reconcile(canary)
    with pytest.raises(RouterError, match="reconcile first"):
        router.set_routes(canary, 90, 10)
    assert router.get_routes(canary) is None


def test_set_routes_before_reconcile_is_an_error(backend: Backend, provider: str) -> None:
    canary = backend.canary(provider)
    backend.install(canary)
    if provider == "kubernetes":
        backend.raw.delete("v1", "Service", backend.namespace, "podinfo")
    router = router_for(provider, backend.client)

    assert router.get_routes(canary) is None
    with pytest.raises(RouterError, match="reconcile first"):
        router.set_routes(canary, 90, 10)


@pytest.mark.parametrize("weights", [(90, 20), (-10, 110), (50, 49)])
def test_weights_must_sum_to_100(backend: Backend, provider: str, weights: tuple[int, int]) -> None:
    canary = backend.canary(provider)
    backend.install(canary)
    router = reconciled(backend, provider, canary)

    with pytest.raises(ValueError, match="weights"):
        router.set_routes(canary, *weights)


def test_unknown_provider_is_an_error_not_a_fallback(backend: Backend) -> None:
    with pytest.raises(UnknownProviderError, match="unknown provider 'linkerd'.*istio"):
        router_for("linkerd", backend.client)
    assert set(router_names()) == set(PROVIDERS)


def test_generated_routing_objects_are_owned_by_the_canary(backend: Backend, provider: str) -> None:
    canary = backend.canary(provider)
    backend.install(canary)
    router_for(provider, backend.client).reconcile(canary)

    live = live_routing_object(backend, provider)
    assert live is not None
    refs = live["metadata"]["ownerReferences"]
    assert [(r["kind"], r["name"], r["uid"], r["controller"]) for r in refs] == [
        ("Canary", "podinfo", canary.uid, True)
    ]
