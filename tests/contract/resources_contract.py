"""The contract of the shared resource protocol (kubectl_canary/resources.py), written once.

Each check takes a client and a namespace of its own. tests/contract/test_resources.py runs
every check over both adapters (the agent's over `kubernetes`, the plugin's over kr8s) against
the sandbox; tests/realcluster/test_resources.py runs the same checks against a real API
server. Both clients list in pages of `PAGE_SIZE`, so a list of more objects proves that
`continue` is followed.
"""

from __future__ import annotations

from collections.abc import Callable

import pytest

from kubectl_canary.resources import (
    AlreadyExistsError,
    ApiError,
    ConflictError,
    GoneError,
    NotFoundError,
    Obj,
    ResourceClient,
)

PAGE_SIZE = 2
CM = ("v1", "ConfigMap")
WATCH_SECONDS = 10

Check = Callable[[ResourceClient, str], None]


def config_map(namespace: str, name: str, labels: dict[str, str] | None = None) -> Obj:
    return {
        "apiVersion": "v1",
        "kind": "ConfigMap",
        "metadata": {"name": name, "namespace": namespace, "labels": labels or {}},
        "data": {"k": "v"},
    }


def check_get_missing_is_none(c: ResourceClient, ns: str) -> None:
    assert c.get(*CM, ns, "nope") is None
    assert c.get_live(*CM, ns, "nope") is None


def check_get_returns_the_object(c: ResourceClient, ns: str) -> None:
    created = c.create(config_map(ns, "one"))
    got = c.get(*CM, ns, "one")
    assert got is not None
    assert (got["apiVersion"], got["kind"]) == CM
    assert got["metadata"]["uid"] == created["metadata"]["uid"]
    assert got["data"] == {"k": "v"}
    namespace = c.get("v1", "Namespace", "", ns)  # cluster-scoped: namespace ""
    assert namespace is not None and namespace["metadata"]["name"] == ns


def check_list_follows_pages_and_selects_by_label(c: ResourceClient, ns: str) -> None:
    for i in range(5):
        c.create(config_map(ns, f"app-{i}", {"app": "web", "slot": str(i % 2)}))
    c.create(config_map(ns, "other", {"app": "db"}))
    items, rv = c.list(*CM, ns, label_selector="app=web")
    assert sorted(i["metadata"]["name"] for i in items) == [f"app-{i}" for i in range(5)]
    assert all((i["apiVersion"], i["kind"]) == CM for i in items)
    assert rv.isdigit()
    odd, _ = c.list(*CM, ns, label_selector="app=web,slot=1")
    assert sorted(i["metadata"]["name"] for i in odd) == ["app-1", "app-3"]
    everywhere, _ = c.list(*CM, None, label_selector="app=db")
    found = {(i["metadata"]["namespace"], i["metadata"]["name"]) for i in everywhere}
    assert (ns, "other") in found


def check_list_of_a_type_not_served(c: ResourceClient, ns: str) -> None:
    with pytest.raises(NotFoundError):
        c.list("contract.example.com/v1", "Widget", ns)


def check_watch_from_the_list_version(c: ResourceClient, ns: str) -> None:
    c.create(config_map(ns, "before"))
    _, rv = c.list(*CM, ns)
    c.create(config_map(ns, "after"))
    seen = []
    for etype, obj in c.watch(*CM, ns, rv, WATCH_SECONDS):
        if etype == "BOOKMARK":
            continue
        seen.append((etype, obj["metadata"]["name"]))
        break
    assert seen == [("ADDED", "after")]


def check_watch_from_a_version_too_old_is_gone(c: ResourceClient, ns: str) -> None:
    # Enough changes that resourceVersion 1 has left any watch history (the sandbox keeps 100
    # events per kind; a real API server's watch cache starts where the server started).
    c.create(config_map(ns, "churn"))
    for i in range(120):
        c.patch_merge(*CM, ns, "churn", {"data": {"i": str(i)}})
    with pytest.raises(GoneError):
        for _ in c.watch(*CM, ns, "1", WATCH_SECONDS):
            pass


