"""The in-process Store: API semantics the simulation and the HTTP layer rely on."""

from __future__ import annotations

import threading
from typing import Any

import pytest

from kubectl_canary.sandbox.store import (
    AlreadyExists,
    Conflict,
    Forbidden,
    Invalid,
    NotFound,
    Store,
)


def deployment(name: str = "web", replicas: int = 2, **meta: Any) -> dict[str, Any]:
    return {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {"name": name, "namespace": "default", **meta},
        "spec": {
            "replicas": replicas,
            "selector": {"matchLabels": {"app": name}},
            "template": {
                "metadata": {"labels": {"app": name}},
                "spec": {"containers": [{"name": "app", "image": "nginx:1"}]},
            },
        },
    }


def configmap(name: str, namespace: str = "default", **meta: Any) -> dict[str, Any]:
    return {
        "apiVersion": "v1",
        "kind": "ConfigMap",
        "metadata": {"name": name, "namespace": namespace, **meta},
        "data": {"k": "v"},
    }


def canary(name: str = "c1", **spec: Any) -> dict[str, Any]:
    return {
        "apiVersion": "kubectl-canary.dev/v1alpha1",
        "kind": "Canary",
        "metadata": {"name": name, "namespace": "default"},
        "spec": {
            "provider": "kubernetes",
            "targetRef": {"apiVersion": "apps/v1", "kind": "Deployment", "name": "web"},
            "service": {"port": 80},
            "analysis": {"interval": "1m", "threshold": 5, "maxWeight": 50, "stepWeight": 10},
            **spec,
        },
    }


def test_create_sets_server_fields_and_get_returns_copies(store: Store) -> None:
    created = store.create(deployment())
    meta = created["metadata"]
    assert meta["uid"] and meta["creationTimestamp"] and meta["generation"] == 1
    assert int(meta["resourceVersion"]) > 0
    assert created["spec"]["strategy"]["type"] == "RollingUpdate"  # built-in defaulting
    got = store.get("apps/v1", "Deployment", "default", "web")
    got["spec"]["replicas"] = 99
    assert store.get("apps/v1", "Deployment", "default", "web")["spec"]["replicas"] == 2
    with pytest.raises(AlreadyExists):
        store.create(deployment())
    with pytest.raises(NotFound):
        store.get("apps/v1", "Deployment", "default", "missing")


def test_generate_name_and_missing_namespace(store: Store) -> None:
    obj = configmap("")
    obj["metadata"] = {"generateName": "cfg-", "namespace": "default"}
    created = store.create(obj)
    assert created["metadata"]["name"].startswith("cfg-")
    assert len(created["metadata"]["name"]) == len("cfg-") + 5
    with pytest.raises(NotFound, match='namespaces "nowhere" not found'):
        store.create(configmap("x", namespace="nowhere"))


def test_generation_bumps_on_spec_change_only(store: Store) -> None:
    created = store.create(deployment())
    labelled = dict(created, metadata={**created["metadata"], "labels": {"a": "b"}})
    after_label = store.update(labelled)
    assert after_label["metadata"]["generation"] == 1
    assert after_label["metadata"]["resourceVersion"] != created["metadata"]["resourceVersion"]
    after_label["spec"]["replicas"] = 3
    assert store.update(after_label)["metadata"]["generation"] == 2


def test_noop_update_keeps_resource_version(store: Store) -> None:
    created = store.create(configmap("same"))
    again = store.update(created)
    assert again["metadata"]["resourceVersion"] == created["metadata"]["resourceVersion"]


def test_stale_resource_version_conflicts(store: Store) -> None:
    created = store.create(configmap("c"))
    fresh = dict(created, data={"k": "2"})
    store.update(fresh)
    stale = dict(created, data={"k": "3"})
    with pytest.raises(Conflict, match="the object has been modified"):
        store.update(stale)


