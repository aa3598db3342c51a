"""Which watch events tick a canary at once."""

from __future__ import annotations

from agent.scheduler import Scheduler
from agent.triggers import TriggerIndex

from .virtual_time import VirtualTime


def canary(gen: int = 1, rv: str = "1", ann: dict | None = None, status: dict | None = None):
    return {
        "kind": "Canary",
        "metadata": {
            "namespace": "ns",
            "name": "c",
            "generation": gen,
            "resourceVersion": rv,
            "annotations": ann or {},
        },
        "spec": {"targetRef": {"name": "app"}},
        "status": status or {},
    }


def dep(gen: int = 1, ready: int = 0, config: str = "cfg"):
    return {
        "kind": "Deployment",
        "metadata": {"namespace": "ns", "name": "app", "generation": gen},
        "spec": {"template": {"spec": {"volumes": [{"configMap": {"name": config}}]}}},
        "status": {"readyReplicas": ready},
    }


def index() -> tuple[TriggerIndex, list[str], list[str]]:
    fired: list[str] = []
    forgot: list[str] = []

    def refs(d: dict) -> list[tuple[str, str]]:
        vols = d["spec"]["template"]["spec"]["volumes"]
        return [("ConfigMap", v["configMap"]["name"]) for v in vols]

    return TriggerIndex(fired.append, forgot.append, refs), fired, forgot


def test_canary_changes_but_not_our_status_writes() -> None:
    idx, fired, forgot = index()
    idx.on_canary("ADDED", canary(), None)
    assert fired == ["ns/c"]
    idx.on_canary("MODIFIED", canary(rv="2", status={"phase": "Progressing"}), canary())
    assert fired == ["ns/c"]  # status only
    idx.on_canary("MODIFIED", canary(gen=2, rv="3"), canary(rv="2"))
    idx.on_canary("MODIFIED", canary(gen=2, rv="4", ann={"r": "x"}), canary(gen=2, rv="3"))
    assert fired == ["ns/c"] * 3
    idx.on_canary("DELETED", canary(), canary())
    assert forgot == ["ns/c"]


def test_target_spec_changes_tick_its_canary() -> None:
    idx, fired, _ = index()
    idx.on_canary("ADDED", canary(), None)
    fired.clear()
    idx.on_deployment("MODIFIED", dep(gen=2), dep(gen=1))
    assert fired == ["ns/c"]
    other = dep(gen=2)
    other["metadata"]["name"] = "unrelated"
    idx.on_deployment("MODIFIED", other, dep(gen=1))
    assert fired == ["ns/c"]


def progressing(dep_obj: dict, reason: str, heartbeat: str) -> dict:
    dep_obj["status"]["conditions"] = [
        {"type": "Progressing", "status": "True", "reason": reason, "lastUpdateTime": heartbeat}
    ]
    return dep_obj


def test_rollout_progress_of_the_target_and_the_primary_ticks_the_canary() -> None:
    """A wait for a rollout ends on the watch event that ends it, not at the next interval."""
    idx, fired, _ = index()
    idx.on_canary("ADDED", canary(), None)
    fired.clear()
    idx.on_deployment("MODIFIED", dep(ready=1), dep(ready=0))
    assert fired == ["ns/c"]
    primary, before = dep(ready=2), dep(ready=1)
    for obj in (primary, before):
        obj["metadata"]["name"] = "app-primary"
    idx.on_deployment("MODIFIED", primary, before)
    assert fired == ["ns/c"] * 2
    for field in ("observedGeneration", "updatedReplicas", "availableReplicas", "replicas"):
        moved = dep()
        moved["status"][field] = 3
        idx.on_deployment("MODIFIED", moved, dep())
    assert len(fired) == 6
    done = progressing(dep(), "NewReplicaSetAvailable", "t2")
    idx.on_deployment("MODIFIED", done, progressing(dep(), "ReplicaSetUpdated", "t1"))
    assert len(fired) == 7


def test_a_heartbeat_or_an_unrelated_deployment_ticks_nothing() -> None:
    idx, fired, _ = index()
    idx.on_canary("ADDED", canary(), None)
    fired.clear()
    beat = progressing(dep(), "NewReplicaSetAvailable", "t2")
    idx.on_deployment("MODIFIED", beat, progressing(dep(), "NewReplicaSetAvailable", "t1"))
    other, before = dep(ready=1), dep()
    for obj in (other, before):
        obj["metadata"]["name"] = "unrelated-primary"
    idx.on_deployment("MODIFIED", other, before)
    assert fired == []


def test_tracked_config_changes_tick_the_canary() -> None:
    idx, fired, _ = index()
    idx.on_canary("ADDED", canary(), None)
    idx.on_deployment("ADDED", dep(), None)
    fired.clear()
    cm = {"kind": "ConfigMap", "metadata": {"namespace": "ns", "name": "cfg"}, "data": {"a": "1"}}
    cm2 = {**cm, "data": {"a": "2"}}
    idx.on_config("MODIFIED", cm, cm)
    assert fired == []
    idx.on_config("MODIFIED", cm2, cm)
    assert fired == ["ns/c"]
    other = {"kind": "ConfigMap", "metadata": {"namespace": "ns", "name": "x"}, "data": {}}
    idx.on_config("ADDED", other, None)
    assert fired == ["ns/c"]


def test_a_rollout_event_ticks_at_once_and_a_phase_change_ticks_again_at_once() -> None:
    """On the scheduler's virtual clock: a canary waiting at a 10 s interval ticks when its
    primary's rollout moves, and a tick that asks to proceed (delay 0) runs once more at once,
    not in a loop."""
    time = VirtualTime()
    runs: list[float] = []
    answers = [10.0, 0.0, 10.0]  # waiting; then a phase change; then waiting again

    def tick(key: str) -> float | None:
        runs.append(time.clock())
        return answers[len(runs) - 1] if len(runs) <= len(answers) else 10.0

    s = Scheduler(tick, concurrency=1, clock=time.clock, condition=time.condition)
    idx = TriggerIndex(s.trigger, s.forget, lambda d: [])
    s.start()
    try:
        idx.on_canary("ADDED", canary(), None)
        time.settle(s.workers)
        assert runs == [0.0]
        time.advance(3)
        time.settle(s.workers)
        assert runs == [0.0], "nothing moved: the next tick is the interval's"
        primary, before = dep(ready=2), dep(ready=1)
        for obj in (primary, before):
            obj["metadata"]["name"] = "app-primary"
        idx.on_deployment("MODIFIED", primary, before)
        time.settle(s.workers)
        assert runs == [0.0, 3.0, 3.0]
        time.advance(9)
        time.settle(s.workers)
        assert runs == [0.0, 3.0, 3.0]
        time.advance(1)
        time.settle(s.workers)
        assert runs == [0.0, 3.0, 3.0, 13.0]
    finally:
        s.stop()
