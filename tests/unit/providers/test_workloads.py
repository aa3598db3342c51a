"""Builders of the generated objects, the revision checksum, and ensure/release semantics."""

from __future__ import annotations

import copy
import json
from typing import Any

import pytest

from kubectl_canary.api.model import (
    MANAGED_BY_LABEL,
    ORIGINAL_SPEC_ANNOTATION,
    SHARED_POD_LABEL,
    Canary,
    CanarySpec,
    ObjectMetadata,
    ServiceSpec,
    TargetRef,
)
from kubectl_canary.objects.builders import (
    apex_service,
    canary_service,
    primary_config_copy,
    primary_deployment,
    promote_template,
    restored_target,
    services,
)
from kubectl_canary.objects.hashes import (
    config_hash,
    config_key,
    template_hash,
    tracked_config_refs,
)
from kubectl_canary.objects.metadata import APPLIED_HASH_ANNOTATION
from kubectl_canary.objects.primary import apply_promotion
from kubectl_canary.objects.selectors import primary_selector, selector_label
from kubectl_canary.objects.writer import OwnershipError, ensure, release
from kubectl_canary.resources import ConflictError
from tests.store_client import StoreClient

Obj = dict[str, Any]


def target(replicas: int | None = 3, selector: dict[str, str] | None = None) -> Obj:
    labels = selector or {"app": "podinfo"}
    spec: Obj = {
        "selector": {"matchLabels": dict(labels)},
        "strategy": {"type": "RollingUpdate"},
        "template": {
            "metadata": {"labels": {**labels, "version": "v1"}, "annotations": {"a": "1"}},
            "spec": {"containers": [{"name": "app", "image": "podinfo:1.1.1"}]},
        },
    }
    if replicas is not None:
        spec["replicas"] = replicas
    return {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {
            "name": "podinfo",
            "namespace": "test",
            "uid": "target-uid",
            "resourceVersion": "7",
            "labels": {"team": "web"},
            "annotations": {"deployment.kubernetes.io/revision": "3", "note": "x"},
        },
        "spec": spec,
        "status": {"readyReplicas": 3},
    }


def canary(provider: str = "istio", **service: Any) -> Canary:
    return Canary(
        namespace="test",
        name="podinfo",
        uid="canary-uid",
        spec=CanarySpec(
            target_ref=TargetRef("podinfo"),
            service=ServiceSpec(port=9898, **service),
            provider=provider,
        ),
    )


@pytest.mark.parametrize(
    ("selector", "expected"),
    [
        ({"app": "podinfo", "tier": "web"}, ("app", "podinfo")),
        ({"tier": "web", "app.kubernetes.io/name": "pi"}, ("app.kubernetes.io/name", "pi")),
        ({"tier": "web", "name": "x"}, ("tier", "web")),
    ],
)
def test_selector_label_preference(selector: dict[str, str], expected: tuple[str, str]) -> None:
    assert selector_label(target(selector=selector)) == expected


def test_a_target_without_match_labels_is_an_error() -> None:
    bad = target()
    bad["spec"]["selector"] = {"matchExpressions": []}
    with pytest.raises(ValueError, match="no spec.selector.matchLabels"):
        selector_label(bad)


def test_primary_deployment_is_a_relabelled_owned_copy() -> None:
    source = target()
    primary = primary_deployment(source, canary())

    meta = primary["metadata"]
    assert meta["name"] == "podinfo-primary" and meta["namespace"] == "test"
    assert meta["labels"] == {"team": "web", MANAGED_BY_LABEL: "podinfo"}
    assert meta["annotations"] == {"note": "x"}  # no revision bookkeeping copied
    assert "uid" not in meta and "resourceVersion" not in meta
    assert meta["ownerReferences"] == [
        {
            "apiVersion": "kubectl-canary.dev/v1alpha1",
            "kind": "Canary",
            "name": "podinfo",
            "uid": "canary-uid",
            "controller": True,
            "blockOwnerDeletion": True,
        }
    ]
    spec = primary["spec"]
    assert spec["selector"] == {"matchLabels": {"app": "podinfo-primary"}}
    assert spec["template"]["metadata"]["labels"] == {
        "app": "podinfo-primary",
        "version": "v1",
        SHARED_POD_LABEL: "podinfo",
    }
    assert spec["template"]["spec"] == source["spec"]["template"]["spec"]
    assert spec["replicas"] == 3
    assert "status" not in primary
    assert source == target()  # the input is not modified