def test_status_subresource_separation(store: Store) -> None:
    created = store.create({**deployment(), "status": {"replicas": 7}})
    assert "status" not in created  # status is not settable on create
    with_status = dict(created, status={"readyReplicas": 2})
    updated = store.update_status(with_status)
    assert updated["status"] == {"readyReplicas": 2}
    assert updated["metadata"]["generation"] == 1
    # PUT on the main resource ignores status; PUT on status ignores spec.
    main = dict(updated, status={"readyReplicas": 0})
    main["spec"] = dict(main["spec"], replicas=5)
    after_main = store.update(main)
    assert after_main["status"] == {"readyReplicas": 2}
    assert after_main["spec"]["replicas"] == 5
    sneaky = dict(after_main, status={"readyReplicas": 5})
    sneaky["spec"] = dict(sneaky["spec"], replicas=1)
    after_status = store.update_status(sneaky)
    assert after_status["spec"]["replicas"] == 5
    assert after_status["status"] == {"readyReplicas": 5}


def test_finalizers_delay_deletion_until_removed(store: Store) -> None:
    store.create(configmap("held", finalizers=["example.com/hold"]))
    store.delete("v1", "ConfigMap", "default", "held")
    held = store.get("v1", "ConfigMap", "default", "held")
    assert held["metadata"]["deletionTimestamp"]
    held["metadata"]["finalizers"] = []
    store.update(held)
    with pytest.raises(NotFound):
        store.get("v1", "ConfigMap", "default", "held")


def test_owner_garbage_collection(store: Store) -> None:
    owner = store.create(deployment())
    ref = {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "name": "web",
        "uid": owner["metadata"]["uid"],
        "controller": True,
    }
    store.create(configmap("owned", ownerReferences=[ref]))
    other = store.create(configmap("other-owner"))
    other_ref = {"apiVersion": "v1", "kind": "ConfigMap", "name": "other-owner"}
    other_ref["uid"] = other["metadata"]["uid"]
    store.create(configmap("shared", ownerReferences=[ref, other_ref]))
    store.delete("apps/v1", "Deployment", "default", "web")
    with pytest.raises(NotFound):
        store.get("v1", "ConfigMap", "default", "owned")
    shared = store.get("v1", "ConfigMap", "default", "shared")
    assert [r["name"] for r in shared["metadata"]["ownerReferences"]] == ["other-owner"]


def test_orphan_propagation_keeps_dependents(store: Store) -> None:
    owner = store.create(deployment())
    ref = {"apiVersion": "apps/v1", "kind": "Deployment", "name": "web"}
    ref["uid"] = owner["metadata"]["uid"]
    store.create(configmap("kept", ownerReferences=[ref]))
    store.delete("apps/v1", "Deployment", "default", "web", propagation_policy="Orphan")
    kept = store.get("v1", "ConfigMap", "default", "kept")
    assert "ownerReferences" not in kept["metadata"]


def test_namespace_deletion_removes_contents(store: Store) -> None:
    store.create({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "team"}})
    store.create(configmap("a", namespace="team"))
    store.create(configmap("b", namespace="team", finalizers=["example.com/hold"]))
    store.delete("v1", "Namespace", None, "team")
    ns = store.get("v1", "Namespace", None, "team")
    assert ns["status"]["phase"] == "Terminating"
    with pytest.raises(Forbidden):
        store.create(configmap("late", namespace="team"))
    b = store.get("v1", "ConfigMap", "team", "b")
    b["metadata"]["finalizers"] = []
    store.update(b)
    with pytest.raises(NotFound):
        store.get("v1", "Namespace", None, "team")
    assert store.list("v1", "ConfigMap", "team") == []


def test_label_selector_list(store: Store) -> None:
    store.create(configmap("x1", labels={"app": "x", "tier": "fe"}))
    store.create(configmap("x2", labels={"app": "x"}))
    store.create(configmap("y1", labels={"app": "y"}))

    def names(selector: str) -> list[str]:
        return [o["metadata"]["name"] for o in store.list("v1", "ConfigMap", "default", selector)]

    assert names("app=x") == ["x1", "x2"]
    assert names("app in (x,y),!tier") == ["x2", "y1"]
    assert names("tier") == ["x1"]
    assert names("app notin (x)") == ["y1"]


