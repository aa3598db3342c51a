"""Which watch events make a canary tick at once (instead of at its next interval).

Relevant: a Canary created, its spec/annotations/finalizers changed or its deletion begun (not
our own status writes, or every write would tick again); its target or primary Deployment
created, deleted, given a new spec (a new revision) or moved on in its rollout (the status
fields readiness is judged on), so a wait for a rollout ends on the event that ends it; a
tracked ConfigMap/Secret changed. The core still advances analysis at most once per interval
(it compares `now` with the last step).
"""

from __future__ import annotations

import threading
from collections.abc import Callable

from kubectl_canary.objects.names import primary_deployment_name
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


def _rollout(dep: Obj) -> tuple[object, ...]:
    """What readiness is judged on (agent/observe.py): the controller's progress, not the
    heartbeat timestamps its conditions carry."""
    status = dep.get("status") or {}
    conditions = tuple(
        (c.get("type"), c.get("status"), c.get("reason")) for c in status.get("conditions") or []
    )
    counts = ("replicas", "updatedReplicas", "readyReplicas", "availableReplicas")
    return (status.get("observedGeneration"), *(status.get(k) for k in counts), conditions)


def deployment_changed(etype: str, obj: Obj, prev: Obj | None) -> bool:
    if etype != "MODIFIED" or prev is None:
        return True
    new_spec = _meta(prev).get("generation") != _meta(obj).get("generation")
    return new_spec or _rollout(prev) != _rollout(obj)


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
        # canary key -> "namespace/name" of its target and of its primary Deployment
        self._workloads: dict[str, tuple[str, str]] = {}
        self._deployments: dict[str, Obj] = {}  # "namespace/target name" -> last target seen

    def on_canary(self, etype: str, obj: Obj, prev: Obj | None) -> None:
        key = _key(obj)
        target = ((obj.get("spec") or {}).get("targetRef") or {}).get("name")
        with self._lock:
            if etype == "DELETED":
                self._workloads.pop(key, None)
            elif isinstance(target, str):
                ns = _meta(obj).get("namespace", "")
                self._workloads[key] = (f"{ns}/{target}", f"{ns}/{primary_deployment_name(target)}")
        if etype == "DELETED":
            self._forget(key)
        elif canary_changed(etype, obj, prev):
            self._trigger(key)

    def _canaries_of(self, deployment_key: str, primaries: bool = False) -> list[str]:
        """The canaries whose target (or, with `primaries`, also primary) it is."""
        with self._lock:
            return [
                k
                for k, (target, primary) in self._workloads.items()
                if deployment_key == target or (primaries and deployment_key == primary)
            ]

    def on_deployment(self, etype: str, obj: Obj, prev: Obj | None) -> None:
        dkey = _key(obj)
        with self._lock:
            if etype == "DELETED":
                self._deployments.pop(dkey, None)
            else:
                self._deployments[dkey] = obj
        if deployment_changed(etype, obj, prev):
            for key in self._canaries_of(dkey, primaries=True):
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
