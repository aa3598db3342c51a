"""Which watch events make a canary tick at once (instead of at its next interval).

Relevant: a Canary created, its spec/annotations/finalizers changed or its deletion begun (not
our own status writes, or every write would tick again); its target Deployment created,
deleted or given a new spec (a new revision); a tracked ConfigMap/Secret changed. The core
still advances analysis at most once per interval (it compares `now` with the last step).
"""

from __future__ import annotations

import threading
from collections.abc import Callable

from kubectl_canary.resources import Obj

Trigger = Callable[[str], None]


def _meta(obj: Obj | None) -> Obj:
    return (obj or {}).get("metadata") or {}


def _key(obj: Obj) -> str:
    meta = _meta(obj)
    return f"{meta.get('namespace', '')}/{meta.get('name', '')}"


def canary_changed(etype: str, obj: Obj, prev: Obj | None) -> bool:
    if etype != "MODIFIED" or prev is None:
        return True
    old, new = _meta(prev), _meta(obj)
    return (
        old.get("generation") != new.get("generation")
        or old.get("annotations") != new.get("annotations")
        or old.get("finalizers") != new.get("finalizers")
        or old.get("deletionTimestamp") != new.get("deletionTimestamp")
        or prev.get("spec") != obj.get("spec")
    )


def deployment_changed(etype: str, obj: Obj, prev: Obj | None) -> bool:
    if etype != "MODIFIED" or prev is None:
        return True
    return _meta(prev).get("generation") != _meta(obj).get("generation")


def config_changed(etype: str, obj: Obj, prev: Obj | None) -> bool:
    if etype != "MODIFIED" or prev is None:
        return True
    return (prev.get("data"), prev.get("binaryData")) != (obj.get("data"), obj.get("binaryData"))


class TriggerIndex:
    """Maps watch events to canary keys. Kept from raw Canary dicts, so a canary whose spec
    does not parse still gets its target's events (and ticks, to report the problem)."""

    def __init__(
        self, trigger: Trigger, forget: Trigger, config_refs: Callable[[Obj], list[tuple[str, str]]]
    ) -> None:
        self._trigger = trigger
        self._forget = forget
        self._config_refs = config_refs
        self._lock = threading.Lock()
        self._targets: dict[str, str] = {}  # canary key -> "namespace/target name"
        self._deployments: dict[str, Obj] = {}  # "namespace/target name" -> last target seen

    def on_canary(self, etype: str, obj: Obj, prev: Obj | None) -> None:
        key = _key(obj)
        target = ((obj.get("spec") or {}).get("targetRef") or {}).get("name")
        with self._lock:
            if etype == "DELETED":
                self._targets.pop(key, None)
            elif isinstance(target, str):
                self._targets[key] = f"{_meta(obj).get('namespace', '')}/{target}"
        if etype == "DELETED":
            self._forget(key)
        elif canary_changed(etype, obj, prev):
            self._trigger(key)

    def _canaries_of(self, target_key: str) -> list[str]:
        with self._lock:
            return [k for k, t in self._targets.items() if t == target_key]

    def on_deployment(self, etype: str, obj: Obj, prev: Obj | None) -> None:
        dkey = _key(obj)
        with self._lock:
            if etype == "DELETED":
                self._deployments.pop(dkey, None)
            else:
                self._deployments[dkey] = obj
        if deployment_changed(etype, obj, prev):
            for key in self._canaries_of(dkey):
                self._trigger(key)

    def on_config(self, etype: str, obj: Obj, prev: Obj | None) -> None:
        if not config_changed(etype, obj, prev):
            return
        kind, meta = obj.get("kind", ""), _meta(obj)
        ref = (kind, meta.get("name", ""))
        prefix = f"{meta.get('namespace', '')}/"
        with self._lock:
            targets = {k: v for k, v in self._deployments.items() if k.startswith(prefix)}
        for dkey, dep in targets.items():
            if ref in self._config_refs(dep):
                for key in self._canaries_of(dkey):
                    self._trigger(key)