def test_subscribers_see_changes_in_order_and_may_write(store: Store) -> None:
    seen: list[tuple[str, str, str]] = []

    def on_event(event_type: str, obj: dict[str, Any]) -> None:
        seen.append((event_type, obj["kind"], obj["metadata"]["name"]))
        # A controller reacting by writing to the store from inside the callback.
        if obj["kind"] == "ConfigMap" and event_type == "ADDED" and obj["metadata"]["name"] == "a":
            store.create(configmap("reaction"))

    unsubscribe = store.subscribe(on_event)
    store.create(configmap("a"))
    store.delete("v1", "ConfigMap", "default", "a")
    unsubscribe()
    store.create(configmap("after"))
    assert seen == [
        ("ADDED", "ConfigMap", "a"),
        ("ADDED", "ConfigMap", "reaction"),
        ("DELETED", "ConfigMap", "a"),
    ]


def test_concurrent_writers_lose_no_events(store: Store) -> None:
    seen: list[str] = []
    lock = threading.Lock()

    def on_event(event_type: str, obj: dict[str, Any]) -> None:
        with lock:
            seen.append(obj["metadata"]["name"])

    store.subscribe(on_event)

    def writer(prefix: str) -> None:
        for i in range(50):
            store.create(configmap(f"{prefix}-{i}"))

    threads = [threading.Thread(target=writer, args=(f"w{n}",)) for n in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=30)
    assert sorted(seen) == sorted(f"w{n}-{i}" for n in range(4) for i in range(50))


def test_custom_resource_defaults_pruning_and_validation(store: Store) -> None:
    created = store.create(canary(unknownField=1))
    assert "unknownField" not in created["spec"]  # pruned like a real server
    assert created["spec"]["progressDeadlineSeconds"] == 600  # CRD default
    with pytest.raises(Invalid) as err:
        store.create(canary("bad", provider="nope"))
    assert err.value.causes[0].field == "spec.provider"
    assert "Unsupported value" in err.value.message


def test_custom_resource_status_subresource_and_multi_version_crd(store: Store) -> None:
    created = store.create(canary())
    created["status"] = {"phase": "Progressing"}
    assert "status" not in store.update(created)
    assert store.update_status(created)["status"]["phase"] == "Progressing"
    vs = {
        "apiVersion": "networking.istio.io/v1beta1",
        "kind": "VirtualService",
        "metadata": {"name": "vs", "namespace": "default"},
        "spec": {"hosts": ["web"], "http": [{"route": [{"destination": {"host": "web"}}]}]},
    }
    store.create(vs)
    # One object, served under every version of the CRD.
    assert store.get("networking.istio.io/v1", "VirtualService", "default", "vs")["spec"]
    assert (
        store.get("networking.istio.io/v1alpha3", "VirtualService", "default", "vs")["apiVersion"]
        == "networking.istio.io/v1alpha3"
    )


def test_gateway_api_weight_range_and_defaults(store: Store) -> None:
    route = {
        "apiVersion": "gateway.networking.k8s.io/v1",
        "kind": "HTTPRoute",
        "metadata": {"name": "r", "namespace": "default"},
        "spec": {"rules": [{"backendRefs": [{"name": "web", "port": 80}]}]},
    }
    created = store.create(route)
    ref = created["spec"]["rules"][0]["backendRefs"][0]
    assert (ref["weight"], ref["kind"], ref["group"]) == (1, "Service", "")
    created["spec"]["rules"][0]["backendRefs"][0]["weight"] = 1_000_001
    with pytest.raises(Invalid) as err:
        store.update(created)
    assert err.value.causes[0].field == "spec.rules[0].backendRefs[0].weight"


