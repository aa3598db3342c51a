"""The moves every path shares: start or restart an analysis, promote, finalise, roll back.

Each function emits its events in Flagger's order and wording and leaves the status of the
phase it enters; callers decide when a move is due.
"""

from __future__ import annotations

from agent.core.tick import Tick
from agent.core.types import Notify, PromoteTemplate, ScaleTarget, SetRoutes
from agent.core.weights import TOTAL_WEIGHT
from kubectl_canary.api.model import Phase


def canary_replicas(t: Tick) -> int:
    """Replicas for a scaled-up canary: as many as the primary serves with, at least one."""
    return max(1, t.obs.primary.replicas)


def _reset_counters(t: Tick) -> None:
    t.update(canary_weight=0, failed_checks=0, iterations=0, waiting_since="", last_metrics=())


def start_analysis(t: Tick, announcement: str) -> None:
    """Begin analysing the target's revision, behind any confirm-rollout gate.

    A closed gate parks the canary in Waiting with one Warning; an open one scales the canary
    up and enters Progressing. The analysis starts once the canary is ready (Flagger: one
    interval later, whatever the rollout took).
    """
    revision = t.obs.target.template_hash
    t.update(last_applied_spec=revision)
    for webhook in t.hooks("confirm-rollout"):
        result = t.results.gate(webhook, Phase.PROGRESSING.value)
        if result is not None and not result.ok:
            if t.status.phase != Phase.WAITING:
                _reset_counters(t)
                t.update(paused=False)
                t.enter(Phase.WAITING)
            t.event(
                f"Halt {t.display} advancement waiting for approval {webhook.name}",
                warning=True,
                once=True,
            )
            return
    if t.status.phase == Phase.WAITING:
        for webhook in t.hooks("confirm-rollout"):
            t.event(f"Confirm-rollout check {webhook.name} passed")
    t.event(announcement)
    t.act(ScaleTarget(canary_replicas(t)))
    _reset_counters(t)
    _await_canary(t)
    t.enter(Phase.PROGRESSING)


def _await_canary(t: Tick) -> None:
    """The first step runs as soon as the canary is ready (no interval before it), and the
    wait for its pods counts from now: recorded here, the ticks that meet it still rolling
    out change nothing and write nothing."""
    t.update(last_analysis_time="", waiting_since=t.now_text)


def restart_analysis(t: Tick) -> None:
    """A new revision during the analysis: all traffic back to the primary, start over."""
    t.event(f"New revision detected! Restarting analysis for {t.target_display}")
    t.act(SetRoutes(TOTAL_WEIGHT, 0))
    _reset_counters(t)
    t.update(last_applied_spec=t.obs.target.template_hash)
    _await_canary(t)
    t.enter(Phase.PROGRESSING)


def start_promotion(t: Tick) -> None:
    """Copy the analysed template to the primary; traffic moves back as soon as it is rolled
    out (no step taken yet in this phase: `lastAnalysisTime` empty)."""
    t.event(f"Copying {t.target_display} template spec to {t.primary_display}")
    _promote_template(t)
    t.update(last_analysis_time="", waiting_since="")
    t.enter(Phase.PROMOTING)


def _promote_template(t: Tick) -> None:
    # An HPA scales the primary through its `-primary` copy: copying the target's count would
    # fight it.
    t.act(PromoteTemplate(with_replicas=not t.obs.hpa_present))


def _notify_post_rollout(t: Tick) -> None:
    hooks = t.hooks("post-rollout")
    if hooks:
        t.act(Notify(hooks, t.status.phase.value))


def _succeed(t: Tick) -> None:
    t.update(
        canary_weight=0,
        last_promoted_spec=t.status.last_applied_spec,
        waiting_since="",
        paused=False,
        last_analysis_time=t.now_text,
    )
    t.enter(Phase.SUCCEEDED)
    _notify_post_rollout(t)


def finalise(t: Tick) -> None:
    """Traffic is back on the promoted primary: scale the canary down, Succeeded."""
    t.act(ScaleTarget(0))
    _succeed(t)
    t.event(f"Promotion completed! Scaling down {t.target_display}")


def promote_skipping_analysis(t: Tick) -> None:
    """skipAnalysis (or `promote --skip-analysis`): promote at once, no checks (Flagger)."""
    t.act(SetRoutes(TOTAL_WEIGHT, 0))
    t.event(f"Copying {t.target_display} template spec to {t.primary_display}")
    _promote_template(t)
    t.act(ScaleTarget(0))
    _succeed(t)
    t.event(f"Promotion completed! Canary analysis was skipped for {t.target_display}")


def rollback(t: Tick, *reasons: str) -> None:
    """All traffic to the primary, canary scaled to zero, phase Failed.

    The revision is remembered in `lastFailedSpec`: it is never analysed again without a
    `retry` request. Failed checks are kept (Flagger resets them) so status shows why.
    """
    for reason in reasons:
        t.event(reason, warning=True)
    t.act(SetRoutes(TOTAL_WEIGHT, 0))
    failed = t.status.last_applied_spec or t.obs.target.template_hash
    t.update(canary_weight=0, last_failed_spec=failed, waiting_since="", paused=False)
    t.enter(Phase.FAILED)
    t.event(f"Canary failed! Scaling down {t.display}", warning=True)
    t.act(ScaleTarget(0))
    _notify_post_rollout(t)
