"""The sandbox over HTTP, through the official kubernetes client, kr8s and raw requests."""

from __future__ import annotations

import json
import urllib.error
import urllib.request
import uuid
from collections.abc import Iterator
from typing import Any

import kr8s
import pytest
from kubernetes import client, config, watch
from kubernetes.client.rest import ApiException

from kubectl_canary.sandbox.process import SandboxHandle

from .conftest import WATCH_WINDOW


@pytest.fixture
def api(sandbox: SandboxHandle) -> Iterator[client.ApiClient]:
    api_client = config.new_client_from_config(config_file=str(sandbox.kubeconfig))
    try:
        yield api_client
    finally:
        api_client.close()


@pytest.fixture
def namespace(api: client.ApiClient) -> Iterator[str]:
    name = f"t-{uuid.uuid4().hex[:8]}"
    core = client.CoreV1Api(api)
    core.create_namespace({"metadata": {"name": name}})
    try:
        yield name
    finally:
        core.delete_namespace(name)


def request(
    sandbox: SandboxHandle,
    method: str,
    path: str,
    body: Any = None,
    content_type: str = "application/json",
    accept: str = "application/json",
) -> tuple[int, Any]:
    data = None if body is None else json.dumps(body).encode()
    req = urllib.request.Request(
        sandbox.url + path,
        data=data,
        method=method,
        headers={"Content-Type": content_type, "Accept": accept},
    )
    try:
        with urllib.request.urlopen(req, timeout=10) as resp:
            return resp.status, json.loads(resp.read())
    except urllib.error.HTTPError as e:
        return e.code, json.loads(e.read())


def canary_body(name: str, **spec: Any) -> dict[str, Any]:
    return {
        "apiVersion": "kubectl-canary.dev/v1alpha1",
        "kind": "Canary",
        "metadata": {"name": name},
        "spec": {
            "provider": "kubernetes",
            "targetRef": {"apiVersion": "apps/v1", "kind": "Deployment", "name": "web"},
            "service": {"port": 80},
            "analysis": {"interval": "1m", "threshold": 5, "maxWeight": 50, "stepWeight": 10},
            **spec,
        },
    }


def test_core_crud_and_error_statuses(api: client.ApiClient, namespace: str) -> None:
    core = client.CoreV1Api(api)
    cm = core.create_namespaced_config_map(
        namespace, {"metadata": {"name": "a"}, "data": {"k": "1"}}
    )
    with pytest.raises(ApiException) as exists:
        core.create_namespaced_config_map(namespace, {"metadata": {"name": "a"}})
    assert exists.value.status == 409
    assert json.loads(exists.value.body)["reason"] == "AlreadyExists"
    core.patch_namespaced_config_map("a", namespace, {"data": {"k": "2"}})
    stale = {"metadata": {"name": "a", "resourceVersion": cm.metadata.resource_version}}
    with pytest.raises(ApiException) as conflict:
        core.replace_namespaced_config_map("a", namespace, {**stale, "data": {"k": "3"}})
    assert conflict.value.status == 409
    assert json.loads(conflict.value.body)["reason"] == "Conflict"
    listed = core.list_namespaced_config_map(namespace)
    assert [i.metadata.name for i in listed.items] == ["a"]
    assert int(listed.metadata.resource_version) >= int(cm.metadata.resource_version)
    core.delete_namespaced_config_map("a", namespace)
    with pytest.raises(ApiException) as missing:
        core.read_namespaced_config_map("a", namespace)
    status = json.loads(missing.value.body)
    assert (status["kind"], status["reason"], status["code"]) == ("Status", "NotFound", 404)


def test_watch_meets_410_and_relists(api: client.ApiClient, namespace: str) -> None:
    core = client.CoreV1Api(api)
    first = core.create_namespaced_config_map(namespace, {"metadata": {"name": "c0"}})
    old_rv = first.metadata.resource_version
    for i in range(1, WATCH_WINDOW + 3):  # push c0's version out of the watch window
        core.create_namespaced_config_map(namespace, {"metadata": {"name": f"c{i}"}})
    w = watch.Watch()
    with pytest.raises(ApiException) as gone:
        for _ in w.stream(
            core.list_namespaced_config_map, namespace, resource_version=old_rv, timeout_seconds=5
        ):
            pass
    assert gone.value.status == 410
    # The informer's answer to 410: list again, then watch from the list's version.
    listed = core.list_namespaced_config_map(namespace)
    assert len(listed.items) == WATCH_WINDOW + 3
    # A change made after the list is replayed by a watch from the list's version.
    core.delete_namespaced_config_map("c1", namespace)
    events: list[tuple[str, str]] = []
    for ev in w.stream(
        core.list_namespaced_config_map,
        namespace,
        resource_version=listed.metadata.resource_version,
        timeout_seconds=5,
    ):
        events.append((ev["type"], ev["object"].metadata.name))
        w.stop()
    assert events == [("DELETED", "c1")]


