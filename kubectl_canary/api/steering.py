"""Which steering request (abort, promote, pause, resume, retry) a canary accepts, and when.

The one statement of the rules: the agent's core answers requests by them, and the plugin
refuses by them before it writes a request the agent would refuse anyway. Each side words the
refusal itself (an Event for the agent, an error line for the plugin); what is refused is the
same.

- abort, pause, promote: only while a release is in flight (Progressing, Waiting,
  WaitingPromotion). Once Promoting or Finalising it is too late: the primary already runs
  the new template, so "rolling back" would route everything to the very revision aborted.
- pause: not twice; resume: only a paused canary.
- retry: only a Failed canary (its revision is analysed again, no spec change).
- promote without --skip-analysis is judged by this tick's checks, so it needs an analysis
  that has started (traffic reached the canary); only the agent can tell that.
- nothing is accepted from a canary being deleted.
"""

from __future__ import annotations

from enum import Enum

from kubectl_canary.api.model import Phase, RequestAction


class Refusal(Enum):
    DELETING = "deleting"
    NOT_FAILED = "not failed"  # retry outside Failed
    NOT_PAUSED = "not paused"  # resume of a canary that runs
    TOO_LATE = "too late"  # the primary already runs the new template
    NOT_IN_FLIGHT = "not in flight"  # no release to steer
    ALREADY_PAUSED = "already paused"
    NOT_ANALYSING = "not analysing"  # promote on checks before any check could run


IN_FLIGHT = frozenset({Phase.PROGRESSING, Phase.WAITING, Phase.WAITING_PROMOTION})
TOO_LATE = frozenset({Phase.PROMOTING, Phase.FINALISING})
# The phases whose ticks run checks, so a promote can be judged by them.
ANALYSING = frozenset({Phase.PROGRESSING, Phase.WAITING_PROMOTION})


def refusal(
    action: RequestAction, phase: str, *, paused: bool, deleting: bool = False
) -> Refusal | None:
    """Why `action` cannot be taken in `phase` (a Phase value, or any stored text), or None.

    A promote that passes here may still be refused by `promote_refusal` when it waits on
    checks.
    """
    if deleting:
        return Refusal.DELETING
    if action is RequestAction.RETRY:
        return None if phase == Phase.FAILED else Refusal.NOT_FAILED
    if action is RequestAction.RESUME:
        return None if paused else Refusal.NOT_PAUSED
    if phase in TOO_LATE:
        return Refusal.TOO_LATE
    if phase not in IN_FLIGHT:
        return Refusal.NOT_IN_FLIGHT
    if action is RequestAction.PAUSE and paused:
        return Refusal.ALREADY_PAUSED
    return None


def promote_refusal(phase: str, analysis_started: bool) -> Refusal | None:
    """Why a promote that waits on this tick's checks cannot be judged now, or None."""
    if phase not in ANALYSING or not analysis_started:
        return Refusal.NOT_ANALYSING
    return None