@pytest.mark.parametrize(
    ("replicas", "override", "expected"), [(0, None, 1), (None, None, 1), (2, 5, 5)]
)
def test_primary_replicas(replicas: int | None, override: int | None, expected: int) -> None:
    assert primary_deployment(target(replicas), canary(), override)["spec"]["replicas"] == expected


def test_canary_without_uid_cannot_own_objects() -> None:
    with pytest.raises(ValueError, match="no uid"):
        primary_deployment(target(), Canary("test", "podinfo", canary().spec))


def test_promote_copies_template_and_optionally_replicas() -> None:
    primary = primary_deployment(target(), canary())
    primary["metadata"]["resourceVersion"] = "11"
    new_target = target(replicas=4)
    new_target["spec"]["template"]["spec"]["containers"][0]["image"] = "podinfo:1.1.2"
    new_target["spec"]["minReadySeconds"] = 5

    promoted = promote_template(primary, new_target, with_replicas=False)
    assert promoted["spec"]["template"]["spec"]["containers"][0]["image"] == "podinfo:1.1.2"
    assert promoted["spec"]["template"]["metadata"]["labels"]["app"] == "podinfo-primary"
    assert promoted["spec"]["selector"] == primary["spec"]["selector"]
    assert promoted["spec"]["minReadySeconds"] == 5
    assert promoted["spec"]["replicas"] == 3
    assert promoted["metadata"]["resourceVersion"] == "11"  # a guarded replace

    assert promote_template(primary, new_target, with_replicas=True)["spec"]["replicas"] == 4
    scaled_down = target(replicas=0)
    assert promote_template(primary, scaled_down, with_replicas=True)["spec"]["replicas"] == 3


def test_restored_target_is_the_inverse_of_promotion() -> None:
    good = target()
    primary = primary_deployment(good, canary())
    failed = target(replicas=0)
    failed["spec"]["template"]["spec"]["containers"][0]["image"] = "podinfo:1.1.3"

    restored = restored_target(failed, primary)
    assert restored["spec"]["template"] == good["spec"]["template"]
    assert template_hash(restored, {}) == template_hash(good, {})
    assert restored["spec"]["replicas"] == 0  # scaling is a separate action
    assert restored["metadata"]["resourceVersion"] == "7"  # a guarded replace
    assert SHARED_POD_LABEL not in restored["spec"]["template"]["metadata"]["labels"]

    # The kubernetes router put the shared label on the target: it stays.
    failed["spec"]["template"]["metadata"]["labels"][SHARED_POD_LABEL] = "podinfo"
    kept = restored_target(failed, primary)["spec"]["template"]["metadata"]["labels"]
    assert kept[SHARED_POD_LABEL] == "podinfo" and kept["app"] == "podinfo"


def test_services_select_the_right_pods_and_carry_metadata() -> None:
    c = canary(
        target_port="http",
        port_name="web",
        app_protocol="http",
        apex=ObjectMetadata(labels={"expose": "yes"}, annotations={"a": "b"}),
        canary=ObjectMetadata(labels={"tier": "canary"}),
    )
    apex, primary, canary_svc = services(target(), c)

    assert [s["metadata"]["name"] for s in (apex, primary, canary_svc)] == [
        "podinfo",
        "podinfo-primary",
        "podinfo-canary",
    ]
    assert apex["spec"]["selector"] == {"app": "podinfo-primary"}
    assert primary["spec"]["selector"] == {"app": "podinfo-primary"}
    assert canary_svc["spec"]["selector"] == {"app": "podinfo"}
    assert apex["spec"]["ports"] == [
        {
            "name": "web",
            "port": 9898,
            "targetPort": "http",
            "protocol": "TCP",
            "appProtocol": "http",
        }
    ]
    assert apex["metadata"]["labels"] == {"expose": "yes", MANAGED_BY_LABEL: "podinfo"}
    assert apex["metadata"]["annotations"] == {"a": "b"}
    assert canary_svc["metadata"]["labels"]["tier"] == "canary"
    assert "annotations" not in primary["metadata"]


def test_kubernetes_provider_leaves_the_apex_service_to_its_router() -> None:
    names = [s["metadata"]["name"] for s in services(target(), canary("kubernetes"))]
    assert names == ["podinfo-primary", "podinfo-canary"]