def test_watch_sends_bookmarks_and_selector_transitions(
    sandbox: SandboxHandle, api: client.ApiClient, namespace: str
) -> None:
    core = client.CoreV1Api(api)
    listed = core.list_namespaced_config_map(namespace)
    w = watch.Watch()
    seen: list[str] = []
    for ev in w.stream(
        core.list_namespaced_config_map,
        namespace,
        label_selector="team=a",
        resource_version=listed.metadata.resource_version,
        allow_watch_bookmarks=True,
        timeout_seconds=10,
    ):
        if ev["type"] == "BOOKMARK":
            seen.append("BOOKMARK")
            if seen.count("BOOKMARK") == 1:
                core.create_namespaced_config_map(
                    namespace, {"metadata": {"name": "x", "labels": {"team": "b"}}}
                )
                core.patch_namespaced_config_map(
                    "x", namespace, {"metadata": {"labels": {"team": "a"}}}
                )
                core.patch_namespaced_config_map(
                    "x", namespace, {"metadata": {"labels": {"team": "c"}}}
                )
            continue
        seen.append(f"{ev['type']} {ev['object'].metadata.name}")
        if ev["type"] == "DELETED":
            w.stop()
    # Entering the selector is an ADDED, leaving it a DELETED, as on a real server.
    assert [s for s in seen if s != "BOOKMARK"] == ["ADDED x", "DELETED x"]


def test_custom_resource_validation_and_pruning_over_http(
    sandbox: SandboxHandle, namespace: str
) -> None:
    base = f"/apis/kubectl-canary.dev/v1alpha1/namespaces/{namespace}/canaries"
    code, body = request(sandbox, "POST", base, canary_body("bad", provider="nope"))
    assert (code, body["reason"]) == (422, "Invalid")
    assert body["details"]["causes"][0]["field"] == "spec.provider"
    code, body = request(sandbox, "POST", base + "?fieldValidation=Strict", canary_body("s", x=1))
    assert (code, body["reason"]) == (400, "BadRequest")
    assert 'unknown field "spec.x"' in body["message"]
    code, body = request(sandbox, "POST", base, canary_body("ok", x=1))
    assert code == 201
    assert "x" not in body["spec"]
    assert body["spec"]["progressDeadlineSeconds"] == 600
    code, body = request(
        sandbox,
        "PATCH",
        base + "/ok",
        {"spec": {"provider": "istio"}},
        content_type="application/strategic-merge-patch+json",
    )
    assert (code, body["reason"]) == (415, "UnsupportedMediaType")
    code, body = request(
        sandbox,
        "PATCH",
        base + "/ok",
        [{"op": "replace", "path": "/spec/provider", "value": "istio"}],
        content_type="application/json-patch+json",
    )
    assert (code, body["spec"]["provider"]) == (200, "istio")


def test_scale_subresource_and_table_output(sandbox: SandboxHandle, namespace: str) -> None:
    base = f"/apis/apps/v1/namespaces/{namespace}/deployments"
    dep = {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {"name": "web"},
        "spec": {
            "replicas": 1,
            "selector": {"matchLabels": {"app": "web"}},
            "template": {
                "metadata": {"labels": {"app": "web"}},
                "spec": {"containers": [{"name": "web", "image": "web:1"}]},
            },
        },
    }
    assert request(sandbox, "POST", base, dep)[0] == 201
    code, scale = request(sandbox, "GET", base + "/web/scale")
    assert (code, scale["kind"], scale["spec"]["replicas"]) == (200, "Scale", 1)
    assert scale["status"]["selector"] == "app=web"
    code, scale = request(
        sandbox,
        "PATCH",
        base + "/web/scale",
        {"spec": {"replicas": 4}},
        content_type="application/merge-patch+json",
    )
    assert code == 200
    assert request(sandbox, "GET", base + "/web")[1]["spec"]["replicas"] == 4
    table_type = "application/json;as=Table;v=v1;g=meta.k8s.io,application/json"
    code, table = request(sandbox, "GET", base, accept=table_type)
    assert table["kind"] == "Table"
    columns = [c["name"] for c in table["columnDefinitions"]]
    assert columns[:3] == ["Name", "Ready", "Up-to-date"]
    assert table["rows"][0]["cells"][:2] == ["web", "0/4"]


