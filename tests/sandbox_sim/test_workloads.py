"""Deployments, ReplicaSets, pods and endpoints on the real sandbox store.

Runs the simulation at speed 20 (a 2 s readiness delay is 0.1 s). Each test polls for the state
a real cluster would reach, with a bounded timeout; none sleeps for a fixed time.
"""

from __future__ import annotations

import copy
from collections.abc import Callable
from types import SimpleNamespace
from typing import Any

from kubectl_canary.sandbox.simulation import Simulation
from kubectl_canary.sandbox.store import Store

SPEED = 20.0


def rollout_status(d: dict[str, Any]) -> tuple[bool, str]:
    """kubectl's DeploymentStatusViewer (rollout_status.go), as the oracle for 'done'."""
    status, spec = d.get("status") or {}, d["spec"]
    if d["metadata"].get("generation", 0) > status.get("observedGeneration", 0):
        return False, "waiting for spec update to be observed"
    for c in status.get("conditions") or []:
        if c["type"] == "Progressing" and c.get("reason") == "ProgressDeadlineExceeded":
            raise AssertionError(f"deployment {d['metadata']['name']!r} exceeded its deadline")
    replicas, updated = spec.get("replicas", 1), status.get("updatedReplicas", 0)
    if updated < replicas:
        return False, f"{updated} out of {replicas} new replicas have been updated"
    if status.get("replicas", 0) > updated:
        return False, f"{status.get('replicas', 0) - updated} old replicas are pending termination"
    if status.get("availableReplicas", 0) < updated:
        return False, f"{status.get('availableReplicas', 0)} of {updated} updated are available"
    return True, "successfully rolled out"


def get_deploy(store: Store, name: str) -> dict[str, Any]:
    return store.get("apps/v1", "Deployment", "test", name)


def rolled_out(store: Store, name: str) -> Callable[[], dict[str, Any] | None]:
    def probe() -> dict[str, Any] | None:
        d = get_deploy(store, name)
        return d if rollout_status(d)[0] else None

    return probe


def condition(d: dict[str, Any], kind: str) -> dict[str, Any]:
    return next(c for c in d["status"]["conditions"] if c["type"] == kind)


def pods_of(store: Store, app: str) -> list[dict[str, Any]]:
    return store.list("v1", "Pod", "test", label_selector=f"app={app}")


def set_image(store: Store, name: str, image: str) -> None:
    d = get_deploy(store, name)
    d["spec"]["template"]["spec"]["containers"][0]["image"] = image
    store.update(d)


def test_new_deployment_rolls_out_with_real_status(
    store: Store, start_simulation: Callable[..., Simulation], h: SimpleNamespace
) -> None:
    start_simulation(speed=SPEED)
    store.create(h.deployment("mhs", "ghcr.io/acme/mhs:1.1.1", replicas=2))
    d = h.wait_for(rolled_out(store, "mhs"), what="rollout of mhs")
    assert d["metadata"]["annotations"]["deployment.kubernetes.io/revision"] == "1"
    status = d["status"]
    assert status["observedGeneration"] == 1
    assert (status["replicas"], status["updatedReplicas"]) == (2, 2)
    assert (status["readyReplicas"], status["availableReplicas"]) == (2, 2)
    assert "unavailableReplicas" not in status  # zero counts are omitted, as on a real API
    available = condition(d, "Available")
    assert (available["status"], available["reason"]) == ("True", "MinimumReplicasAvailable")
    progressing = condition(d, "Progressing")
    assert (progressing["status"], progressing["reason"]) == ("True", "NewReplicaSetAvailable")

    (rs,) = store.list("apps/v1", "ReplicaSet", "test")
    template_hash = rs["metadata"]["labels"]["pod-template-hash"]
    assert rs["metadata"]["name"] == f"mhs-{template_hash}"
    assert rs["spec"]["selector"]["matchLabels"]["pod-template-hash"] == template_hash
    (owner,) = rs["metadata"]["ownerReferences"]
    assert (owner["kind"], owner["name"], owner["uid"], owner["controller"]) == (
        "Deployment", "mhs", d["metadata"]["uid"], True
    )  # fmt: skip
    rs_name = rs["metadata"]["name"]
    assert progressing["message"] == f'ReplicaSet "{rs_name}" has successfully progressed.'

    pods = pods_of(store, "mhs")
    assert len(pods) == 2
    for pod in pods:
        assert pod["metadata"]["name"].startswith(rs["metadata"]["name"] + "-")
        assert len(pod["metadata"]["name"]) == len(rs["metadata"]["name"]) + 6
        assert pod["metadata"]["labels"]["pod-template-hash"] == template_hash
        ref = pod["metadata"]["ownerReferences"][0]
        assert (ref["kind"], ref["uid"]) == ("ReplicaSet", rs["metadata"]["uid"])
        assert ref["controller"] is True
        assert pod["spec"]["nodeName"].startswith("sandbox-node-")
        assert pod["status"]["phase"] == "Running"
        assert pod["status"]["podIP"].startswith("10.")
        ready = next(c for c in pod["status"]["conditions"] if c["type"] == "Ready")
        assert ready["status"] == "True"


