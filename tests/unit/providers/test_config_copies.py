"""The primary's `-primary` ConfigMap/Secret copies: the copy, the reference rewrite and its
inverse, and that initialisation and promotion write the copies before the primary."""

from __future__ import annotations

import copy
from typing import Any

import pytest

from agent.wiring import ProviderToolkit
from kubectl_canary.api.config_refs import (
    from_primary_copies,
    referenced_configs,
    to_primary_copies,
)
from kubectl_canary.api.model import MANAGED_BY_LABEL, Canary, CanarySpec, ServiceSpec, TargetRef
from kubectl_canary.objects.builders import primary_config_copy, primary_deployment, restored_target
from kubectl_canary.objects.hashes import template_hash, tracked_config_refs
from kubectl_canary.objects.writer import OwnershipError
from tests.store_client import StoreClient

Obj = dict[str, Any]
NS = "test"


def canary() -> Canary:
    return Canary(
        namespace=NS,
        name="podinfo",
        uid="canary-uid",
        spec=CanarySpec(target_ref=TargetRef("podinfo"), service=ServiceSpec(port=9898)),
    )


def pod_template() -> Obj:
    """Every place a pod spec can name a ConfigMap or Secret."""
    return {
        "metadata": {"labels": {"app": "podinfo"}},
        "spec": {
            "initContainers": [
                {"name": "init", "envFrom": [{"secretRef": {"name": "init-secret"}}]}
            ],
            "containers": [
                {
                    "name": "app",
                    "image": "podinfo:1",
                    "env": [
                        {"name": "PLAIN", "value": "x"},
                        {
                            "name": "A",
                            "valueFrom": {"configMapKeyRef": {"name": "env-cm", "key": "a"}},
                        },
                        {"name": "B", "valueFrom": {"secretKeyRef": {"name": "env-s", "key": "b"}}},
                        {"name": "POD", "valueFrom": {"fieldRef": {"fieldPath": "metadata.name"}}},
                    ],
                    "envFrom": [{"configMapRef": {"name": "from-cm", "optional": True}}],
                }
            ],
            "volumes": [
                {"name": "v1", "configMap": {"name": "vol-cm"}},
                {"name": "v2", "secret": {"secretName": "vol-s"}},
                {"name": "v3", "emptyDir": {}},
                {
                    "name": "v4",
                    "projected": {
                        "sources": [
                            {"configMap": {"name": "proj-cm"}},
                            {"secret": {"name": "proj-s"}},
                            {"downwardAPI": {"items": []}},
                        ]
                    },
                },
            ],
        },
    }


ALL_REFS = [
    ("ConfigMap", "env-cm"),
    ("ConfigMap", "from-cm"),
    ("ConfigMap", "proj-cm"),
    ("ConfigMap", "vol-cm"),
    ("Secret", "env-s"),
    ("Secret", "init-secret"),
    ("Secret", "proj-s"),
    ("Secret", "vol-s"),
]


def deployment(template: Obj) -> Obj:
    return {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {"name": "podinfo", "namespace": NS, "resourceVersion": "1"},
        "spec": {
            "replicas": 2,
            "selector": {"matchLabels": {"app": "podinfo"}},
            "template": template,
        },
    }


def config(kind: str, name: str, data: dict[str, str]) -> Obj:
    obj: Obj = {
        "apiVersion": "v1",
        "kind": kind,
        "metadata": {"name": name, "namespace": NS, "labels": {"team": "web"}},
        "data": dict(data),
    }
    if kind == "Secret":
        obj["type"] = "Opaque"
    return obj


def test_the_rewrite_renames_every_reference_and_the_inverse_undoes_it() -> None:
    template = pod_template()
    rewritten = to_primary_copies(template)

    assert referenced_configs(template) == ALL_REFS
    assert referenced_configs(rewritten) == [(k, n + "-primary") for k, n in ALL_REFS]
    assert template == pod_template()  # the input is not modified
    # Only the names changed: keys, optional flags and unrelated entries are as they were.
    container = rewritten["spec"]["containers"][0]
    assert container["envFrom"] == [{"configMapRef": {"name": "from-cm-primary", "optional": True}}]
    assert container["env"][1]["valueFrom"]["configMapKeyRef"] == {
        "name": "env-cm-primary",
        "key": "a",
    }
    assert container["env"][3] == pod_template()["spec"]["containers"][0]["env"][3]
    assert rewritten["spec"]["volumes"][1]["secret"] == {"secretName": "vol-s-primary"}

    assert from_primary_copies(rewritten) == template
    # A template that never referenced copies is left alone by the inverse.
    assert from_primary_copies(template) == template


def test_tracked_config_refs_walks_the_same_references() -> None:
    assert tracked_config_refs(deployment(pod_template())) == ALL_REFS


def test_config_copy_is_an_owned_copy_of_the_data() -> None:
    source = config("Secret", "vol-s", {"k": "dmFsdWU="})
    source["binaryData"] = {"b": "AAE="}
    source["immutable"] = True
    source["metadata"]["annotations"] = {"kubectl.kubernetes.io/last-applied-configuration": "{}"}
    source["metadata"]["resourceVersion"] = "12"

    copied = primary_config_copy(source, canary())

    assert copied["kind"] == "Secret" and copied["type"] == "Opaque"
    assert copied["data"] == source["data"] and copied["binaryData"] == source["binaryData"]
    assert copied["immutable"] is True
    meta = copied["metadata"]
    assert meta["name"] == "vol-s-primary" and meta["namespace"] == NS
    assert meta["labels"] == {"team": "web", MANAGED_BY_LABEL: "podinfo"}
    assert [r["uid"] for r in meta["ownerReferences"]] == ["canary-uid"]
    assert "annotations" not in meta and "resourceVersion" not in meta


