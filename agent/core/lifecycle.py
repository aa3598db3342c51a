"""Before and after releases: initialisation, the steady phases, the finalizer and deletion."""

from __future__ import annotations

from agent.core import readiness, transitions
from agent.core.tick import MIN_REQUEUE_SECONDS, Tick
from agent.core.timestamps import seconds_since
from agent.core.types import (
    AddFinalizer,
    Initialize,
    RemoveFinalizer,
    RestoreTargetTemplate,
    Revert,
    RevertRouting,
    ScaleTarget,
)
from kubectl_canary.api.model import FINALIZER, Phase

# While initialising, look again sooner than a long analysis interval: nothing is analysed,
# we only wait for the primary's pods.
INITIALIZING_REQUEUE_SECONDS = 10.0
# After the apex Service's selector changed, the endpoints controller follows within a second
# or two; nothing triggers a tick when it does (Endpoints are not watched), so poll: at the
# smallest requeue at first, then at a tenth of the time waited so far (`waitingSince`, which
# the wait for the primary's rollout may have set), at most every 5 s: a slow endpoints
# controller (1,000 canaries onboarding at once) is not polled every second by all of them.
ENDPOINTS_REQUEUE_SECONDS = MIN_REQUEUE_SECONDS
ENDPOINTS_BACKOFF_SHARE = 0.1
ENDPOINTS_MAX_POLL_SECONDS = 5.0


def reconcile_finalizer(t: Tick) -> None:
    """Hold the finalizer on every Canary the agent manages, whatever `revertOnDeletion` says:
    without it, deleting the Canary lets garbage collection take the primary (and an apex
    Service we created) while the target sits at zero replicas, a full outage. Canaries made
    before this rule get it on their next tick."""
    if FINALIZER not in t.canary.finalizers:
        t.act(AddFinalizer())


def initializing_tick(t: Tick) -> None:
    """Onboard in three steps, so the name users call always has a ready endpoint behind it:

    1. create the primary Deployment and its Services, leaving the apex Service and the
       routing object alone (a user's keeps sending traffic to the target's pods);
    2. once the primary is ready and the primary Service's endpoints are its pods, point the
       apex Service and the routing object at the primary (taking a user's over);
    3. once the routing object is ours and the apex Service's endpoints are the primary's
       pods, scale the target to zero.

    The first deployment is promoted without analysis (Flagger): the target's revision
    becomes both the last applied and the last promoted one.
    """
    primary = t.obs.primary
    threshold = t.analysis.primary_ready_threshold
    ready = readiness.is_ready(primary, threshold)
    routed = t.obs.routes is not None
    t.act(Initialize(routing=routed or (ready and t.obs.primary_service_on_primary is True)))
    t.enter(Phase.INITIALIZING)
    if ready and routed and t.obs.apex_on_primary is True:
        t.act(ScaleTarget(0))
        revision = t.obs.target.template_hash
        t.update(
            last_applied_spec=revision,
            last_promoted_spec=revision,
            canary_weight=0,
            waiting_since="",
        )
        t.enter(Phase.INITIALIZED)
        t.event(f"Initialization done! {t.display}")
        return
    if ready:
        # Only the endpoints controller is awaited (a second or two), and nothing triggers a
        # tick when it catches up (Endpoints are not watched): look again soon.
        if not t.status.waiting_since:
            t.update(waiting_since=t.now_text)
        waited = seconds_since(t.status.waiting_since, t.now) or 0.0
        poll = max(ENDPOINTS_REQUEUE_SECONDS, waited * ENDPOINTS_BACKOFF_SHARE)
        t.requeue_within(min(poll, ENDPOINTS_MAX_POLL_SECONDS, t.analysis.interval_seconds))
        return
    if primary.exists:
        if not t.status.waiting_since:
            t.update(waiting_since=t.now_text)
        if t.interval_passed(t.status.waiting_since):
            # Said once the wait outlasts an interval (what Flagger's next tick would meet):
            # the ticks the primary's rollout events bring leave status unchanged.
            reason = readiness.waiting_reason(primary, threshold)
            t.event(f"{t.primary_display} not ready: {reason}", warning=True, once=True)
    t.requeue_within(INITIALIZING_REQUEUE_SECONDS)


def steady_tick(t: Tick) -> None:
    """Initialized, Succeeded or Failed: start an analysis when the target has a new revision."""
    revision = t.obs.target.template_hash
    if revision == t.status.last_applied_spec:
        return
    if revision == t.status.last_failed_spec:
        # A revision that failed comes back (e.g. a revert of a later fix): not without retry.
        t.update(last_applied_spec=revision)
        t.enter(Phase.FAILED)
        t.event(
            f"Skipping analysis of {t.target_display}: revision {revision} failed its analysis "
            f"before; retry it to analyse it again",
            warning=True,
        )
        return
    transitions.start_analysis(t, f"New revision detected! Scaling up {t.target_display}")


