"""The pace of a release: the interval paces checks and steps only; the waits for rollouts end
with them, and a phase that waits for nothing is left at once (issue 14)."""

from __future__ import annotations

from dataclasses import replace

from agent.core.decide import decide
from agent.core.tick import PROCEED_SECONDS
from agent.core.types import Decision, RequeueAfter, SetRoutes
from kubectl_canary.api.model import Phase
from tests.unit.core.builders import (
    analysis,
    at,
    canary,
    events,
    in_phase,
    observe,
    run_tick,
    stamp,
    workload,
)
from tests.unit.core.world import World

H2 = workload(template_hash="h2")  # the target running the revision under analysis
ROLLING = workload(ready=0, template_hash="h2")
PRIMARY_ROLLING = workload(ready=1, template_hash="h2")


def requeue(decision: Decision) -> float | None:
    found = [a.seconds for a in decision.actions if isinstance(a, RequeueAfter)]
    return found[0] if found else None


def detected() -> Decision:
    """The tick that meets revision h2 of a Succeeded canary."""
    return decide(canary(in_phase(Phase.SUCCEEDED)), observe(target=H2), at(0))


def test_detection_takes_no_step_and_starts_the_wait_for_the_canary() -> None:
    decision = detected()
    assert decision.status.phase == Phase.PROGRESSING
    assert decision.status.last_analysis_time == ""
    assert decision.status.waiting_since == stamp(0)


def test_ticks_while_the_canary_rolls_out_change_nothing() -> None:
    status = detected().status
    for seconds in (0.5, 3, 59):
        decision = decide(canary(status), observe(target=ROLLING), at(seconds))
        assert decision.status == status, "no write while an ordinary rollout lasts"
        assert events(decision) == []
        # No hot loop: the next tick comes from the watch event, or when the wait is reported.
        assert requeue(decision) == 60 - seconds


def test_the_first_step_runs_as_soon_as_the_canary_is_ready() -> None:
    status = detected().status
    decision = run_tick(canary(status), observe(target=H2), at(2))
    assert events(decision) == [
        "Starting canary analysis for mhs.application",
        "Advance mhs.application canary weight 10",
    ]
    assert decision.status.last_analysis_time == stamp(2)
    assert decision.status.waiting_since == ""
    assert requeue(decision) == 60, "the next step one interval after this one"


def test_a_rollout_that_outlasts_an_interval_is_reported_once() -> None:
    status = detected().status
    late = decide(canary(status), observe(target=ROLLING), at(60))
    assert [m.split(":")[0] for m in events(late)] == [
        "canary deployment mhs.application not ready"
    ]
    again = decide(canary(late.status), observe(target=ROLLING), at(120))
    assert events(again) == [] and again.status == late.status


def test_a_new_revision_mid_analysis_restarts_at_its_rollout() -> None:
    status = in_phase(Phase.PROGRESSING, canary_weight=30, last_applied_spec="h1")
    restarted = decide(canary(status), observe(target=H2), at(0))
    assert events(restarted) == ["New revision detected! Restarting analysis for mhs.application"]
    assert restarted.status.last_analysis_time == ""
    assert restarted.status.waiting_since == stamp(0)
    first = run_tick(canary(restarted.status), observe(target=H2), at(1))
    assert "Advance mhs.application canary weight 10" in events(first)


def promoting() -> Decision:
    """The step that copies h2 to the primary, at `at(0)`."""
    status = in_phase(Phase.PROGRESSING, canary_weight=50)
    decision = run_tick(canary(status), observe(target=H2), at(0))
    assert decision.status.phase == Phase.PROMOTING
    return decision


def test_traffic_goes_back_as_soon_as_the_primary_is_rolled_out() -> None:
    status = promoting().status
    assert status.last_analysis_time == ""
    rolling = decide(canary(status), observe(target=H2, primary=PRIMARY_ROLLING), at(1))
    assert rolling.status == status and events(rolling) == []
    back = decide(canary(status), observe(target=H2, primary=workload(template_hash="h2")), at(3))
    assert events(back) == ["Routing all traffic to primary"]
    assert back.status.phase == Phase.FINALISING
    assert requeue(back) == PROCEED_SECONDS, "Finalising waits for nothing"
    done = decide(canary(back.status), observe(target=H2, primary=workload()), at(3))
    assert done.status.phase == Phase.SUCCEEDED
    assert events(done) == ["Promotion completed! Scaling down mhs.application"]


def test_a_primary_rollout_that_outlasts_an_interval_is_reported() -> None:
    status = promoting().status
    late = decide(canary(status), observe(target=H2, primary=PRIMARY_ROLLING), at(60))
    assert [m.split(":")[0] for m in events(late)] == ["mhs-primary.application not ready"]


def test_primary_weight_steps_after_the_first_are_paced() -> None:
    spec = analysis(step_weight_promotion=20)
    subject = canary(in_phase(Phase.PROGRESSING, canary_weight=50), analysis_spec=spec)
    status = run_tick(subject, observe(target=H2), at(0)).status
    ready = observe(target=H2, primary=workload(template_hash="h2"))
    first = decide(replace(subject, status=status), ready, at(2))
    assert events(first) == ["Advance mhs.application primary weight 70"]
    early = decide(replace(subject, status=first.status), ready, at(30))
    assert events(early) == [] and early.status.canary_weight == 30
    second = decide(replace(subject, status=first.status), ready, at(62))
    assert events(second) == ["Advance mhs.application primary weight 90"]


def test_a_release_takes_its_steps_plus_its_rollouts() -> None:
    """Five steps at a 60 s interval with 1 s rollouts: 5 x 60 + 2 s from detection to
    Succeeded. Flagger's pace: an interval before the first step, two after the promotion."""
    world = World(canary())
    for _ in range(4):
        world.tick()
    assert world.canary.status.phase == Phase.INITIALIZED
    world.target_version = "1.1.2"
    world.tick(0)  # detected: the canary scales up
    detected_at = world.now
    world.tick(1)  # ready a second later: the first step (weight 10)
    for _ in range(5):  # 20, 30, 40, 50, then the promotion
        world.tick()
    assert world.canary.status.phase == Phase.PROMOTING
    back = world.tick(1)  # the primary rolled out a second later: traffic goes back
    assert any(isinstance(a, SetRoutes) for a in back.actions)
    done = world.tick(requeue(back) or 0.0)
    assert done.status.phase == Phase.SUCCEEDED
    assert (world.now - detected_at).total_seconds() == 5 * 60 + 2


def test_onboarding_polls_the_endpoints_at_a_tenth_of_the_wait_and_at_most_every_5_s() -> None:
    """Endpoints are not watched: the wait for the endpoints controller is polled, every second
    at first, then thinner, so 1,000 canaries onboarding at once do not poll every second."""
    status = in_phase(Phase.INITIALIZING)
    ready_primary = observe(target=workload(), primary=workload(), routes=None)
    first = decide(canary(status), ready_primary, at(0))
    assert first.status.waiting_since == stamp(0)
    assert requeue(first) == 1.0
    for waited, poll in ((5, 1.0), (30, 3.0), (300, 5.0)):
        later = decide(canary(first.status), ready_primary, at(waited))
        assert later.status.phase == Phase.INITIALIZING
        assert requeue(later) == poll, waited
