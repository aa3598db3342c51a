"""Steering requests from the plugin (abort, promote, pause, resume, retry): accept or
refuse each, exactly once.

The plugin writes a request into an annotation; the agent alone writes status, acknowledging
each request id once in `status.lastRequest` and in history. Which request is accepted in which
phase is `kubectl_canary.api.steering` (the plugin refuses by the same rules); this module
carries the accepted ones out and words the refusals as Flagger-style events:
- abort: roll back; promote --skip-analysis: promote now without checks;
- promote: skip the remaining steps and any confirm-* gate, but only if this tick's checks
  pass; refused (with the failing check) otherwise;
- pause: freeze a release in flight (no checks, no steps, weights kept); resume: continue;
- retry: analyse the target's current revision again, no spec change.
"""

from __future__ import annotations

from agent.core import analysis, transitions
from agent.core.tick import Tick
from kubectl_canary.api.model import Phase, Request, RequestAck, RequestAction
from kubectl_canary.api.steering import Refusal, promote_refusal, refusal

ACCEPTED = "RequestAccepted"
REFUSED = "RequestRefused"


def pending(t: Tick) -> Request | None:
    """The request to answer in this tick, or None (none, or already acknowledged)."""
    request = t.obs.request
    if request is None:
        return None
    last = t.status.last_request
    if last is not None and last.id == request.id:
        return None
    return request


def acknowledge(t: Tick, request: Request, accepted: bool, message: str) -> None:
    ack = RequestAck(request.id, request.action.value, accepted, message, t.now_text)
    t.update(last_request=ack)
    t.event(message, warning=not accepted, reason=ACCEPTED if accepted else REFUSED)


def refuse(t: Tick, request: Request, why: str) -> None:
    acknowledge(t, request, False, f"{_title(request)} refused: {why}")


def _title(request: Request) -> str:
    return request.action.value.capitalize()


def explain(t: Tick, why: Refusal) -> str:
    """The agent's wording of a refusal by the steering rules."""
    phase = t.status.phase.value
    if why is Refusal.DELETING:
        return f"{t.display} is being deleted"
    if why is Refusal.NOT_PAUSED:
        return f"{t.display} is not paused"
    if why is Refusal.NOT_FAILED:
        return f"{t.display} is {phase}; only a Failed canary can be retried"
    if why in (Refusal.TOO_LATE, Refusal.NOT_IN_FLIGHT):
        return f"{t.display} is {phase}; no release is in progress"
    if why is Refusal.ALREADY_PAUSED:
        return f"{t.display} is already paused"
    return (
        f"the analysis of {t.display} has not started yet, there is nothing to judge; "
        f"promote with --skip-analysis to promote without checks"
    )


def handle(t: Tick, request: Request) -> bool:
    """Answer `request`; True when it used up the tick (nothing else to do this time)."""
    why = refusal(request.action, t.status.phase, paused=t.status.paused)
    if why is not None:
        refuse(t, request, explain(t, why))
        return False
    action = request.action
    if action == RequestAction.RESUME:
        t.update(paused=False, waiting_since="")
        acknowledge(t, request, True, f"Resume requested: advancement of {t.display} resumed")
        return False
    if action == RequestAction.RETRY:
        revision = t.obs.target.template_hash
        acknowledge(
            t, request, True, f"Retry requested: analysing revision {revision} of {t.display} again"
        )
        t.update(last_failed_spec="")
        transitions.start_analysis(t, f"Retrying analysis! Scaling up {t.target_display}")
        return True
    if action == RequestAction.ABORT:
        acknowledge(t, request, True, f"Abort requested: rolling back {t.display}")
        transitions.rollback(t)
        return True
    if action == RequestAction.PAUSE:
        t.update(paused=True)
        acknowledge(
            t,
            request,
            True,
            f"Pause requested: advancement of {t.display} paused at canary weight "
            f"{t.status.canary_weight}",
        )
        return True
    if request.skip_analysis:
        acknowledge(t, request, True, f"Promote requested: promoting {t.display} without analysis")
        transitions.promote_skipping_analysis(t)
        return True
    return _promote_after_checks(t, request)


def _promote_after_checks(t: Tick, request: Request) -> bool:
    why = promote_refusal(t.status.phase, analysis.analysis_started(t))
    if why is not None:
        refuse(t, request, explain(t, why))
        return False
    t.promotion_forced = True
    analysis.progressing_tick(t)
    if t.status.phase in (Phase.PROMOTING, Phase.SUCCEEDED):
        acknowledge(
            t, request, True, f"Promote requested: checks passed, promoting {t.display} now"
        )
    else:
        last = t.status.history[-1].message if t.status.history else "checks did not pass"
        refuse(t, request, f"{t.display} was not promoted: {last}")
    return True
