"""One tick of a release in flight: Progressing, WaitingPromotion, Promoting, Finalising.

Order within an analysis tick (Flagger's): revision changed? -> paused? -> primary ready? ->
canary ready (else wait, up to the progress deadline)? -> skipAnalysis? -> due? -> rollback
webhook? -> threshold? -> checks (pre-rollout hooks on the first step, else rollout hooks and
metrics) -> one step of the strategy (weight, iteration, or promotion behind its gates).
"""

from __future__ import annotations

from collections.abc import Callable

from agent.core import readiness, transitions, weights
from agent.core.checks import judge
from agent.core.tick import Tick
from agent.core.timestamps import seconds_since
from agent.core.types import ScaleTarget, SetRoutes
from agent.core.weights import TOTAL_WEIGHT
from kubectl_canary.api.model import Phase


def progressing_tick(t: Tick) -> None:
    """Progressing or WaitingPromotion: analyse, then advance, promote or roll back."""
    revision = t.obs.target.template_hash
    if revision != t.status.last_applied_spec:
        if revision and revision == t.status.last_failed_spec:
            t.update(last_applied_spec=revision)
            transitions.rollback(t, _failed_before(t))
        else:
            transitions.restart_analysis(t)
        return
    if t.status.paused and not t.promotion_forced:
        return
    if not _primary_ready(t) or not _canary_ready(t):
        return
    if t.spec.skip_analysis:
        transitions.promote_skipping_analysis(t)
        return
    if not t.promotion_forced and not t.due():
        return
    if _rollback_signalled(t):
        return
    threshold = t.analysis.threshold
    if t.status.failed_checks >= threshold:
        transitions.rollback(t, _threshold_message(t))
        return
    t.update(last_analysis_time=t.now_text)
    if not _checks_pass(t):
        failed = t.status.failed_checks + 1
        t.update(failed_checks=failed)
        if failed >= threshold:
            transitions.rollback(t, _threshold_message(t))
        return
    if t.promotion_forced:
        transitions.start_promotion(t)
    elif t.analysis.strategy == "canary":
        _step_canary(t)
    elif t.analysis.strategy == "blue-green":
        _step_blue_green(t)
    else:
        _step_ab(t)


def analysis_started(t: Tick) -> bool:
    """False before the first step: no traffic has reached the canary, nothing to judge."""
    mirrored = t.analysis.mirror and t.obs.routes is not None and t.obs.routes.mirror
    return t.status.canary_weight > 0 or t.status.iterations > 0 or mirrored


def _failed_before(t: Tick) -> str:
    return (
        f"Rolling back {t.display} revision {t.obs.target.template_hash} failed its analysis "
        f"before; retry it to analyse it again"
    )


def _threshold_message(t: Tick) -> str:
    return f"Rolling back {t.display} failed checks threshold reached {t.status.failed_checks}"


def _primary_ready(t: Tick) -> bool:
    threshold = t.analysis.primary_ready_threshold
    if readiness.is_ready(t.obs.primary, threshold):
        return True
    reason = readiness.waiting_reason(t.obs.primary, threshold)
    t.event(f"{t.primary_display} not ready: {reason}", warning=True, once=True)
    return False


def _canary_ready(t: Tick) -> bool:
    """Wait for the canary's pods (no failed check) until progressDeadlineSeconds."""
    target = t.obs.target
    threshold = t.analysis.canary_ready_threshold
    if readiness.is_ready(target, threshold):
        if t.status.waiting_since:
            t.update(waiting_since="")
        return True
    if target.exists and target.replicas == 0:
        # The scale-up was lost (or undone by someone): ask again rather than wait forever.
        t.act(ScaleTarget(transitions.canary_replicas(t)))
    if not t.status.waiting_since:
        t.update(waiting_since=t.now_text)
    waited = seconds_since(t.status.waiting_since, t.now) or 0.0
    reason = readiness.waiting_reason(target, threshold)
    not_ready = f"canary deployment {t.target_display} not ready: {reason}"
    if target.deadline_exceeded or waited >= t.spec.progress_deadline_seconds:
        transitions.rollback(t, f"Rolling back {t.display} progress deadline exceeded {not_ready}")
        return False
    if t.interval_passed(t.status.waiting_since):
        # Said once the wait outlasts an interval (what Flagger's next tick would meet): the
        # ticks that watch events bring during an ordinary rollout leave status unchanged.
        t.event(not_ready, warning=True, once=True)
    t.requeue_within(t.spec.progress_deadline_seconds - waited)
    return False