def repair_tick(t: Tick) -> bool:
    """Recreate missing generated objects (primary or routing); True when something was missing."""
    if t.obs.primary.exists and t.obs.routes is not None:
        return False
    t.act(Initialize())
    missing = "primary deployment" if not t.obs.primary.exists else "routing object"
    t.event(f"The {missing} of {t.display} is missing, re-initializing", warning=True, once=True)
    return True


def deletion_tick(t: Tick) -> None:
    """The Canary is being deleted: give the app back to its target, then let go.

    Always, whatever `revertOnDeletion` says (it stays accepted for Flagger compatibility;
    docs/release-semantics.md compares this with Flagger's garbage collection). Three steps,
    each waited for: the target is scaled back up; once it is ready the apex Service is pointed
    at its pods (`Revert`); once the Service's ready endpoints are all the target's pods
    (`apex_on_target`), the routing object is restored or deleted (`RevertRouting`) and the
    finalizer removed. Garbage collection then deletes the primary: letting go as soon as the
    selector changed would let it delete pods the endpoints still list, and (with a mesh) drop
    the routing while the Service still sent traffic to them.

    A target holding a revision that was never promoted (a Failed release, or one deleted
    mid-analysis) gets the primary's last promoted template back first: Flagger would put that
    revision in front of every user unanalysed. After the progress deadline the revert is
    finished whatever the state, so a deletion is never blocked forever. Nothing waits when
    there is nothing to hand back: a target that is gone (or going, as in a namespace
    deletion), or a Canary with neither primary nor routing of its own (never initialised).
    """
    t.requeue = None
    if FINALIZER not in t.canary.finalizers:
        return  # nothing of ours holds the object; owner references clean up the rest
    target = t.obs.target
    if not target.exists or target.deleting:
        state = "being deleted" if target.exists else "not found"
        t.event(f"Target {t.target_display} {state}, nothing to revert; finalizer removed")
        t.act(RemoveFinalizer())
        return
    if not t.obs.primary.exists and t.obs.routes is None and target.replicas > 0:
        # No pod and no route of ours carries traffic: give back whatever was taken over
        # (idempotent, no-ops when nothing was) and let go at once.
        t.act(Revert())
        t.act(RevertRouting())
        t.act(RemoveFinalizer())
        t.event(
            f"Nothing of {t.display} serves traffic (no primary, no routing): "
            f"{t.target_display} keeps serving; finalizer removed"
        )
        return
    if t.status.phase != Phase.TERMINATING:
        t.update(waiting_since=t.now_text)
        t.enter(Phase.TERMINATING)
        t.event(f"Terminating {t.display}: restoring {t.target_display}{_whatever_revert(t)}")
    threshold = t.analysis.canary_ready_threshold
    promoted = t.status.last_promoted_spec
    restoring = bool(promoted) and t.obs.primary.exists and target.template_hash != promoted
    if restoring:
        t.act(RestoreTargetTemplate())
    service_handed_over = False
    if target.replicas == 0:
        t.act(ScaleTarget(transitions.canary_replicas(t)))
    elif not restoring and readiness.is_ready(target, threshold):
        t.act(Revert())
        if t.obs.apex_on_target:
            t.act(RevertRouting())
            t.act(RemoveFinalizer())
            t.event(f"Reverted {t.target_display}: finalizer removed")
            return
        service_handed_over = True
    apex = f"service {t.spec.service.name or t.spec.target_ref.name}.{t.canary.namespace}"
    if service_handed_over:
        reason = f"the endpoints of {apex} are not all its pods yet"
    elif restoring:
        reason = f"restoring its last promoted revision {promoted} (the current one never was)"
    else:
        reason = readiness.waiting_reason(target, threshold)
    waited = seconds_since(t.status.waiting_since, t.now) or 0.0
    if waited >= t.spec.progress_deadline_seconds:
        if not service_handed_over:
            t.act(Revert())
        t.act(RevertRouting())
        t.act(RemoveFinalizer())
        condition = reason if service_handed_over else f"it is not ready ({reason})"
        t.event(
            f"Reverted {t.target_display} although {condition}: "
            f"progress deadline exceeded; finalizer removed",
            warning=True,
        )
        return
    if service_handed_over:
        t.event(
            f"Waiting for the endpoints of {apex} to be the pods of {t.target_display} "
            f"before reverting the routing",
            once=True,
        )
        t.requeue = ENDPOINTS_REQUEUE_SECONDS
        return
    t.event(f"Waiting for {t.target_display} before reverting: {reason}", once=True)
    t.requeue = min(t.analysis.interval_seconds, INITIALIZING_REQUEUE_SECONDS)


def _whatever_revert(t: Tick) -> str:
    """Said once, when a Canary that does not ask for it is reverted: Flagger would delete the
    primary with it and leave the target at zero replicas."""
    if t.spec.revert_on_deletion:
        return ""
    return " (deleting a Canary always hands the app back, revertOnDeletion: false included)"
