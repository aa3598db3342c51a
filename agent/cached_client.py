"""A ResourceClient that reads from the watch caches and writes through the API.

Routers and workload code call `get` freely; for watched kinds that costs no request. Every
write's result is put into the cache at once, so a read right after our own write (in this tick
or the next) never sees the older version and loses a resourceVersion race. A write refused
with 409 says the cache is behind for that object: the next read of it goes to the API server
(and refreshes the cache), so a conflict retry never re-reads the copy that caused it.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from typing import Protocol

from agent.cache import Caches, ListClient
from kubectl_canary.resources import ConflictError, Obj, ResourceClient

_Key = tuple[str, str, str, str]


class _Live(ResourceClient, ListClient, Protocol):
    def update_status(self, obj: Obj) -> Obj: ...


class CachedClient:
    def __init__(self, live: _Live, caches: Caches) -> None:
        self.live = live
        self.caches = caches
        self._lock = threading.Lock()
        self._behind: set[_Key] = set()  # objects whose cached copy lost a write race

    def get(self, api_version: str, kind: str, namespace: str, name: str) -> Obj | None:
        key = (api_version, kind, namespace, name)
        with self._lock:
            behind = key in self._behind
            self._behind.discard(key)
        if behind or not self.caches.covers(api_version, kind, namespace):
            found = self.live.get(api_version, kind, namespace, name)
            return self._seen(found) if found is not None and behind else found
        return self.caches.get(api_version, kind, namespace, name)

    def get_live(self, api_version: str, kind: str, namespace: str, name: str) -> Obj | None:
        """From the API server, and the cache brought up to date with what it said."""
        key = (api_version, kind, namespace, name)
        with self._lock:
            self._behind.discard(key)
        found = self.live.get(api_version, kind, namespace, name)
        if not self.caches.covers(api_version, kind, namespace):
            return found
        if found is None:
            self.caches.observe_delete(api_version, kind, namespace, name)
            return None
        return self._seen(found)

    def create(self, obj: Obj) -> Obj:
        return self._write(_key_of(obj), lambda: self.live.create(obj))

    def replace(self, obj: Obj) -> Obj:
        return self._write(_key_of(obj), lambda: self.live.replace(obj))

    def patch_json(
        self, api_version: str, kind: str, namespace: str, name: str, ops: list[Obj]
    ) -> Obj:
        key = (api_version, kind, namespace, name)
        return self._write(key, lambda: self.live.patch_json(*key, ops))

    def patch_merge(
        self, api_version: str, kind: str, namespace: str, name: str, patch: Obj
    ) -> Obj:
        key = (api_version, kind, namespace, name)
        return self._write(key, lambda: self.live.patch_merge(*key, patch))

    def delete(
        self,
        api_version: str,
        kind: str,
        namespace: str,
        name: str,
        resource_version: str | None = None,
    ) -> bool:
        deleted = self.live.delete(api_version, kind, namespace, name, resource_version)
        self.caches.observe_delete(api_version, kind, namespace, name)
        return deleted

    def update_status(self, obj: Obj) -> Obj:
        return self._write(_key_of(obj), lambda: self.live.update_status(obj))

    def _write(self, key: _Key, send: Callable[[], Obj]) -> Obj:
        try:
            return self._seen(send())
        except ConflictError:
            with self._lock:
                self._behind.add(key)
            raise

    def _seen(self, obj: Obj) -> Obj:
        if obj.get("metadata"):
            self.caches.observe_write(obj)
        return obj

    def list(
        self,
        api_version: str,
        kind: str,
        namespace: str | None = None,
        label_selector: str | None = None,
    ) -> tuple[list[Obj], str]:
        """Always live: for kinds read too rarely to cache (the target's pods on a revert)."""
        return self.live.list(api_version, kind, namespace, label_selector)


def _key_of(obj: Obj) -> _Key:
    meta = obj.get("metadata") or {}
    return (
        obj.get("apiVersion", ""),
        obj.get("kind", ""),
        meta.get("namespace", ""),
        meta.get("name", ""),
    )