def test_discovery_lists_kinds_and_subresources(sandbox: SandboxHandle) -> None:
    _, apps = request(sandbox, "GET", "/apis/apps/v1")
    names = {r["name"] for r in apps["resources"]}
    assert {"deployments", "deployments/status", "deployments/scale", "replicasets"} <= names
    _, groups = request(sandbox, "GET", "/apis")
    by_name = {g["name"]: g for g in groups["groups"]}
    assert by_name["networking.istio.io"]["preferredVersion"]["version"] == "v1"
    assert "kubectl-canary.dev" in by_name
    code, _ = request(sandbox, "GET", "/apis/nope.example.com/v1")
    assert code == 404


def test_kr8s_get_list_create_patch(sandbox: SandboxHandle, namespace: str) -> None:
    api = kr8s.api(kubeconfig=str(sandbox.kubeconfig))
    cm = kr8s.objects.ConfigMap(
        {"metadata": {"name": "kr", "namespace": namespace}, "data": {"a": "1"}}, api=api
    )
    cm.create()
    cm.patch({"data": {"b": "2"}})
    fetched = kr8s.objects.ConfigMap.get("kr", namespace=namespace, api=api)
    assert fetched.raw["data"] == {"a": "1", "b": "2"}
    listed = [o.name for o in api.get("configmaps", namespace=namespace)]
    assert listed == ["kr"]
    canary_class = kr8s.objects.new_class(
        kind="Canary", version="kubectl-canary.dev/v1alpha1", namespaced=True, plural="canaries"
    )
    canary = canary_class(
        {**canary_body("k"), "metadata": {"name": "k", "namespace": namespace}}, api=api
    )
    canary.create()
    canary.patch({"spec": {"analysis": {"maxWeight": 60}}}, type="merge")
    found = list(api.get("canaries.kubectl-canary.dev", namespace=namespace))
    assert [(c.name, c.raw["spec"]["analysis"]["maxWeight"]) for c in found] == [("k", 60)]


def test_event_field_selectors(sandbox: SandboxHandle, namespace: str) -> None:
    base = f"/api/v1/namespaces/{namespace}/events"
    for name, target in (("e1", "a"), ("e2", "b")):
        event = {
            "metadata": {"name": name},
            "involvedObject": {"kind": "Canary", "name": target, "namespace": namespace},
            "reason": "Synced",
            "message": "hello",
            "type": "Normal",
        }
        assert request(sandbox, "POST", base, event)[0] == 201
    code, listed = request(
        sandbox, "GET", base + "?fieldSelector=involvedObject.kind%3DCanary,involvedObject.name%3Db"
    )
    assert (code, [e["metadata"]["name"] for e in listed["items"]]) == (200, ["e2"])
    code, status = request(sandbox, "GET", base + "?fieldSelector=spec.nope%3D1")
    assert (code, status["reason"]) == (400, "BadRequest")


def test_an_error_answer_leaves_the_keep_alive_connection_usable(sandbox: SandboxHandle) -> None:
    """A POST refused before its body is read (a type the sandbox does not serve) must not
    leave the body to be parsed as the next request: doctor's SubjectAccessReview broke its
    following list of Canaries that way."""
    import http.client

    conn = http.client.HTTPConnection("127.0.0.1", sandbox.port, timeout=10)
    try:
        body = json.dumps({"spec": {"user": "x", "resourceAttributes": {"verb": "get"}}})
        sar = "/apis/authorization.k8s.io/v1/subjectaccessreviews"
        conn.request("POST", sar, body, {"Content-Type": "application/json"})
        refused = conn.getresponse()
        assert refused.status == 404
        refused.read()
        conn.request("GET", "/api/v1/namespaces")
        listed = conn.getresponse()
        assert listed.status == 200
        assert json.loads(listed.read())["kind"] == "NamespaceList"
    finally:
        conn.close()