def test_primary_references_the_copies_and_restore_maps_back() -> None:
    target = deployment(pod_template())
    primary = primary_deployment(target, canary())
    assert referenced_configs(primary["spec"]["template"]) == [
        (k, n + "-primary") for k, n in ALL_REFS
    ]
    # The target's revision checksum does not see the rewrite: it hashes the target.
    assert template_hash(target, {}) == template_hash(deployment(pod_template()), {})

    changed = copy.deepcopy(target)
    changed["spec"]["template"]["spec"]["containers"][0]["image"] = "podinfo:2"
    restored = restored_target(changed, primary)
    assert restored["spec"]["template"] == target["spec"]["template"]


def seeded(data: str) -> tuple[StoreClient, Obj]:
    client = StoreClient(namespace="test")
    template = pod_template()
    template["spec"] = {
        "containers": [
            {"name": "app", "image": "podinfo:1", "envFrom": [{"configMapRef": {"name": "cfg"}}]}
        ],
        "volumes": [{"name": "s", "secret": {"secretName": "creds"}}],
    }
    target = client.add(deployment(template))
    client.add(config("ConfigMap", "cfg", {"GREETING": data}))
    client.add(config("Secret", "creds", {"token": "dG9r"}))
    return client, target


def kit() -> ProviderToolkit:
    return ProviderToolkit(secrets=lambda _ns, _name: None)


def test_initialize_writes_the_copies_before_the_primary() -> None:
    client, target = seeded("hello")

    kit().initialize(canary(), client, target, True)

    creates = [(kind, name) for verb, kind, name in client.writes if verb == "create"]
    assert creates[:3] == [
        ("ConfigMap", "cfg-primary"),
        ("Secret", "creds-primary"),
        ("Deployment", "podinfo-primary"),
    ]
    copied = client.get("v1", "ConfigMap", NS, "cfg-primary")
    assert copied is not None and copied["data"] == {"GREETING": "hello"}
    primary = client.get("apps/v1", "Deployment", NS, "podinfo-primary")
    assert primary is not None
    assert referenced_configs(primary["spec"]["template"]) == [
        ("ConfigMap", "cfg-primary"),
        ("Secret", "creds-primary"),
    ]


def test_initialize_again_keeps_the_copied_data_promotion_updates_it() -> None:
    client, target = seeded("hello")
    kit().initialize(canary(), client, target, True)
    live = client.get("v1", "ConfigMap", NS, "cfg")
    assert live is not None
    client.replace({**live, "data": {"GREETING": "bonjour"}})

    # Initialise runs again on a spec change mid-release: the new data must not reach the
    # primary's pods without analysis.
    kit().initialize(canary(), client, target, True)
    copied = client.get("v1", "ConfigMap", NS, "cfg-primary")
    assert copied is not None and copied["data"] == {"GREETING": "hello"}

    client.writes.clear()
    kit().promote(canary(), client, target, with_replicas=True)
    copied = client.get("v1", "ConfigMap", NS, "cfg-primary")
    assert copied is not None and copied["data"] == {"GREETING": "bonjour"}
    replaced = [(kind, name) for verb, kind, name in client.writes if verb == "update"]
    assert replaced == [("ConfigMap", "cfg-primary")]  # the template itself did not change

    # A second promotion of the same data writes nothing.
    client.writes.clear()
    kit().promote(canary(), client, target, with_replicas=True)
    assert client.writes == []


def test_promotion_writes_the_copies_before_the_new_template() -> None:
    client, target = seeded("hello")
    kit().initialize(canary(), client, target, True)
    target = client.get("apps/v1", "Deployment", NS, "podinfo") or {}
    container = target["spec"]["template"]["spec"]["containers"][0]
    container["envFrom"].append({"configMapRef": {"name": "extra"}})
    target = client.replace(target)
    client.add(config("ConfigMap", "extra", {"X": "1"}))
    client.writes.clear()

    kit().promote(canary(), client, target, with_replicas=True)

    assert client.writes == [
        ("create", "ConfigMap", "extra-primary"),
        ("update", "Deployment", "podinfo-primary"),
    ]


def test_promotion_deletes_our_copy_of_a_config_that_is_gone() -> None:
    client, target = seeded("hello")
    kit().initialize(canary(), client, target, True)
    client.delete("v1", "ConfigMap", NS, "cfg")

    kit().promote(canary(), client, target, with_replicas=True)

    assert client.get("v1", "ConfigMap", NS, "cfg-primary") is None
    assert client.get("v1", "Secret", NS, "creds-primary") is not None


def test_a_config_named_like_a_copy_that_is_not_ours_is_never_overwritten() -> None:
    client, target = seeded("hello")
    client.add(config("ConfigMap", "cfg-primary", {"mine": "yes"}))

    with pytest.raises(OwnershipError, match="cfg-primary"):
        kit().initialize(canary(), client, target, True)
    kept = client.get("v1", "ConfigMap", NS, "cfg-primary")
    assert kept is not None and kept["data"] == {"mine": "yes"}
    assert client.get("apps/v1", "Deployment", NS, "podinfo-primary") is None