def _rollback_signalled(t: Tick) -> bool:
    """Flagger's `rollback` webhooks are polled: a 2xx answer means "roll back now"."""
    for webhook in t.hooks("rollback"):
        result = t.results.gate(webhook, t.status.phase.value)
        if result is not None and result.ok:
            transitions.rollback(
                t,
                f"Rollback check {webhook.name} passed",
                f"Rolling back {t.display} manual webhook invoked",
            )
            return True
    return False


def _checks_pass(t: Tick) -> bool:
    """Run this step's checks; each failure is a Warning event. True when all passed."""
    failures: list[str] = []
    progressing = Phase.PROGRESSING.value
    if not analysis_started(t):
        t.event(f"Starting canary analysis for {t.target_display}")
        for webhook in t.hooks("pre-rollout"):
            result = t.results.gate(webhook, progressing)
            if result is not None and not result.ok:
                failures.append(
                    f"Halt {t.display} advancement pre-rollout check {webhook.name} "
                    f"failed {result.message}"
                )
                break
            t.event(f"Pre-rollout check {webhook.name} passed")
    else:
        for webhook in t.hooks("rollout"):
            result = t.results.gate(webhook, progressing)
            if result is not None and not result.ok:
                failures.append(
                    f"Halt {t.display} advancement external check {webhook.name} "
                    f"failed {result.message}"
                )
                break
        values = []
        for metric in t.analysis.metrics:
            metric_result = t.results.metric(metric)
            if metric_result is None:
                continue
            verdict = judge(
                metric,
                metric_result,
                canary_display=t.display,
                target_display=t.target_display,
                provider=t.spec.provider,
                time=t.now_text,
            )
            values.append(verdict.value)
            if verdict.failure is not None:
                failures.append(verdict.failure)
        if values:
            t.update(last_metrics=tuple(values))
    for failure in failures:
        t.event(failure, warning=True)
    return not failures


def _gates_open(t: Tick, type_: str, halted: Callable[[str], str], label: str) -> bool:
    """Ask every `type_` gate; the first closed one halts with a once-only Warning."""
    hooks = t.hooks(type_)
    for webhook in hooks:
        result = t.results.gate(webhook, Phase.PROGRESSING.value)
        if result is not None and not result.ok:
            t.event(halted(webhook.name), warning=True, once=True)
            return False
    for webhook in hooks:
        t.event(f"{label} check {webhook.name} passed")
    return True


def _promotion_approved(t: Tick) -> bool:
    def halted(name: str) -> str:
        return f"Halt {t.display} advancement waiting for promotion approval {name}"

    if _gates_open(t, "confirm-promotion", halted, "Confirm-promotion"):
        return True
    t.enter(Phase.WAITING_PROMOTION)
    return False


def _step_canary(t: Tick) -> None:
    weight = t.status.canary_weight
    following = weights.next_weight(t.analysis, weight)
    mirrored = t.obs.routes is not None and t.obs.routes.mirror
    if following is None:
        if _promotion_approved(t):
            transitions.start_promotion(t)
        return

    def halted(name: str) -> str:
        return f"Halt {t.display} advancement waiting for traffic increase approval {name}"

    if not mirrored and not _gates_open(
        t, "confirm-traffic-increase", halted, "Confirm-traffic-increase"
    ):
        return
    if t.analysis.mirror and weight == 0 and not mirrored:
        # Flagger's mirror step: one interval of mirrored traffic before any real weight.
        t.act(SetRoutes(TOTAL_WEIGHT, 0, mirror=True))
        t.event(f"Advance {t.display} canary weight 0 with traffic mirroring")
        return
    t.act(SetRoutes(TOTAL_WEIGHT - following, following))
    t.update(canary_weight=following)
    t.enter(Phase.PROGRESSING)
    t.event(f"Advance {t.display} canary weight {following}")


