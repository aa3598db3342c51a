"""A ResourceClient that reads from the watch caches and writes through the API.

Routers and workload code call `get` freely; for watched kinds that costs no request. Every
write's result is put into the cache at once, so a read right after our own write (in this tick
or the next) never sees the older version and loses a resourceVersion race.
"""

from __future__ import annotations

from typing import Protocol

from agent.cache import Caches, ListClient
from agent.resources import Obj, ResourceClient


class _Live(ResourceClient, ListClient, Protocol):
    def update_status(self, obj: Obj) -> Obj: ...


class CachedClient:
    def __init__(self, live: _Live, caches: Caches) -> None:
        self.live = live
        self.caches = caches

    def get(self, api_version: str, kind: str, namespace: str, name: str) -> Obj | None:
        if self.caches.covers(api_version, kind, namespace):
            return self.caches.get(api_version, kind, namespace, name)
        return self.live.get(api_version, kind, namespace, name)

    def create(self, obj: Obj) -> Obj:
        return self._seen(self.live.create(obj))

    def replace(self, obj: Obj) -> Obj:
        return self._seen(self.live.replace(obj))

    def patch_json(
        self, api_version: str, kind: str, namespace: str, name: str, ops: list[Obj]
    ) -> Obj:
        return self._seen(self.live.patch_json(api_version, kind, namespace, name, ops))

    def patch_merge(
        self, api_version: str, kind: str, namespace: str, name: str, patch: Obj
    ) -> Obj:
        return self._seen(self.live.patch_merge(api_version, kind, namespace, name, patch))

    def delete(self, api_version: str, kind: str, namespace: str, name: str) -> None:
        self.live.delete(api_version, kind, namespace, name)
        self.caches.observe_delete(api_version, kind, namespace, name)

    def update_status(self, obj: Obj) -> Obj:
        return self._seen(self.live.update_status(obj))

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
