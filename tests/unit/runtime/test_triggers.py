"""Which watch events tick a canary at once."""

from __future__ import annotations

from agent.triggers import TriggerIndex


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
    idx.on_deployment("MODIFIED", dep(gen=1, ready=1), dep(gen=1))
    assert fired == []  # status only
    idx.on_deployment("MODIFIED", dep(gen=2), dep(gen=1))
    assert fired == ["ns/c"]
    other = dep(gen=2)
    other["metadata"]["name"] = "unrelated"
    idx.on_deployment("MODIFIED", other, dep(gen=1))
    assert fired == ["ns/c"]


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
