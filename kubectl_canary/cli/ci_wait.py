"""`status NAME --wait`: block until the current release ends, for CI."""

from __future__ import annotations

from typing import Any

from kubectl_canary.cli.errors import CliError, TimeoutExceeded
from kubectl_canary.cli.options import Session
from kubectl_canary.cli.reads import get_canary, parse
from kubectl_canary.objects.names import primary_name

Obj = dict[str, Any]

POLL_SECONDS = 1.0


def _same_template(primary: Obj | None, target: Obj | None) -> bool:
    """The primary runs what the target declares (the release is done, not yet to start)."""
    if primary is None or target is None:
        return False
    p = primary.get("spec", {}).get("template", {}).get("spec")
    t = target.get("spec", {}).get("template", {}).get("spec")
    return bool(p == t)


def wait_for_outcome(session: Session, name: str, timeout: float) -> Obj:
    """Block until the current release ends: Succeeded returns, Failed/timeout raise.

    A phase left over from an earlier release is not an outcome: Succeeded counts once the primary
    runs the target's template; a Failed found at the start counts once the agent has had one
    analysis interval to pick up a newer revision (it would leave Failed if there were one).
    """
    from kubectl_canary.api.model import Phase

    kube, ns, runtime = session.kube, session.namespace, session.runtime
    start = runtime.monotonic()
    first = get_canary(kube, ns, name)
    stale_failed_until = start + parse(first).spec.analysis.interval_seconds + 5
    seen_active = False
    obj = first
    while True:
        phase = (obj.get("status") or {}).get("phase", "")
        target_name = obj.get("spec", {}).get("targetRef", {}).get("name", name)
        if phase == Phase.SUCCEEDED.value:
            primary = kube.get("apps/v1", "Deployment", ns, primary_name(parse(obj)))
            target = kube.get("apps/v1", "Deployment", ns, target_name)
            if _same_template(primary, target):
                return obj
        elif phase == Phase.FAILED.value:
            if seen_active or runtime.monotonic() >= stale_failed_until:
                raise CliError(f"canary {name} failed: {last_message(obj)}")
        elif phase:
            seen_active = True
        if runtime.monotonic() - start >= timeout:
            raise TimeoutExceeded(
                f"timed out after {timeout:g}s waiting for canary {name} "
                f"(phase {phase or 'unknown'})"
            )
        runtime.sleep(POLL_SECONDS)
        obj = get_canary(kube, ns, name)


def last_message(obj: Obj) -> str:
    history = (obj.get("status") or {}).get("history") or []
    return history[-1].get("message", "") if history else "no history"
