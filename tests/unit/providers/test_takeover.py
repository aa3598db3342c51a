"""Taking over a user's Service or routing object changes only the steered fields; the hand-back
restores the user's spec exactly; an object another controller owns or steers is never taken."""

from __future__ import annotations

import copy
from typing import Any

import pytest

from kubectl_canary.objects.builders import apex_service
from kubectl_canary.objects.routers.gatewayapi import http_route
from kubectl_canary.objects.routers.istio import virtual_service
from kubectl_canary.objects.routes import Routes
from kubectl_canary.objects.takeover import foreign_manager, taken_over_spec
from kubectl_canary.objects.writer import OwnershipError, ensure, release
from tests.store_client import StoreClient
from tests.unit.providers.test_workloads import canary, target

Obj = dict[str, Any]


def load_balancer(ports: list[Obj] | None = None) -> Obj:
    return {
        "apiVersion": "v1",
        "kind": "Service",
        "metadata": {
            "name": "podinfo",
            "namespace": "test",
            "annotations": {"service.beta.kubernetes.io/aws-load-balancer-type": "nlb"},
        },
        "spec": {
            "type": "LoadBalancer",
            "selector": {"app": "podinfo"},
            "ports": ports
            or [
                {
                    "name": "http",
                    "port": 9898,
                    "targetPort": 9898,
                    "protocol": "TCP",
                    "nodePort": 31898,
                }
            ],
            "externalTrafficPolicy": "Local",
            "healthCheckNodePort": 32000,
            "sessionAffinity": "ClientIP",
            "loadBalancerSourceRanges": ["10.0.0.0/8"],
            "loadBalancerIP": "203.0.113.7",
            "clusterIP": "10.96.0.12",
        },
    }


def test_a_load_balancer_keeps_everything_but_its_selector() -> None:
    client = StoreClient(namespace="test")
    before = client.add(load_balancer())

    taken = ensure(client, apex_service(target(), canary()), detect_drift=True, adopt=True)

    assert taken["spec"] == {**before["spec"], "selector": {"app": "podinfo-primary"}}
    assert taken["metadata"]["annotations"]["service.beta.kubernetes.io/aws-load-balancer-type"]
    client.writes.clear()
    ensure(client, apex_service(target(), canary()), detect_drift=True, adopt=True)
    assert client.writes == [], "a taken-over Service is in sync: no write on the next tick"

    release(client, "v1", "Service", "test", "podinfo", canary())
    after = client.get("v1", "Service", "test", "podinfo")
    assert after is not None and after["spec"] == before["spec"]


def test_ports_change_only_when_none_serves_the_canarys_port_and_keep_their_node_port() -> None:
    ports = [
        {"name": "web", "port": 9898, "targetPort": 8080, "protocol": "TCP", "nodePort": 31898},
        {"name": "admin", "port": 9000, "targetPort": 9000, "protocol": "TCP", "nodePort": 31900},
    ]
    client = StoreClient(namespace="test")
    before = client.add(load_balancer(ports))

    taken = ensure(client, apex_service(target(), canary()), detect_drift=True, adopt=True)

    assert taken["spec"]["ports"] == [
        {"name": "http", "port": 9898, "targetPort": 9898, "protocol": "TCP", "nodePort": 31898}
    ]
    assert {k: v for k, v in taken["spec"].items() if k not in ("ports", "selector")} == {
        k: v for k, v in before["spec"].items() if k not in ("ports", "selector")
    }
    release(client, "v1", "Service", "test", "podinfo", canary())
    after = client.get("v1", "Service", "test", "podinfo")
    assert after is not None and after["spec"] == before["spec"]


@pytest.mark.parametrize(
    ("live", "changed"),
    [
        ([{"port": 9898, "targetPort": 9898}], False),  # protocol defaults to TCP
        ([{"port": 9898}], False),  # targetPort defaults to the port
        ([{"port": 80, "targetPort": 9898}, {"port": 9898, "targetPort": 9898}], False),
        ([{"port": 9898, "targetPort": "http"}], True),
        ([{"port": 9898, "targetPort": 9898, "protocol": "UDP"}], True),
        ([{"port": 80, "targetPort": 9898}], True),
    ],
    ids=["defaults", "no-target-port", "one-of-two", "named", "udp", "other-port"],
)
def test_which_ports_serve_the_canarys(live: list[Obj], changed: bool) -> None:
    desired = apex_service(target(), canary())["spec"]
    spec = taken_over_spec("Service", {"selector": {"app": "podinfo"}, "ports": live}, desired)
    assert (spec["ports"] != live) is changed