def test_crd_lifecycle_serves_and_removes_kind() -> None:
    store = Store()
    crd = {
        "apiVersion": "apiextensions.k8s.io/v1",
        "kind": "CustomResourceDefinition",
        "metadata": {"name": "widgets.example.com"},
        "spec": {
            "group": "example.com",
            "scope": "Namespaced",
            "names": {"plural": "widgets", "singular": "widget", "kind": "Widget"},
            "versions": [
                {
                    "name": "v1",
                    "served": True,
                    "storage": True,
                    "schema": {
                        "openAPIV3Schema": {
                            "type": "object",
                            "properties": {
                                "spec": {
                                    "type": "object",
                                    "required": ["size"],
                                    "properties": {
                                        "size": {"type": "integer", "minimum": 1},
                                        "color": {"type": "string", "default": "red"},
                                    },
                                }
                            },
                        }
                    },
                }
            ],
        },
    }
    created = store.create(crd)
    conditions = {c["type"]: c["status"] for c in created["status"]["conditions"]}
    assert conditions["Established"] == "True"
    widget = {
        "apiVersion": "example.com/v1",
        "kind": "Widget",
        "metadata": {"name": "w", "namespace": "default"},
        "spec": {"size": 2},
    }
    assert store.create(widget)["spec"]["color"] == "red"
    with pytest.raises(Invalid, match="should be greater than or equal to 1"):
        store.create(
            {**widget, "metadata": {"name": "w2", "namespace": "default"}, "spec": {"size": 0}}
        )
    store.delete("apiextensions.k8s.io/v1", "CustomResourceDefinition", None, "widgets.example.com")
    with pytest.raises(NotFound, match="no matches for kind"):
        store.get("example.com/v1", "Widget", "default", "w")


def test_metadata_validation_like_a_real_server(store: Store) -> None:
    with pytest.raises(Invalid, match="a valid label must be an empty string"):
        store.create(configmap("l", labels={"app": "no spaces"}))
    with pytest.raises(Invalid, match="prefix part"):
        store.create(configmap("k", labels={"Bad_Prefix/app": "x"}))
    huge = {"kubectl.kubernetes.io/last-applied-configuration": "x" * (256 * 1024)}
    with pytest.raises(Invalid, match="metadata.annotations: Too long"):
        store.create(configmap("a", annotations=huge))
    with pytest.raises(Invalid, match="metadata.name"):
        store.create(configmap("Upper_Case"))


def test_label_lengths_like_a_real_server(store: Store) -> None:
    """What kube-apiserver v1.24 answered (../shared/k8s): label values of at most 63
    characters in metadata, selectors and pod templates, and a CRD's metadata.name limit."""
    too_long = "a" * 64
    with pytest.raises(Invalid, match=f'metadata.labels: Invalid value: "{too_long}": must be no'):
        store.create(configmap("l", labels={"app": too_long}))
    long_selector = deployment()
    long_selector["spec"]["selector"]["matchLabels"]["app"] = too_long
    long_selector["spec"]["template"]["metadata"]["labels"]["app"] = too_long
    with pytest.raises(Invalid, match="spec.selector.matchLabels: Invalid value") as caught:
        store.create(long_selector)
    assert "spec.template.metadata.labels: Invalid value" in str(caught.value)
    service = {
        "apiVersion": "v1",
        "kind": "Service",
        "metadata": {"name": "s", "namespace": "default"},
        "spec": {"selector": {"app": too_long}, "ports": [{"port": 80}]},
    }
    with pytest.raises(Invalid, match="spec.selector: Invalid value"):
        store.create(service)
    long_name = canary(too_long)
    long_name["metadata"]["name"] = too_long
    with pytest.raises(Invalid, match="metadata.name in body should be at most 63 chars long"):
        store.create(long_name)
    store.create(canary("a" * 63))


def test_immutable_fields(store: Store) -> None:
    created = store.create(deployment())
    created["spec"]["selector"] = {"matchLabels": {"app": "other"}}
    created["spec"]["template"]["metadata"]["labels"] = {"app": "other"}
    with pytest.raises(Invalid, match="spec.selector: Invalid value: field is immutable"):
        store.update(created)
    service = store.create(
        {
            "apiVersion": "v1",
            "kind": "Service",
            "metadata": {"name": "svc", "namespace": "default"},
            "spec": {"selector": {"app": "web"}, "ports": [{"port": 80}]},
        }
    )
    allocated = service["spec"]["clusterIP"]
    del service["spec"]["clusterIP"]  # a PUT from a manifest keeps the allocated address
    assert store.update(service)["spec"]["clusterIP"] == allocated
