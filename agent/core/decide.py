"""The release loop's decision: `decide(canary, observations, now) -> Decision`.

Pure: no I/O, no clock, no client. The same inputs always give the same decision, which is the
new status plus the ordered actions for the runtime. Flagger's semantics (phases, ordering,
event wording) with these deliberate differences (see docs/release-semantics.md):

- Weights: `stepWeight` steps are capped at `maxWeight` (20/50 goes 20, 40, 50; Flagger 60).
- The tick with the `threshold`-th failed check rolls back at once (Flagger waits one more
  interval with the bad canary still taking traffic).
- Every failing metric of a tick gets its own Warning (Flagger stops at the first); the tick
  still counts as one failed check.
- Analysis steps run at most once per `interval` (`status.lastAnalysisTime`), however often
  the runtime ticks; new revisions, requests and deletion are handled at once.
- No idle intervals: the first step runs as soon as the canary is ready, traffic goes back as
  soon as the primary is rolled out, and Finalising finishes at once (Flagger waits an interval
  before each); a rollout wait is reported only once it lasts an interval.
- A failed revision never runs again without the `retry` request (`status.lastFailedSpec`).
- Waits (primary or canary not ready, closed gates, suspend, invalid spec) are recorded once,
  not every tick, so an idle tick leaves status unchanged.
- `stepWeightPromotion` with a zero canary weight routes everything back at once (Flagger
  stalls); blue/green routes all traffic to the canary for one checked interval before the
  promotion (Flagger); A/B iterations send `SetRoutes(0, 100, match=analysis.match)`.
- `rollback` webhooks are polled like Flagger's (a 2xx answer means roll back now); on a
  rollback, `post-rollout` webhooks are notified with phase Failed; `event` webhooks get every
  event.
- Deletion always hands the app back, whatever `revertOnDeletion` says (the agent holds its
  finalizer on every Canary; Flagger's default lets garbage collection delete the primary
  while the target sits at zero replicas). It reverts only once the restored target is ready,
  and drops the routing and the finalizer only once the apex Service's endpoints are the
  target's pods (or the progress deadline passed); it lets go at once when the target is gone
  or there is nothing of ours to hand back (never initialised).
- Onboarding is staged (Flagger staged it in 1.33): the apex Service and the routing object
  move to the primary only once its Service's endpoints are its pods, and the target is scaled
  to zero only once the apex Service's endpoints are (`lifecycle.initializing_tick`).
- The idempotent `Initialize` is re-emitted when the generated objects are missing and once per
  new Canary generation, so spec changes (ports, hosts) reach them (Flagger: every tick).

Two-pass protocol (types.py): when a tick needs webhook or metric results that were not given,
the decision holds only `RunGates`/`QueryMetrics` actions and the unchanged status; call again
at the same `now` with the results. A first pass asks for everything the tick may need, so the
second never asks again.
"""

from __future__ import annotations

from datetime import datetime

from agent.core import analysis, conditions, lifecycle, steering, transitions
from agent.core.tick import Tick
from agent.core.types import Decision, Initialize, Observations
from kubectl_canary.api.model import Canary, Phase
from kubectl_canary.api.steering import Refusal

_STEADY = (Phase.INITIALIZED, Phase.SUCCEEDED, Phase.FAILED)


def decide(canary: Canary, obs: Observations, now: datetime) -> Decision:
    """The new status of `canary` and the actions to take, given what was observed at `now`."""
    tick = Tick.start(canary, obs, now)
    _run(tick)
    return tick.decision()


def _run(t: Tick) -> None:
    request = steering.pending(t)
    if t.obs.deleting:
        lifecycle.deletion_tick(t)
        if request is not None:
            steering.refuse(t, request, steering.explain(t, Refusal.DELETING))
        return
    lifecycle.reconcile_finalizer(t)
    if not _spec_valid(t):
        if request is not None:
            steering.refuse(t, request, f"the spec of {t.display} is invalid")
        return
    if t.spec.suspend:
        t.event("skipping canary run as object is suspended", once=True)
        if request is not None:
            steering.refuse(t, request, f"{t.display} is suspended")
        return
    if not t.obs.target.exists:
        t.event(f"Target deployment {t.target_display} not found", warning=True, once=True)
        if request is not None:
            steering.refuse(t, request, f"target deployment {t.target_display} not found")
        return
    phase = t.status.phase
    if phase == Phase.INITIALIZING:
        lifecycle.initializing_tick(t)
        if request is not None:
            steering.refuse(t, request, f"{t.display} is still initializing")
        return
    if lifecycle.repair_tick(t):
        if request is not None:
            steering.refuse(t, request, f"{t.display} is being re-initialized")
        return
    if t.canary.generation != t.status.observed_generation:
        # The spec changed (ports, hosts, gateways...): bring the generated objects in line.
        t.act(Initialize())
    if request is not None and steering.handle(t, request):
        return
    _phase_tick(t)


def _phase_tick(t: Tick) -> None:
    phase = t.status.phase
    if phase in _STEADY:
        lifecycle.steady_tick(t)
    elif phase == Phase.WAITING:
        _waiting_tick(t)
    elif phase in (Phase.PROGRESSING, Phase.WAITING_PROMOTION):
        analysis.progressing_tick(t)
    elif phase == Phase.PROMOTING:
        analysis.promoting_tick(t)
    elif phase == Phase.FINALISING:
        analysis.finalising_tick(t)
    # Terminating without a deletion timestamp cannot happen; wait for the next observation.


def _waiting_tick(t: Tick) -> None:
    """Waiting behind confirm-rollout: ask the gate again (for the latest revision)."""
    revision = t.obs.target.template_hash
    if revision and revision == t.status.last_failed_spec:
        lifecycle.steady_tick(t)
        return
    transitions.start_analysis(t, f"New revision detected! Scaling up {t.target_display}")


def _spec_valid(t: Tick) -> bool:
    """The Valid condition: True from the first tick (so `kubectl get` shows it for every
    canary), False with one Warning for a bad spec, True again once fixed."""
    error = t.obs.spec_error
    current = conditions.find(t.status.conditions, conditions.VALID)
    if error is None:
        if current is None or current.status != "True":
            valid = conditions.upsert(
                t.status.conditions,
                conditions.VALID,
                "True",
                "SpecValid",
                "Spec is valid.",
                t.now_text,
            )
            t.update(conditions=valid)
        return True
    invalid = conditions.upsert(
        t.status.conditions, conditions.VALID, "False", "InvalidSpec", error, t.now_text
    )
    t.update(conditions=invalid)
    t.event(f"Invalid spec of {t.display}: {error}", warning=True, reason="InvalidSpec", once=True)
    return False