def test_service_name_override() -> None:
    c = canary(name="frontend")
    assert [s["metadata"]["name"] for s in services(target(), c)] == [
        "frontend",
        "frontend-primary",
        "frontend-canary",
    ]
    assert canary_service(target(), c)["spec"]["ports"][0]["targetPort"] == 9898


def test_tracked_config_refs() -> None:
    deployment = target()
    pod = deployment["spec"]["template"]["spec"]
    pod["containers"][0]["env"] = [
        {"name": "A", "valueFrom": {"configMapKeyRef": {"name": "cm-env", "key": "a"}}},
        {"name": "B", "valueFrom": {"secretKeyRef": {"name": "sec-env", "key": "b"}}},
        {"name": "C", "value": "plain"},
    ]
    pod["initContainers"] = [
        {
            "name": "init",
            "envFrom": [{"configMapRef": {"name": "cm-from"}}, {"secretRef": {"name": "sec-from"}}],
        }
    ]
    pod["volumes"] = [
        {"name": "v1", "configMap": {"name": "cm-vol"}},
        {"name": "v2", "secret": {"secretName": "sec-vol"}},
        {
            "name": "v3",
            "projected": {
                "sources": [{"configMap": {"name": "cm-env"}}, {"secret": {"name": "sec-proj"}}]
            },
        },
        {"name": "v4", "emptyDir": {}},
    ]

    assert tracked_config_refs(deployment) == [
        ("ConfigMap", "cm-env"),
        ("ConfigMap", "cm-from"),
        ("ConfigMap", "cm-vol"),
        ("Secret", "sec-env"),
        ("Secret", "sec-from"),
        ("Secret", "sec-proj"),
        ("Secret", "sec-vol"),
    ]


def test_template_hash_tracks_template_and_configs_only() -> None:
    base = target()
    h = template_hash(base, {})
    assert h == template_hash(copy.deepcopy(base), {})

    scaled = target(replicas=9)
    scaled["metadata"]["resourceVersion"] = "99"
    scaled["status"] = {"readyReplicas": 0}
    assert template_hash(scaled, {}) == h  # replicas, metadata, status: not a revision

    labelled = target()
    labelled["spec"]["template"]["metadata"]["labels"][SHARED_POD_LABEL] = "podinfo"
    assert template_hash(labelled, {}) == h  # the agent's own label: not a revision

    bumped = target()
    bumped["spec"]["template"]["spec"]["containers"][0]["image"] = "podinfo:1.1.2"
    assert template_hash(bumped, {}) != h

    annotated = target()
    annotated["spec"]["template"]["metadata"]["annotations"]["restartedAt"] = "now"
    assert template_hash(annotated, {}) != h

    configs = {config_key("ConfigMap", "cfg"): config_hash({"data": {"k": "v1"}})}
    changed = {config_key("ConfigMap", "cfg"): config_hash({"data": {"k": "v2"}})}
    assert template_hash(base, configs) != h
    assert template_hash(base, configs) != template_hash(base, changed)


# ----- ensure / release -----


def test_ensure_creates_then_writes_only_on_change() -> None:
    client = StoreClient(namespace="test")
    svc = apex_service(target(), canary())

    created = ensure(client, svc, detect_drift=True)
    assert created["metadata"]["annotations"][APPLIED_HASH_ANNOTATION]
    assert created["spec"]["clusterIP"]  # assigned by the server
    assert (
        ensure(client, svc, detect_drift=True)["metadata"]["resourceVersion"]
        == (created["metadata"]["resourceVersion"])
    )
    assert client.writes == [("create", "Service", "podinfo")]

    moved = apex_service(target(), canary(), {"app": "podinfo"})
    updated = ensure(client, moved, detect_drift=True)
    assert updated["spec"]["selector"] == {"app": "podinfo"}
    assert updated["spec"]["clusterIP"] == created["spec"]["clusterIP"]  # carried over
    assert len(client.writes) == 2


def test_ensure_repairs_drift_only_when_asked() -> None:
    client = StoreClient(namespace="test")
    svc = apex_service(target(), canary())
    live = ensure(client, svc)
    live["spec"]["selector"] = {"app": "hijacked"}
    client.replace(live)
    client.writes.clear()

    assert ensure(client, svc)["spec"]["selector"] == {"app": "hijacked"}
    assert client.writes == []
    assert ensure(client, svc, detect_drift=True)["spec"]["selector"] == {"app": "podinfo-primary"}


