"""Status writes (skip unchanged, resourceVersion guard, conflict retry) and Event objects."""

from __future__ import annotations

import re
from datetime import UTC, datetime

import pytest

from agent.events import event_name, event_object
from agent.status_writer import same_status, write_status
from kubectl_canary.resources import ConflictError
from tests.store_client import StoreClient

API = "kubectl-canary.dev/v1alpha1"


def canary_obj() -> dict:
    return {
        "apiVersion": API,
        "kind": "Canary",
        "metadata": {"name": "mhs", "namespace": "test"},
        "spec": {"targetRef": {"name": "mhs"}, "service": {"port": 9898}},
        "status": {"phase": "Initialized", "canaryWeight": 0},
    }


def test_unchanged_status_is_not_written() -> None:
    k = StoreClient(namespace="test")
    obj = k.add(canary_obj())
    assert write_status(k, obj, {"phase": "Initialized", "canaryWeight": 0.0}) is None
    assert k.requests == []


def test_changed_status_is_written_on_the_read_version() -> None:
    k = StoreClient(namespace="test")
    obj = k.add(canary_obj())
    out = write_status(k, obj, {"phase": "Progressing", "canaryWeight": 10})
    assert out is not None and out["status"]["canaryWeight"] == 10
    assert k.writes == [("update", "Canary", "mhs")]
    assert k.find("Canary", "mhs", "test")["status"]["phase"] == "Progressing"


def test_conflict_rereads_and_writes_the_same_status() -> None:
    k = StoreClient(namespace="test")
    stale = k.add(canary_obj())
    k.edit("Canary", "mhs", lambda c: c["metadata"].update(annotations={"a": "b"}))
    out = write_status(k, stale, {"phase": "Progressing", "canaryWeight": 10})
    assert out is not None
    live = k.find("Canary", "mhs", "test")
    assert live["status"]["canaryWeight"] == 10
    assert live["metadata"]["annotations"] == {"a": "b"}  # the user's change survived


def test_a_status_another_replica_moved_on_is_not_overwritten() -> None:
    # Decided from weight 0; meanwhile another replica (which took the Lease) stepped to 10.
    k = StoreClient(namespace="test")
    stale = k.add(canary_obj())
    k.edit("Canary", "mhs", lambda c: c["status"].update(phase="Progressing", canaryWeight=10))
    assert write_status(k, stale, {"phase": "Progressing", "canaryWeight": 10, "x": 1}) is None
    assert k.find("Canary", "mhs", "test")["status"] == {"phase": "Progressing", "canaryWeight": 10}


def test_persistent_conflict_surfaces() -> None:
    k = StoreClient(namespace="test")
    obj = k.add(canary_obj())

    class Racing(StoreClient):
        def update_status(self, o: dict) -> dict:
            raise ConflictError("stale", 409)

        def get(self, *a: str) -> dict:
            return obj

    with pytest.raises(ConflictError):
        write_status(Racing(), obj, {"phase": "Failed"})


def test_gone_canary_is_not_written() -> None:
    k = StoreClient(namespace="test")
    obj = k.add(canary_obj())

    k.remove("Canary", "mhs")
    k.fail("update", "Canary", ConflictError("stale", 409))
    assert write_status(k, obj, {"phase": "Failed"}) is None


def test_same_status_treats_int_and_float_alike() -> None:
    assert same_status({"a": [1, {"b": 2.0}]}, {"a": [1.0, {"b": 2}]})
    assert not same_status({"a": 1}, {"a": 1.5})
    assert same_status(None, {})


def test_event_names_are_unique_and_valid() -> None:
    names = {event_name("mhs", 1234) for _ in range(200)}
    assert len(names) == 200
    pattern = re.compile(r"^[a-z0-9]([-a-z0-9.]*[a-z0-9])?$")
    assert all(pattern.match(n) and len(n) <= 253 for n in names)
    assert len(event_name("x" * 300)) <= 253


def test_event_object_describes_the_canary() -> None:
    now = datetime(2026, 1, 2, 3, 4, 5, tzinfo=UTC)
    obj = {"metadata": {"name": "mhs", "namespace": "test", "uid": "u1", "resourceVersion": "7"}}
    ev = event_object(obj, "Warning", "Synced", "Halt advancement", now, "agent-1")
    assert ev["metadata"]["namespace"] == "test"
    assert ev["metadata"]["name"].startswith("mhs.")
    assert ev["involvedObject"] == {
        "apiVersion": API,
        "kind": "Canary",
        "name": "mhs",
        "namespace": "test",
        "uid": "u1",
        "resourceVersion": "7",
    }
    assert (ev["type"], ev["reason"], ev["message"], ev["count"]) == (
        "Warning",
        "Synced",
        "Halt advancement",
        1,
    )
    assert ev["firstTimestamp"] == ev["lastTimestamp"] == "2026-01-02T03:04:05Z"
    assert ev["reportingInstance"] == "agent-1"
