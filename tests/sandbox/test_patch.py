"""The three patch formats, on the cases kubectl and controllers actually send."""

from __future__ import annotations

import pytest

from kubectl_canary.sandbox.patch import (
    PatchError,
    PatchTestFailed,
    json_patch,
    merge_patch,
    strategic_merge,
)

POD_SPEC = {
    "containers": [
        {
            "name": "app",
            "image": "app:1",
            "env": [{"name": "A", "value": "1"}, {"name": "B", "value": "2"}],
            "ports": [{"containerPort": 80, "name": "http"}],
        },
        {"name": "sidecar", "image": "proxy:1"},
    ],
    "volumes": [{"name": "data", "emptyDir": {}}],
}


def test_merge_patch_sets_and_removes_and_replaces_lists() -> None:
    target = {"a": {"b": 1, "c": 2}, "l": [1, 2]}
    assert merge_patch(target, {"a": {"b": None, "d": 3}, "l": [3]}) == {
        "a": {"c": 2, "d": 3},
        "l": [3],
    }


def test_json_patch_operations_and_test() -> None:
    doc = {"spec": {"replicas": 1, "items": ["a", "b"]}}
    ops = [
        {"op": "test", "path": "/spec/replicas", "value": 1},
        {"op": "replace", "path": "/spec/replicas", "value": 2},
        {"op": "add", "path": "/spec/items/-", "value": "c"},
        {"op": "remove", "path": "/spec/items/0"},
        {"op": "copy", "from": "/spec/replicas", "path": "/spec/copied"},
        {"op": "move", "from": "/spec/copied", "path": "/spec/moved"},
        {"op": "add", "path": "/metadata~1x", "value": {"a~b": 1}},
    ]
    assert json_patch(doc, ops) == {
        "spec": {"replicas": 2, "items": ["b", "c"], "moved": 2},
        "metadata/x": {"a~b": 1},
    }
    assert doc["spec"]["replicas"] == 1  # the input is not modified
    with pytest.raises(PatchTestFailed):
        json_patch(doc, [{"op": "test", "path": "/spec/replicas", "value": 5}])
    with pytest.raises(PatchError):
        json_patch(doc, [{"op": "remove", "path": "/spec/missing"}])


def test_strategic_merge_merges_lists_by_key() -> None:
    patch = {
        "containers": [
            {"name": "app", "image": "app:2", "env": [{"name": "B", "value": "3"}]},
            {"name": "new", "image": "new:1"},
        ]
    }
    result = strategic_merge(POD_SPEC, patch)
    app = result["containers"][0]
    assert app["image"] == "app:2"
    assert app["env"] == [{"name": "A", "value": "1"}, {"name": "B", "value": "3"}]
    assert app["ports"] == [{"containerPort": 80, "name": "http"}]
    assert [c["name"] for c in result["containers"]] == ["app", "sidecar", "new"]
    assert POD_SPEC["containers"][0]["image"] == "app:1"


def test_strategic_merge_directives() -> None:
    deleted = strategic_merge(POD_SPEC, {"containers": [{"name": "sidecar", "$patch": "delete"}]})
    assert [c["name"] for c in deleted["containers"]] == ["app"]
    replaced = strategic_merge(
        POD_SPEC, {"volumes": [{"$patch": "replace"}, {"name": "only", "emptyDir": {}}]}
    )
    assert replaced["volumes"] == [{"name": "only", "emptyDir": {}}]
    replaced_map = strategic_merge({"m": {"a": 1, "b": 2}}, {"m": {"$patch": "replace", "c": 3}})
    assert replaced_map == {"m": {"c": 3}}
    assert strategic_merge({"m": {"a": 1}, "k": 1}, {"m": {"$patch": "delete"}}) == {"k": 1}
    primitives = strategic_merge(
        {"metadata": {"finalizers": ["a", "b"]}},
        {"metadata": {"$deleteFromPrimitiveList/finalizers": ["a"]}},
    )
    assert primitives == {"metadata": {"finalizers": ["b"]}}
    ordered = strategic_merge(
        POD_SPEC,
        {"$setElementOrder/containers": [{"name": "sidecar"}, {"name": "app"}]},
    )
    assert [c["name"] for c in ordered["containers"]] == ["sidecar", "app"]


def test_strategic_merge_service_ports_keyed_by_port() -> None:
    service = {"ports": [{"port": 80, "targetPort": 8080}, {"port": 443}]}
    result = strategic_merge(service, {"ports": [{"port": 80, "targetPort": 9090}]})
    assert result["ports"] == [{"port": 80, "targetPort": 9090}, {"port": 443}]