def test_ensure_keeps_create_only_fields() -> None:
    client = StoreClient(namespace="test")
    primary = primary_deployment(target(), canary())
    live = ensure(client, primary, create_only=("replicas",))
    live["spec"]["replicas"] = 7  # scaled by an HPA
    client.replace(live)

    again = primary_deployment(target(replicas=0), canary())
    writes = len(client.writes)
    assert ensure(client, again, create_only=("replicas",))["spec"]["replicas"] == 7
    assert len(client.writes) == writes  # replicas are not what we manage

    changed = primary_deployment(target(), canary())
    changed["spec"]["template"]["spec"]["containers"][0]["image"] = "podinfo:2"
    result = ensure(client, changed, create_only=("replicas",))
    assert result["spec"]["replicas"] == 7
    assert result["spec"]["template"]["spec"]["containers"][0]["image"] == "podinfo:2"


def test_ensure_retries_from_a_fresh_read_on_conflict() -> None:
    client = StoreClient(namespace="test")
    ensure(client, apex_service(target(), canary()))
    client.fail("update", None, ConflictError("the object has been modified", 409), times=3)

    result = ensure(client, apex_service(target(), canary(), {"app": "podinfo"}))

    assert result["spec"]["selector"] == {"app": "podinfo"}


def test_ensure_gives_up_after_repeated_conflicts() -> None:
    client = StoreClient(namespace="test")
    ensure(client, apex_service(target(), canary()))
    client.fail("update", None, ConflictError("the object has been modified", 409), times=50)

    with pytest.raises(Exception, match="kept conflicting"):
        ensure(client, apex_service(target(), canary(), {"app": "podinfo"}))


class BehindCache:
    """A cache in front of `live` that hands out the copies it was given: `get` is the cache,
    `get_live` and every write go to the API server (the agent's CachedClient contract)."""

    def __init__(self, live: StoreClient) -> None:
        self.live, self.copies, self.live_reads = live, {}, 0

    def remember(self, obj: Obj) -> None:
        self.copies[obj["metadata"]["name"]] = copy.deepcopy(obj)

    def get(self, api_version: str, kind: str, namespace: str, name: str) -> Obj | None:
        return copy.deepcopy(self.copies.get(name))

    def get_live(self, api_version: str, kind: str, namespace: str, name: str) -> Obj | None:
        self.live_reads += 1
        return self.live.get(api_version, kind, namespace, name)

    def __getattr__(self, attr: str) -> Any:
        return getattr(self.live, attr)


def test_ensure_updates_its_own_object_from_the_cache_without_a_read() -> None:
    server = StoreClient(namespace="test")
    cache = BehindCache(server)
    cache.remember(ensure(server, apex_service(target(), canary())))

    moved = ensure(cache, apex_service(target(), canary(), {"app": "podinfo"}))

    assert moved["spec"]["selector"] == {"app": "podinfo"}
    assert cache.live_reads == 0  # the cached resourceVersion guards the replace


def test_ensure_from_a_stale_cache_is_refused_then_read_live() -> None:
    server = StoreClient(namespace="test")
    cache = BehindCache(server)
    first = ensure(server, apex_service(target(), canary()))
    cache.remember(first)
    someone = copy.deepcopy(first)
    someone["metadata"].setdefault("annotations", {})["note"] = "kept"
    server.replace(someone)  # the cache has not seen this yet

    moved = ensure(cache, apex_service(target(), canary(), {"app": "podinfo"}))

    assert moved["spec"]["selector"] == {"app": "podinfo"}
    assert moved["metadata"]["annotations"]["note"] == "kept"  # written over the live copy
    assert cache.live_reads == 1


def test_ensure_recreates_what_the_cache_still_holds_but_was_deleted() -> None:
    server = StoreClient(namespace="test")
    cache = BehindCache(server)
    cache.remember(ensure(server, apex_service(target(), canary())))
    server.delete("v1", "Service", "test", "podinfo")

    again = ensure(cache, apex_service(target(), canary(), {"app": "podinfo"}))

    assert again["spec"]["selector"] == {"app": "podinfo"}
    assert server.get("v1", "Service", "test", "podinfo") is not None


def user_service() -> Obj:
    return {
        "apiVersion": "v1",
        "kind": "Service",
        "metadata": {"name": "podinfo", "namespace": "test", "labels": {"owner": "me"}},
        "spec": {"selector": {"app": "podinfo"}, "ports": [{"port": 80, "targetPort": 9898}]},
    }