def check_create_of_a_taken_name(c: ResourceClient, ns: str) -> None:
    c.create(config_map(ns, "taken"))
    with pytest.raises(AlreadyExistsError):
        c.create(config_map(ns, "taken"))


def check_replace_is_guarded_by_resource_version(c: ResourceClient, ns: str) -> None:
    first = c.create(config_map(ns, "guarded"))
    first["data"] = {"k": "mine"}
    second = c.replace(first)
    assert second["data"] == {"k": "mine"}
    assert second["metadata"]["resourceVersion"] != first["metadata"]["resourceVersion"]
    first["data"] = {"k": "stale"}
    with pytest.raises(ConflictError) as e:
        c.replace(first)  # carries the old resourceVersion
    assert not isinstance(e.value, AlreadyExistsError)
    assert (c.get(*CM, ns, "guarded") or {})["data"] == {"k": "mine"}


def check_json_patch_guarded_by_a_test_op(c: ResourceClient, ns: str) -> None:
    obj = c.create(config_map(ns, "patched"))
    rv = obj["metadata"]["resourceVersion"]
    c.patch_merge(*CM, ns, "patched", {"data": {"k": "moved"}})
    stale = [
        {"op": "test", "path": "/metadata/resourceVersion", "value": rv},
        {"op": "replace", "path": "/data/k", "value": "lost"},
    ]
    with pytest.raises(ApiError) as e:
        c.patch_json(*CM, ns, "patched", stale)
    assert e.value.status in (409, 422), e.value
    current = c.get(*CM, ns, "patched") or {}
    assert current["data"] == {"k": "moved"}
    fresh = [{**stale[0], "value": current["metadata"]["resourceVersion"]}, stale[1]]
    assert c.patch_json(*CM, ns, "patched", fresh)["data"] == {"k": "lost"}


def check_merge_patch(c: ResourceClient, ns: str) -> None:
    c.create({**config_map(ns, "merged"), "data": {"keep": "1", "drop": "2"}})
    patched = c.patch_merge(*CM, ns, "merged", {"data": {"drop": None, "new": "3"}})
    assert patched["data"] == {"keep": "1", "new": "3"}


def check_delete_precondition_and_idempotence(c: ResourceClient, ns: str) -> None:
    obj = c.create(config_map(ns, "doomed"))
    c.patch_merge(*CM, ns, "doomed", {"data": {"k": "changed"}})
    with pytest.raises(ConflictError):
        c.delete(*CM, ns, "doomed", resource_version=obj["metadata"]["resourceVersion"])
    assert c.get(*CM, ns, "doomed") is not None
    current = (c.get(*CM, ns, "doomed") or {})["metadata"]["resourceVersion"]
    assert c.delete(*CM, ns, "doomed", resource_version=current) is True
    assert c.get(*CM, ns, "doomed") is None
    assert c.delete(*CM, ns, "doomed") is False


CHECKS: list[Check] = [
    check_get_missing_is_none,
    check_get_returns_the_object,
    check_list_follows_pages_and_selects_by_label,
    check_list_of_a_type_not_served,
    check_watch_from_the_list_version,
    check_watch_from_a_version_too_old_is_gone,
    check_create_of_a_taken_name,
    check_replace_is_guarded_by_resource_version,
    check_json_patch_guarded_by_a_test_op,
    check_merge_patch,
    check_delete_precondition_and_idempotence,
]


def clients(kubeconfig: str) -> dict[str, ResourceClient]:
    """Both adapters over one kubeconfig, listing in pages of PAGE_SIZE."""
    from agent.kube import KubeClient
    from kubectl_canary.kube import connect

    agent = KubeClient.from_kubeconfig(kubeconfig)
    agent.page_size = PAGE_SIZE
    plugin = connect(kubeconfig)
    plugin.page_size = PAGE_SIZE
    return {"agent": agent, "plugin": plugin}