def users_virtual_service() -> Obj:
    return {
        "apiVersion": "networking.istio.io/v1beta1",
        "kind": "VirtualService",
        "metadata": {"name": "podinfo", "namespace": "test"},
        "spec": {
            "hosts": ["podinfo", "podinfo.example.com"],
            "gateways": ["public/edge", "mesh"],
            "exportTo": ["."],
            "http": [{"route": [{"destination": {"host": "podinfo"}}]}],
        },
    }


def users_http_route() -> Obj:
    return {
        "apiVersion": "gateway.networking.k8s.io/v1",
        "kind": "HTTPRoute",
        "metadata": {"name": "podinfo", "namespace": "test"},
        "spec": {
            "parentRefs": [{"name": "edge", "namespace": "public"}],
            "hostnames": ["podinfo.example.com"],
            "rules": [{"backendRefs": [{"name": "podinfo", "port": 9898}]}],
        },
    }


@pytest.mark.parametrize(
    ("theirs", "ours", "field"),
    [
        (users_virtual_service(), virtual_service(canary(), Routes(100, 0)), "http"),
        (users_http_route(), http_route(canary("gatewayapi"), Routes(100, 0)), "rules"),
    ],
    ids=["virtualservice", "httproute"],
)
def test_a_routing_object_keeps_all_but_its_routes(theirs: Obj, ours: Obj, field: str) -> None:
    client = StoreClient(namespace="test")
    before = client.add(theirs)

    taken = ensure(client, copy.deepcopy(ours), detect_drift=True, adopt=True)

    assert taken["spec"] == {**before["spec"], field: ours["spec"][field]}
    client.writes.clear()
    ensure(client, copy.deepcopy(ours), detect_drift=True, adopt=True)
    assert client.writes == []
    api, kind = theirs["apiVersion"], theirs["kind"]
    release(client, api, kind, "test", "podinfo", canary())
    after = client.get(api, kind, "test", "podinfo")
    assert after is not None and after["spec"] == before["spec"]


def test_only_the_apex_and_routing_kinds_are_ever_taken_over() -> None:
    with pytest.raises(ValueError, match="never taken over"):
        taken_over_spec("Deployment", {}, {})


OTHER_CONTROLLER = {
    "apiVersion": "flagger.app/v1beta1",
    "kind": "Canary",
    "name": "podinfo",
    "uid": "f1",
    "controller": True,
}


@pytest.mark.parametrize(
    ("meta", "who"),
    [
        ({"ownerReferences": [OTHER_CONTROLLER]}, "its controller Canary podinfo"),
        (
            {"annotations": {"argo-rollouts.argoproj.io/managed-by-rollouts": "podinfo"}},
            "another tool",
        ),
    ],
    ids=["controller-owner", "argo-rollouts"],
)
def test_an_object_another_controller_manages_is_not_taken_over(meta: Obj, who: str) -> None:
    client = StoreClient(namespace="test")
    theirs = load_balancer()
    theirs["metadata"].update(copy.deepcopy(meta))
    before = client.add(theirs)

    with pytest.raises(OwnershipError, match=f"managed by {who}"):
        ensure(client, apex_service(target(), canary()), detect_drift=True, adopt=True)
    assert client.get("v1", "Service", "test", "podinfo") == before


@pytest.mark.parametrize(
    "ref",
    [
        {**OTHER_CONTROLLER, "controller": False},  # an owner, not a controller
        {**OTHER_CONTROLLER, "apiVersion": "kubectl-canary.dev/v1alpha1"},  # this Canary
    ],
    ids=["not-controller", "this-canary"],
)
def test_owners_that_steer_nothing_do_not_block(ref: Obj) -> None:
    assert foreign_manager({"metadata": {"ownerReferences": [ref]}}, "podinfo") is None