def _step_blue_green(t: Tick) -> None:
    """Iterations on the canary service (no weight); then all traffic to it; then promote."""
    total = t.analysis.iterations
    done = t.status.iterations
    if done < total:
        mirrored = t.obs.routes is not None and t.obs.routes.mirror
        if t.analysis.mirror and not mirrored:
            t.act(SetRoutes(TOTAL_WEIGHT, 0, mirror=True))
        t.update(iterations=done + 1)
        t.event(f"Advance {t.display} canary iteration {done + 1}/{total}")
        return
    if not _promotion_approved(t):
        return
    if done == total:
        # Flagger checks the canary under all the traffic for one more interval first.
        if t.analysis.mirror:
            t.event("Stop traffic mirroring and route all traffic to canary")
        else:
            t.event("Routing all traffic to canary")
        t.act(SetRoutes(0, TOTAL_WEIGHT))
        t.update(canary_weight=TOTAL_WEIGHT, iterations=total + 1)
        t.enter(Phase.PROGRESSING)
        return
    transitions.start_promotion(t)


def _step_ab(t: Tick) -> None:
    """Iterations with matching requests on the canary; everything else stays on the primary."""
    total = t.analysis.iterations
    done = t.status.iterations
    if done < total:
        # As in Flagger, the A/B route (requests matching analysis.match) goes all to the canary;
        # routers keep every other request on the primary.
        t.act(SetRoutes(0, TOTAL_WEIGHT, match=t.analysis.match))
        t.update(iterations=done + 1)
        t.event(f"Advance {t.display} canary iteration {done + 1}/{total}")
        return
    if _promotion_approved(t):
        transitions.start_promotion(t)


def promoting_tick(t: Tick) -> None:
    """Once the primary runs the promoted revision, move traffic back to it."""
    primary = t.obs.primary
    threshold = t.analysis.primary_ready_threshold
    copied = primary.template_hash
    if copied and copied != t.status.last_applied_spec and copied == t.obs.target.template_hash:
        # The target changed between the decision and the copy: the newer template reached the
        # primary unanalysed. Say so once, and finish the promotion of what the primary runs
        # rather than wait forever for a template that will never come back.
        t.event(
            f"Revision {copied} of {t.target_display} changed during the promotion and was "
            f"copied to {t.primary_display} without analysis",
            warning=True,
        )
        t.update(last_applied_spec=copied)
    updated = not copied or copied == t.status.last_applied_spec
    if not updated or not readiness.is_ready(primary, threshold):
        if updated:
            reason = readiness.waiting_reason(primary, threshold)
        else:
            reason = "waiting for rollout to finish: the promoted template is not rolled out yet"
        if t.interval_passed(t.status.last_transition_time):
            # As for the canary: only a rollout that outlasts an interval is reported.
            t.event(f"{t.primary_display} not ready: {reason}", warning=True, once=True)
        return
    # The first move back waits only for the rollout; further primary-weight steps are paced.
    if not t.due():
        return
    t.update(last_analysis_time=t.now_text)
    weight = t.status.canary_weight
    step = t.analysis.step_weight_promotion
    if step > 0 and weight > 0:
        remaining = weights.promotion_step(weight, step)
        t.act(SetRoutes(TOTAL_WEIGHT - remaining, remaining))
        t.update(canary_weight=remaining)
        t.event(f"Advance {t.display} primary weight {TOTAL_WEIGHT - remaining}")
        if remaining == 0:
            _finalising(t)
        return
    t.event("Routing all traffic to primary")
    t.act(SetRoutes(TOTAL_WEIGHT, 0))
    t.update(canary_weight=0)
    _finalising(t)


def _finalising(t: Tick) -> None:
    """Traffic is back on the primary (the routes were set in this tick): finish next tick,
    at once (Flagger: one interval later)."""
    t.enter(Phase.FINALISING)
    t.proceed()


def finalising_tick(t: Tick) -> None:
    transitions.finalise(t)