def test_takeover_saves_the_original_and_release_restores_it() -> None:
    client = StoreClient(namespace="test")
    before = client.add(user_service())

    taken = ensure(client, apex_service(target(), canary()), detect_drift=True, adopt=True)
    assert json.loads(taken["metadata"]["annotations"][ORIGINAL_SPEC_ANNOTATION]) == before["spec"]
    assert "ownerReferences" not in taken["metadata"]  # never garbage-collect a user's object
    assert taken["spec"]["selector"] == {"app": "podinfo-primary"}
    assert taken["metadata"]["labels"] == {"owner": "me", MANAGED_BY_LABEL: "podinfo"}

    release(client, "v1", "Service", "test", "podinfo", canary())

    after = client.get("v1", "Service", "test", "podinfo")
    assert after is not None
    assert after["spec"] == before["spec"]
    assert after["metadata"]["labels"] == {"owner": "me"}
    assert after["metadata"]["annotations"] == {}


def test_release_deletes_ours_and_leaves_others_alone() -> None:
    client = StoreClient(namespace="test")
    ensure(client, apex_service(target(), canary()))
    client.add({**user_service(), "metadata": {"name": "other", "namespace": "test"}})

    release(client, "v1", "Service", "test", "podinfo", canary())
    release(client, "v1", "Service", "test", "other", canary())
    release(client, "v1", "Service", "test", "missing", canary())

    assert client.get("v1", "Service", "test", "podinfo") is None
    assert client.get("v1", "Service", "test", "other") is not None


def test_an_object_of_another_canary_is_refused() -> None:
    client = StoreClient(namespace="test")
    other = user_service()
    other["metadata"]["labels"][MANAGED_BY_LABEL] = "other-canary"
    client.add(other)

    with pytest.raises(OwnershipError, match="managed by Canary other-canary"):
        ensure(client, apex_service(target(), canary()))


def test_an_object_nobody_manages_is_taken_over_only_when_asked() -> None:
    """The apex Service (what users call) may be a user's to take over; a `-primary` object in
    the way is refused, never silently rewritten."""
    client = StoreClient(namespace="test")
    theirs = user_service()
    theirs["metadata"]["name"] = "podinfo-primary"
    before = client.add(theirs)
    with pytest.raises(OwnershipError, match="not managed by kubectl-canary; it is not taken"):
        ensure(client, services(target(), canary())[1], detect_drift=True)
    assert client.get("v1", "Service", "test", "podinfo-primary") == before


def test_a_users_hpa_named_like_the_primarys_is_refused() -> None:
    from kubectl_canary.objects.builders import HPA_API
    from kubectl_canary.objects.primary import ensure_primary_hpa

    client = StoreClient(namespace="test")
    hpa = {
        "apiVersion": HPA_API,
        "kind": "HorizontalPodAutoscaler",
        "metadata": {"name": "podinfo", "namespace": "test"},
        "spec": {
            "scaleTargetRef": {"apiVersion": "apps/v1", "kind": "Deployment", "name": "podinfo"},
            "minReplicas": 2,
            "maxReplicas": 4,
        },
    }
    client.add(hpa)
    theirs = copy.deepcopy(hpa)
    theirs["metadata"]["name"] = "podinfo-primary"
    theirs["spec"]["scaleTargetRef"]["name"] = "their-app"
    client.add(theirs)
    with_hpa = canary()
    with_hpa = Canary(
        namespace=with_hpa.namespace,
        name=with_hpa.name,
        uid=with_hpa.uid,
        spec=CanarySpec(
            target_ref=with_hpa.spec.target_ref,
            service=with_hpa.spec.service,
            autoscaler_ref=TargetRef(
                "podinfo", kind="HorizontalPodAutoscaler", api_version=HPA_API
            ),
        ),
    )
    with pytest.raises(OwnershipError, match="HorizontalPodAutoscaler test/podinfo-primary"):
        ensure_primary_hpa(client, with_hpa)
    left = client.get(HPA_API, "HorizontalPodAutoscaler", "test", "podinfo-primary")
    assert left is not None and left["spec"]["scaleTargetRef"]["name"] == "their-app"


def test_primary_selector_is_derived_from_the_target() -> None:
    assert primary_selector(target(selector={"name": "x"})) == {"name": "x-primary"}


