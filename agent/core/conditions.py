"""Status conditions: `Promoted` (for `kubectl wait --for=condition=Promoted`) and `Valid`.

`Promoted` follows Flagger's mapping from phase to status and message: True once the primary
runs the target's revision (Initialized, Succeeded), False when the analysis failed, Unknown
while a release is in flight (so `--for=condition=Promoted=False` means failure, not "busy").
Times change only when something changed, so an idle tick leaves status byte-identical.
"""

from __future__ import annotations

from dataclasses import replace

from kubectl_canary.api.model import Condition, Phase

PROMOTED = "Promoted"
VALID = "Valid"

_PROMOTED_BY_PHASE: dict[Phase, tuple[str, str]] = {
    Phase.INITIALIZING: ("Unknown", "New deployment detected, starting initialization."),
    Phase.INITIALIZED: ("True", "Deployment initialization completed."),
    Phase.WAITING: ("Unknown", "Waiting for approval."),
    Phase.PROGRESSING: ("Unknown", "New revision detected, starting canary analysis."),
    Phase.WAITING_PROMOTION: ("Unknown", "Waiting for promotion approval."),
    Phase.PROMOTING: ("Unknown", "Canary analysis completed, starting primary rolling update."),
    Phase.FINALISING: ("Unknown", "Canary analysis completed, routing all traffic to primary."),
    Phase.SUCCEEDED: ("True", "Canary analysis completed successfully, promotion finished."),
    Phase.FAILED: ("False", "Canary analysis failed, deployment scaled to zero."),
    Phase.TERMINATING: ("Unknown", "Canary is being deleted, reverting the target."),
}


def find(conditions: tuple[Condition, ...], type_: str) -> Condition | None:
    for condition in conditions:
        if condition.type == type_:
            return condition
    return None


def upsert(
    conditions: tuple[Condition, ...],
    type_: str,
    status: str,
    reason: str,
    message: str,
    now: str,
) -> tuple[Condition, ...]:
    """`conditions` with `type_` set; unchanged (same object) when nothing differs."""
    current = find(conditions, type_)
    if current is None:
        added = Condition(type_, status, reason, message, now, now)
        return (*conditions, added)
    if (current.status, current.reason, current.message) == (status, reason, message):
        return conditions
    transition = now if current.status != status else current.last_transition_time
    updated = replace(
        current,
        status=status,
        reason=reason,
        message=message,
        last_transition_time=transition,
        last_update_time=now,
    )
    return tuple(updated if c.type == type_ else c for c in conditions)


def with_promoted(
    conditions: tuple[Condition, ...], phase: Phase, now: str
) -> tuple[Condition, ...]:
    """`conditions` with `Promoted` matching `phase`; its reason is the phase name (Flagger)."""
    status, message = _PROMOTED_BY_PHASE[phase]
    return upsert(conditions, PROMOTED, status, phase.value, message, now)
