"""List-then-watch caches ("informers") of the objects the agent reads every tick.

One `Informer` per (kind, namespace) keeps a dict of objects current: list, watch from the
list's resourceVersion, keep following bookmarks; on 410 Gone list again; when the stream goes
quiet (no event or bookmark for `silence_seconds`) reconnect from the last version seen. Ticks
read from here, so API load does not grow with ticks (STYLE: reads from watch caches).
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any, Protocol

from kubectl_canary.resources import ApiError, NotFoundError, Obj

log = logging.getLogger("agent.cache")

# (event type, new object, previous object or None); called on the informer's thread.
Handler = Callable[[str, Obj, Obj | None], None]


class ListClient(Protocol):
    def list(
        self,
        api_version: str,
        kind: str,
        namespace: str | None = None,
        label_selector: str | None = None,
    ) -> tuple[list[Obj], str]: ...


class WatchClient(ListClient, Protocol):
    def watch(
        self,
        api_version: str,
        kind: str,
        namespace: str | None,
        resource_version: str,
        timeout_seconds: int,
        silence_seconds: float,
    ) -> Iterator[tuple[str, Obj]]: ...


@dataclass(frozen=True)
class WatchSettings:
    # The server ends each watch after this long; we then resume from the last version.
    timeout_seconds: int = 300
    # Reconnect when nothing at all arrived for this long (bookmarks count as traffic).
    silence_seconds: float = 330.0
    # Backoff after an error, and for kinds the server does not serve (a CRD not installed).
    retry_seconds: float = 1.0
    missing_kind_retry_seconds: float = 30.0


# Never read by any tick, and often the largest part of an object: managedFields (the API server
# keeps them when an update omits them, so a write built from a cached copy loses nothing).
_ALWAYS_DROPPED = ("managedFields",)
LAST_APPLIED = "kubectl.kubernetes.io/last-applied-configuration"


def make_lean(obj: Obj, drop_last_applied: bool) -> Obj:
    """Drop, in place, the metadata no tick reads; for objects the cache alone holds (fresh
    from a list or a watch event: a copy would double the memory while a large list is
    stored). Returns `obj`.

    kubectl's last-applied annotation repeats the whole object. It is dropped only for kinds
    the agent never writes back from a cached copy (a replace built from a copy without it
    would delete the user's annotation and break their next `kubectl apply`)."""
    meta = obj.get("metadata")
    if not isinstance(meta, dict):
        return obj
    for field in _ALWAYS_DROPPED:
        meta.pop(field, None)
    annotations = meta.get("annotations")
    if drop_last_applied and isinstance(annotations, dict):
        annotations.pop(LAST_APPLIED, None)
    return obj


def lean_copy(obj: Obj, drop_last_applied: bool) -> Obj:
    """`obj` made lean, the input left as it was (our own write's answer, which the writer
    keeps using)."""
    meta = obj.get("metadata")
    if not isinstance(meta, dict):
        return obj
    annotations = meta.get("annotations")
    copied = {**meta, "annotations": dict(annotations)} if annotations else dict(meta)
    return make_lean({**obj, "metadata": copied}, drop_last_applied)


def _key(obj: Obj) -> tuple[str, str]:
    meta = obj.get("metadata") or {}
    return (meta.get("namespace") or "", meta.get("name") or "")


def rv_newer(a: str, b: str) -> bool:
    """True when resourceVersion `a` is newer than `b`.

    resourceVersions are opaque, but every API server we know issues increasing integers; when
    either is not an integer we cannot tell and answer True (the caller's copy wins).
    """
    try:
        return int(a) > int(b)
    except ValueError:
        return True


class Informer:
    def __init__(
        self,
        client: WatchClient,
        api_version: str,
        kind: str,
        namespace: str | None,
        handler: Handler | None = None,
        settings: WatchSettings | None = None,
        drop_last_applied: bool = False,
    ) -> None:
        self.api_version = api_version
        self.kind = kind
        self.namespace = namespace
        self._client = client
        self._handler = handler
        self._settings = settings or WatchSettings()
        self._drop_last_applied = drop_last_applied
        self._objects: dict[tuple[str, str], Obj] = {}
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self.synced = threading.Event()
        self.served = True  # False while the server does not know the kind
        self.relists = 0
        # Monotonic time the last list was asked for (-inf before one): the cache holds every
        # write made before it (agent/handover.py).
        self.listed_at = float("-inf")
        self._thread: threading.Thread | None = None

    @property
    def name(self) -> str:
        return f"{self.kind}/{self.namespace or '*'}"

    # ----- reads -----

    def get(self, namespace: str, name: str) -> Obj | None:
        with self._lock:
            return self._objects.get((namespace, name))

    def items(self) -> list[Obj]:
        with self._lock:
            return list(self._objects.values())

    def __len__(self) -> int:
        with self._lock:
            return len(self._objects)

    def observe_write(self, obj: Obj) -> None:
        """Store the result of our own write now, so the next tick never reads an older copy.

        The watch delivers the same version later; `_apply` then sees no change.
        """
        obj = lean_copy(obj, self._drop_last_applied)
        key = _key(obj)
        rv = (obj.get("metadata") or {}).get("resourceVersion", "")
        with self._lock:
            old = self._objects.get(key)
            old_rv = (old or {}).get("metadata", {}).get("resourceVersion", "")
            if old is None or not old_rv or rv_newer(rv, old_rv):
                self._objects[key] = obj

    def observe_delete(self, namespace: str, name: str) -> None:
        """Forget an object we just deleted, so the next read does not find it again."""
        with self._lock:
            self._objects.pop((namespace, name), None)

    # ----- lifecycle -----

    def start(self) -> None:
        self._thread = threading.Thread(target=self._run, name=f"watch-{self.name}", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()

    def join(self, timeout: float) -> None:
        if self._thread is not None:
            self._thread.join(timeout)

    def _run(self) -> None:
        rv = ""
        while not self._stop.is_set():
            try:
                if not rv:
                    rv = self._relist()
                started = time.monotonic()
                rv, events = self._follow(rv)
                if events == 0 and time.monotonic() - started < self._settings.retry_seconds:
                    # The server ended the stream at once: don't spin against it.
                    log.debug("watch ended early", extra={"watch": self.name})
                    self._stop.wait(self._settings.retry_seconds)
            except NotFoundError:
                # The kind is not served (e.g. Istio CRDs absent): an empty, synced cache;
                # look again later in case the CRD gets installed.
                if self.served:
                    log.info("kind not served; will retry", extra={"watch": self.name})
                self.served = False
                self._replace([])
                self.synced.set()
                rv = ""
                self._stop.wait(self._settings.missing_kind_retry_seconds)
            except ApiError as exc:
                if exc.status == 410:
                    log.info("watch expired; listing again", extra={"watch": self.name})
                    rv = ""
                    continue
                if exc.reason != "Silence":
                    log.warning(
                        "watch failed: %s", exc, extra={"watch": self.name, "status": exc.status}
                    )
                self._stop.wait(self._settings.retry_seconds)
            except Exception:  # noqa: BLE001 - a watch thread must never die
                log.exception("watch crashed; listing again", extra={"watch": self.name})
                rv = ""
                self._stop.wait(self._settings.retry_seconds)

    def _relist(self) -> str:
        asked = time.monotonic()
        items, rv = self._client.list(self.api_version, self.kind, self.namespace)
        self.relists += 1
        self.served = True
        self._replace(items)
        self.listed_at = asked
        self.synced.set()
        return rv

    def _follow(self, rv: str) -> tuple[str, int]:
        """Follow one watch stream; return the last version seen and how many events came."""
        s = self._settings
        count = 0
        stream = self._client.watch(
            self.api_version, self.kind, self.namespace, rv, s.timeout_seconds, s.silence_seconds
        )
        for etype, obj in stream:
            if self._stop.is_set():
                break
            count += 1
            new_rv = (obj.get("metadata") or {}).get("resourceVersion")
            if etype == "BOOKMARK":
                rv = new_rv or rv
                continue
            self._apply(etype, obj)
            rv = new_rv or rv
        return rv, count

    def _replace(self, items: list[Obj]) -> None:
        fresh = {_key(o): make_lean(o, self._drop_last_applied) for o in items}
        with self._lock:
            old = self._objects
            self._objects = fresh
        # `fresh` is the live table now: a handler's tick may store its own write into it
        # (observe_write) while we are still telling of the list, so walk a copy.
        for key, obj in list(fresh.items()):
            prev = old.get(key)
            if prev is None:
                self._notify("ADDED", obj, None)
            elif resource_version(prev) != resource_version(obj):
                self._notify("MODIFIED", obj, prev)
        for key, prev in old.items():
            if key not in fresh:
                self._notify("DELETED", prev, prev)

    def _apply(self, etype: str, obj: Obj) -> None:
        obj = make_lean(obj, self._drop_last_applied)
        key = _key(obj)
        with self._lock:
            prev = self._objects.get(key)
            if etype == "DELETED":
                self._objects.pop(key, None)
            else:
                if (
                    prev is not None
                    and resource_version(prev)
                    and not rv_newer(resource_version(obj), resource_version(prev))
                ):
                    return  # our own write already stored this version (or a newer one)
                self._objects[key] = obj
        self._notify(etype, obj, prev)

    def _notify(self, etype: str, obj: Obj, prev: Obj | None) -> None:
        if self._handler is None:
            return
        try:
            self._handler(etype, obj, prev)
        except Exception:  # noqa: BLE001 - a handler bug must not kill the watch
            log.exception("watch handler failed", extra={"watch": self.name})


def resource_version(obj: Obj) -> str:
    return str((obj.get("metadata") or {}).get("resourceVersion", ""))


def _group_kind(api_version: str, kind: str) -> tuple[str, str]:
    # Versions of one kind hold the same objects (Istio serves v1, v1beta1, v1alpha3), so a
    # cache of one version answers for all of them.
    return (api_version.rsplit("/", 1)[0] if "/" in api_version else "", kind)


class Caches:
    """All informers, by (group, kind); one informer per watched namespace (or all)."""

    def __init__(
        self,
        client: WatchClient,
        namespaces: tuple[str, ...],
        settings: WatchSettings | None = None,
    ) -> None:
        self._client = client
        self._namespaces: tuple[str | None, ...] = namespaces or (None,)
        self._settings = settings or WatchSettings()
        self._informers: dict[tuple[str, str], list[Informer]] = {}

    def add(
        self,
        api_version: str,
        kind: str,
        handler: Handler | None = None,
        *,
        cluster_scoped: bool = False,
        drop_last_applied: bool = False,
    ) -> None:
        """Watch a kind. `drop_last_applied` only for kinds never written back from the cache
        (see `make_lean`)."""
        namespaces = (None,) if cluster_scoped else self._namespaces
        self._informers[_group_kind(api_version, kind)] = [
            Informer(
                self._client, api_version, kind, ns, handler, self._settings, drop_last_applied
            )
            for ns in namespaces
        ]

    def informers(self) -> list[Informer]:
        return [i for group in self._informers.values() for i in group]

    def start(self) -> None:
        for inf in self.informers():
            inf.start()

    def stop(self) -> None:
        for inf in self.informers():
            inf.stop()

    def wait_synced(self, timeout: float) -> bool:
        return all(inf.synced.wait(timeout) for inf in self.informers())

    def watches(self, api_version: str, kind: str) -> bool:
        return _group_kind(api_version, kind) in self._informers

    def _for(self, api_version: str, kind: str, namespace: str) -> Informer | None:
        group = self._informers.get(_group_kind(api_version, kind))
        if not group:
            return None
        if len(group) == 1 and group[0].namespace is None:
            return group[0]
        return next((i for i in group if i.namespace == namespace), None)

    def get(self, api_version: str, kind: str, namespace: str, name: str) -> Obj | None:
        inf = self._for(api_version, kind, namespace)
        return None if inf is None else inf.get(namespace, name)

    def listed_at(self, api_version: str, kind: str, namespace: str) -> float:
        """When the informer holding this kind in `namespace` last listed (-inf: never)."""
        inf = self._for(api_version, kind, namespace)
        return float("-inf") if inf is None else inf.listed_at

    def covers(self, api_version: str, kind: str, namespace: str) -> bool:
        """True when a synced informer holds this kind in this namespace."""
        inf = self._for(api_version, kind, namespace)
        return inf is not None and inf.synced.is_set()

    def items(self, api_version: str, kind: str) -> list[Obj]:
        informers = self._informers.get(_group_kind(api_version, kind), [])
        return [o for i in informers for o in i.items()]

    def observe_write(self, obj: Obj) -> None:
        meta = obj.get("metadata") or {}
        inf = self._for(obj.get("apiVersion", ""), obj.get("kind", ""), meta.get("namespace", ""))
        if inf is not None:
            inf.observe_write(obj)

    def observe_delete(self, api_version: str, kind: str, namespace: str, name: str) -> None:
        inf = self._for(api_version, kind, namespace)
        if inf is not None:
            inf.observe_delete(namespace, name)

    def sizes(self) -> dict[str, Any]:
        return {i.name: len(i) for i in self.informers()}
