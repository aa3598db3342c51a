"""After a write is refused with 409 the cache is behind for that object: the next read goes to
the API server, so a conflict retry (the status writer's, `ensure`'s) works from the live
version instead of PUTting the same stale copy again."""

from __future__ import annotations

import copy
from typing import Any

import pytest

from agent.cached_client import CachedClient
from agent.status_writer import write_status
from kubectl_canary.resources import ConflictError
from tests.store_client import StoreClient

API = "kubectl-canary.dev/v1alpha1"


class StaleCaches:
    """Caches that hold whatever was last put there and cover every kind."""

    def __init__(self) -> None:
        self.objects: dict[tuple[str, str, str], Any] = {}

    def covers(self, api_version: str, kind: str, namespace: str) -> bool:
        return True

    def get(self, api_version: str, kind: str, namespace: str, name: str) -> Any:
        return copy.deepcopy(self.objects.get((kind, namespace, name)))

    def observe_write(self, obj: dict[str, Any]) -> None:
        meta = obj["metadata"]
        self.objects[(obj["kind"], meta["namespace"], meta["name"])] = copy.deepcopy(obj)

    def observe_delete(self, *_: str) -> None:
        pass


def canary() -> dict[str, Any]:
    return {
        "apiVersion": API,
        "kind": "Canary",
        "metadata": {"name": "mhs", "namespace": "app"},
        "spec": {"targetRef": {"name": "mhs"}, "service": {"port": 9898}},
    }


def test_a_conflict_sends_the_next_read_to_the_api_server() -> None:
    live = StoreClient(namespace="app")
    caches = StaleCaches()
    client = CachedClient(live, caches)  # type: ignore[arg-type]
    stored = live.add(canary())
    caches.observe_write(stored)
    # Someone else writes (a request annotation): the cache has not seen it yet.
    newer = copy.deepcopy(stored)
    newer["metadata"]["annotations"] = {"kubectl-canary.dev/request": "pause"}
    live.replace(newer)

    written = write_status(
        client, client.get(API, "Canary", "app", "mhs"), {"phase": "Progressing"}
    )
    assert written is not None and written["status"] == {"phase": "Progressing"}
    verbs = [verb for verb, _, _ in live.requests]
    assert verbs.count("get") == 1, "one live read after the conflict, not the stale copy again"
    assert caches.get(API, "Canary", "app", "mhs")["metadata"]["annotations"], "cache refreshed"
    # Reads go back to the cache once the live version was fetched.
    client.get(API, "Canary", "app", "mhs")
    assert [verb for verb, _, _ in live.requests].count("get") == 1


def test_the_conflict_still_reaches_the_caller() -> None:
    live = StoreClient(namespace="app")
    client = CachedClient(live, StaleCaches())  # type: ignore[arg-type]
    stored = live.add(canary())
    stale = copy.deepcopy(stored)
    stale["metadata"]["resourceVersion"] = "1"
    with pytest.raises(ConflictError):
        client.replace(stale)