def test_apply_promotion_copies_the_target_and_survives_conflicts() -> None:
    client = StoreClient(namespace="test")
    live_target = client.add(target(replicas=4))
    ensure(client, primary_deployment(live_target, canary()), create_only=("replicas",))
    live_target["spec"]["template"]["spec"]["containers"][0]["image"] = "podinfo:1.1.2"
    client.replace(live_target)
    client.fail("update", None, ConflictError("the object has been modified", 409), times=2)

    promoted = apply_promotion(client, canary(), with_replicas=True)

    assert promoted["spec"]["template"]["spec"]["containers"][0]["image"] == "podinfo:1.1.2"
    assert promoted["spec"]["replicas"] == 4
    writes = len(client.writes)
    apply_promotion(client, canary(), with_replicas=True)
    assert len(client.writes) == writes  # already promoted: nothing to write


GITOPS_LABELS = {
    "app.kubernetes.io/instance": "shop",  # Argo CD's default tracking label
    "app.kubernetes.io/managed-by": "Helm",
    "kustomize.toolkit.fluxcd.io/name": "apps",
    "kustomize.toolkit.fluxcd.io/namespace": "flux-system",
    "helm.toolkit.fluxcd.io/name": "shop",
}
GITOPS_ANNOTATIONS = {
    "argocd.argoproj.io/tracking-id": "shop:apps/Deployment:test/podinfo",
    "argocd.argoproj.io/sync-wave": "2",
    "meta.helm.sh/release-name": "shop",
    "meta.helm.sh/release-namespace": "test",
}


def gitops_target() -> Obj:
    t = target()
    t["metadata"]["labels"].update(GITOPS_LABELS)
    t["metadata"]["annotations"].update(GITOPS_ANNOTATIONS)
    return t


def test_gitops_tracking_metadata_is_not_copied_to_the_primary() -> None:
    """Copied, Argo CD/Flux would prune the primary as theirs and Helm would adopt it."""
    primary = primary_deployment(gitops_target(), canary(), no_copy=("team",))
    meta = primary["metadata"]
    assert meta["labels"] == {MANAGED_BY_LABEL: "podinfo"}, "team is dropped by the flag"
    assert meta["annotations"] == {"note": "x"}
    # Pods are not tracked by these tools: the template's labels stay as they were.
    assert primary["spec"]["template"]["metadata"]["labels"]["version"] == "v1"
    with_team = primary_deployment(gitops_target(), canary())
    assert with_team["metadata"]["labels"] == {"team": "web", MANAGED_BY_LABEL: "podinfo"}


def test_gitops_tracking_labels_are_not_copied_to_config_copies() -> None:
    config = {
        "apiVersion": "v1",
        "kind": "ConfigMap",
        "metadata": {
            "name": "settings",
            "namespace": "test",
            "labels": {"a": "b", **GITOPS_LABELS},
        },
        "data": {"k": "v"},
    }
    copy_ = primary_config_copy(config, canary(), no_copy=("example.com/",))
    assert copy_["metadata"]["labels"] == {"a": "b", MANAGED_BY_LABEL: "podinfo"}
    config["metadata"]["labels"]["example.com/team"] = "x"
    copy_ = primary_config_copy(config, canary(), no_copy=("example.com/",))
    assert "example.com/team" not in copy_["metadata"]["labels"]


def test_an_update_drops_tracking_keys_from_our_objects_but_not_from_a_users() -> None:
    """A primary an older agent made with Argo CD's label loses it on the next write; a
    taken-over Service (the user's, in Git) keeps its own."""
    client = StoreClient(namespace="test")
    stale = primary_deployment(target(), canary())
    stale["metadata"]["labels"].update(GITOPS_LABELS)
    stale["metadata"]["annotations"] = dict(GITOPS_ANNOTATIONS)
    client.add(stale)
    moved = primary_deployment(target(replicas=5), canary())
    moved["spec"]["template"]["spec"]["containers"][0]["image"] = "podinfo:1.1.2"
    written = ensure(client, moved)
    assert written["metadata"]["labels"] == {"team": "web", MANAGED_BY_LABEL: "podinfo"}
    assert set(written["metadata"]["annotations"]) == {APPLIED_HASH_ANNOTATION, "note"}

    user = user_service()
    user["metadata"]["labels"].update(GITOPS_LABELS)
    client.add(user)
    taken = ensure(client, apex_service(target(), canary()), detect_drift=True, adopt=True)
    assert GITOPS_LABELS.items() <= taken["metadata"]["labels"].items()