def test_rolling_update_respects_surge_and_scales_old_down(
    store: Store, start_simulation: Callable[..., Simulation], h: SimpleNamespace
) -> None:
    start_simulation(speed=SPEED)
    strategy = {"type": "RollingUpdate", "rollingUpdate": {"maxSurge": 1, "maxUnavailable": 0}}
    store.create(h.deployment("web", "acme/web:1", replicas=4, strategy=strategy))
    h.wait_for(rolled_out(store, "web"), what="first rollout")
    # Count live pods as events arrive: never more than replicas + maxSurge.
    most = [0]

    def count(event_type: str, obj: dict[str, Any]) -> None:
        if obj.get("kind") == "Pod":
            live = [p for p in pods_of(store, "web") if not p["metadata"].get("deletionTimestamp")]
            most[0] = max(most[0], len(live))

    unsubscribe = store.subscribe(count)
    try:
        set_image(store, "web", "acme/web:2")
        d = h.wait_for(rolled_out(store, "web"), what="second rollout")
    finally:
        unsubscribe()
    assert most[0] <= 5
    assert d["metadata"]["annotations"]["deployment.kubernetes.io/revision"] == "2"
    assert d["status"]["observedGeneration"] == 2
    replica_sets = {
        rs["metadata"]["annotations"]["deployment.kubernetes.io/revision"]: rs
        for rs in store.list("apps/v1", "ReplicaSet", "test")
    }
    assert replica_sets["1"]["spec"]["replicas"] == 0
    assert replica_sets["2"]["spec"]["replicas"] == 4
    new_hash = replica_sets["2"]["metadata"]["labels"]["pod-template-hash"]
    images = {p["spec"]["containers"][0]["image"] for p in pods_of(store, "web")}
    assert images == {"acme/web:2"}
    assert {p["metadata"]["labels"]["pod-template-hash"] for p in pods_of(store, "web")} == {
        new_hash
    }

    # Rolling back to the first template reuses its ReplicaSet as revision 3.
    set_image(store, "web", "acme/web:1")
    d = h.wait_for(rolled_out(store, "web"), what="rollback")
    assert d["metadata"]["annotations"]["deployment.kubernetes.io/revision"] == "3"
    assert len(store.list("apps/v1", "ReplicaSet", "test")) == 2
    reused = store.get("apps/v1", "ReplicaSet", "test", replica_sets["1"]["metadata"]["name"])
    assert reused["metadata"]["annotations"]["deployment.kubernetes.io/revision"] == "3"
    assert reused["spec"]["replicas"] == 4


def test_scaling_up_down_and_to_zero(
    store: Store, start_simulation: Callable[..., Simulation], h: SimpleNamespace
) -> None:
    start_simulation(speed=SPEED)
    store.create(h.deployment("mhs", "acme/mhs:1", replicas=1))
    h.wait_for(rolled_out(store, "mhs"))
    for replicas in (5, 2, 0):
        d = get_deploy(store, "mhs")
        d["spec"]["replicas"] = replicas
        store.update(d)
        d = h.wait_for(
            lambda r=replicas: (
                rolled_out(store, "mhs")() if len(pods_of(store, "mhs")) == r else None
            ),
            what=f"scale to {replicas}",
        )
    status = d["status"]
    assert status["observedGeneration"] == 4
    for field in ("replicas", "updatedReplicas", "readyReplicas", "availableReplicas"):
        assert field not in status
    assert condition(d, "Available")["status"] == "True"
    assert condition(d, "Progressing")["reason"] == "NewReplicaSetAvailable"


def test_bad_image_crash_loops_and_exceeds_the_progress_deadline(
    store: Store, start_simulation: Callable[..., Simulation], h: SimpleNamespace
) -> None:
    # speed 60: progressDeadlineSeconds 120 is 2 real seconds; back-off 10 s is 1/6 s.
    start_simulation(speed=60.0)
    store.create(h.deployment("mhs", "acme/mhs:1.1.2", replicas=2, progressDeadlineSeconds=120))
    store.create(h.service("mhs"))
    h.wait_for(rolled_out(store, "mhs"))
    set_image(store, "mhs", "acme/mhs:1.1.3-crashloop")

    def crashing() -> dict[str, Any] | None:
        for pod in pods_of(store, "mhs"):
            (container,) = pod.get("status", {}).get("containerStatuses") or [{}]
            waiting = container.get("state", {}).get("waiting", {})
            if waiting.get("reason") == "CrashLoopBackOff" and container["restartCount"] >= 2:
                return pod
        return None

    pod = h.wait_for(crashing, what="a crash-looping pod with restarts")
    assert pod["status"]["containerStatuses"][0]["ready"] is False
    assert pod["status"]["containerStatuses"][0]["lastState"]["terminated"]["exitCode"] == 1

    def timed_out() -> dict[str, Any] | None:
        d = get_deploy(store, "mhs")
        progressing = condition(d, "Progressing")
        return d if progressing["reason"] == "ProgressDeadlineExceeded" else None

    d = h.wait_for(timed_out, what="ProgressDeadlineExceeded")
    progressing = condition(d, "Progressing")
    assert progressing["status"] == "False"
    assert progressing["message"].endswith("has timed out progressing.")
    # The old pods keep serving: maxUnavailable 25% of 2 rounds down to 0.
    status = d["status"]
    assert (status["replicas"], status["updatedReplicas"], status["availableReplicas"]) == (3, 1, 2)
    assert status["unavailableReplicas"] == 1  # 3 desired pods over two ReplicaSets, 2 available
    assert condition(d, "Available")["status"] == "True"
    try:
        rollout_status(d)
    except AssertionError as error:
        assert "exceeded its deadline" in str(error)
    else:
        raise AssertionError("rollout status should report the deadline")

    # Endpoints list the crash-looping pod as not ready, the old ones as ready.
    endpoints = store.get("v1", "Endpoints", "test", "mhs")
    (subset,) = endpoints["subsets"]
    assert len(subset["addresses"]) == 2
    not_ready = [a["targetRef"]["name"] for a in subset["notReadyAddresses"]]
    assert not_ready == [pod["metadata"]["name"]]
    assert subset["ports"] == [{"port": 9898, "protocol": "TCP", "name": "http"}]
    (eps,) = store.list("discovery.k8s.io/v1", "EndpointSlice", "test")
    assert eps["metadata"]["labels"]["kubernetes.io/service-name"] == "mhs"
    assert eps["metadata"]["ownerReferences"][0]["kind"] == "Service"
    readiness = sorted(e["conditions"]["ready"] for e in eps["endpoints"])
    assert readiness == [False, True, True]

    # A good image afterwards makes progress again.
    set_image(store, "mhs", "acme/mhs:1.1.4")
    d = h.wait_for(rolled_out(store, "mhs"), what="recovery rollout")
    assert condition(d, "Progressing")["reason"] == "NewReplicaSetAvailable"


def test_endpoints_follow_pods_and_selector_changes(
    store: Store, start_simulation: Callable[..., Simulation], h: SimpleNamespace
) -> None:
    start_simulation(speed=SPEED)
    store.create(h.deployment("a", "acme/a:1", replicas=2))
    store.create(h.deployment("b", "acme/b:1", replicas=3))
    store.create(h.service("svc", app="a"))

    def ready_ips(count: int) -> Callable[[], list[str] | None]:
        def probe() -> list[str] | None:
            try:
                ep = store.get("v1", "Endpoints", "test", "svc")
            except Exception:
                return None
            subsets = ep.get("subsets") or []
            ips = [a["ip"] for s in subsets for a in s.get("addresses") or []]
            pending = [a for s in subsets for a in s.get("notReadyAddresses") or []]
            return ips if len(ips) == count and not pending else None

        return probe

    ips = h.wait_for(ready_ips(2), what="2 ready endpoints")
    assert set(ips) == {p["status"]["podIP"] for p in pods_of(store, "a")}
    svc = store.get("v1", "Service", "test", "svc")
    svc = copy.deepcopy(svc)
    svc["spec"]["selector"] = {"app": "b"}
    store.update(svc)
    ips = h.wait_for(ready_ips(3), what="endpoints of the new selector")
    assert set(ips) == {p["status"]["podIP"] for p in pods_of(store, "b")}
    store.delete("v1", "Service", "test", "svc")
    h.wait_for(
        lambda: (
            not store.list("v1", "Endpoints", "test")
            and not store.list("discovery.k8s.io/v1", "EndpointSlice", "test")
        ),
        what="endpoints removed with the service",
    )


def test_many_deployments_converge(
    store: Store, start_simulation: Callable[..., Simulation], h: SimpleNamespace
) -> None:
    """Hundreds of Deployments: each change costs work for its own keys only."""
    start_simulation(speed=SPEED)
    count = 300
    for index in range(count):
        store.create(h.deployment(f"app-{index}", "acme/app:1", replicas=1))

    def all_available() -> bool:
        items = store.list("apps/v1", "Deployment", "test")
        return all((d.get("status") or {}).get("availableReplicas") == 1 for d in items)

    h.wait_for(all_available, timeout=120, what=f"{count} deployments available")
    assert len(store.list("v1", "Pod", "test")) == count
