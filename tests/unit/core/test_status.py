"""What the core writes to status: history, conditions, metrics, times, requeues."""

from __future__ import annotations

from dataclasses import replace

from agent.core.decide import decide
from agent.core.types import Decision, EmitEvent, Notify, RequeueAfter, Routes
from kubectl_canary.api.model import FINALIZER, HISTORY_LIMIT, HistoryEntry, MetricValue, Phase
from tests.unit.core.builders import (
    analysis,
    at,
    canary,
    events,
    healthy,
    hook,
    in_phase,
    observe,
    run_tick,
    stamp,
    workload,
)

H2 = workload(template_hash="h2")


def requeue(decision: Decision) -> float | None:
    found = [a.seconds for a in decision.actions if isinstance(a, RequeueAfter)]
    return found[0] if found else None


def test_an_idle_tick_leaves_status_unchanged() -> None:
    # The first tick records Valid=True (kubectl get's VALID column); after it, nothing.
    first = decide(canary(in_phase(Phase.SUCCEEDED, observed_generation=1)), observe(), at(0))
    valid = [c for c in first.status.conditions if c.type == "Valid"]
    assert [(c.status, c.reason) for c in valid] == [("True", "SpecValid")]
    decision = decide(canary(first.status), observe(), at(60))
    assert decision.status == first.status
    assert decision.actions == (RequeueAfter(60),)


def test_a_wait_is_recorded_once() -> None:
    subject = canary(in_phase(Phase.PROGRESSING, waiting_since=stamp(-60)))
    obs = observe(target=workload(ready=1, template_hash="h2"))
    first = decide(subject, obs, at(0))
    assert len(events(first)) == 1
    second = decide(replace(subject, status=first.status), obs, at(60))
    assert events(second) == []
    assert second.status == first.status


def test_history_keeps_the_newest_entries() -> None:
    old = tuple(
        HistoryEntry(stamp(-1000 + i), "Normal", "Synced", f"old {i}") for i in range(HISTORY_LIMIT)
    )
    subject = canary(in_phase(Phase.PROGRESSING, canary_weight=20, history=old))
    decision = run_tick(subject, observe(target=H2, routes=Routes(80, 20)), at(0))
    history = decision.status.history
    assert len(history) == HISTORY_LIMIT
    assert history[0].message == "old 1"
    assert history[-1] == HistoryEntry(
        stamp(0), "Normal", "Synced", "Advance mhs.application canary weight 30"
    )


def test_last_metrics_hold_every_value_against_its_threshold() -> None:
    subject = canary(in_phase(Phase.PROGRESSING, canary_weight=20))
    metrics = healthy(**{"request-duration": 900})
    decision = run_tick(subject, observe(target=H2, routes=Routes(80, 20)), at(0), metrics)
    assert decision.status.last_metrics == (
        MetricValue("request-success-rate", 99.9, 99, None, True, stamp(0)),
        MetricValue("request-duration", 900, None, 500, False, stamp(0)),
    )


def test_promoted_condition_follows_the_phase() -> None:
    initialized = decide(canary(), observe(apex_on_primary=True), at(0)).status
    promoted = {c.type: c for c in initialized.conditions}["Promoted"]
    assert (promoted.status, promoted.reason) == ("True", "Initialized")
    assert initialized.last_transition_time == stamp(0)

    progressing = decide(
        canary(initialized), observe(target=workload(0, template_hash="h2")), at(60)
    ).status
    promoted = {c.type: c for c in progressing.conditions}["Promoted"]
    assert (promoted.status, promoted.reason) == ("Unknown", "Progressing")
    assert promoted.last_transition_time == stamp(60)
    assert progressing.last_transition_time == stamp(60)


def test_invalid_spec_sets_a_condition_once_and_clears_it() -> None:
    subject = canary(in_phase(Phase.SUCCEEDED))
    bad = decide(subject, observe(spec_error="threshold must be > 0"), at(0))
    valid = {c.type: c for c in bad.status.conditions}["Valid"]
    assert (valid.status, valid.reason, valid.message) == (
        "False",
        "InvalidSpec",
        "threshold must be > 0",
    )
    assert [a for a in bad.actions if isinstance(a, EmitEvent)] == [
        EmitEvent(
            "Warning", "InvalidSpec", "Invalid spec of mhs.application: threshold must be > 0"
        )
    ]
    again = decide(
        replace(subject, status=bad.status), observe(spec_error="threshold must be > 0"), at(60)
    )
    assert events(again) == []
    fixed = decide(replace(subject, status=bad.status), observe(), at(120))
    valid = {c.type: c for c in fixed.status.conditions}["Valid"]
    assert (valid.status, valid.reason) == ("True", "SpecValid")


def test_event_webhooks_receive_every_event() -> None:
    events_hook = hook("chat", "event")
    subject = canary(in_phase(Phase.PROGRESSING), analysis_spec=analysis(webhooks=(events_hook,)))
    decision = run_tick(subject, observe(target=H2), at(0))
    notified = [a for a in decision.actions if isinstance(a, Notify)]
    assert notified == [
        Notify((events_hook,), "Progressing", "Starting canary analysis for mhs.application"),
        Notify((events_hook,), "Progressing", "Advance mhs.application canary weight 10"),
    ]


def test_requeue_times() -> None:
    assert requeue(decide(canary(in_phase(Phase.SUCCEEDED)), observe(), at(0))) == 60
    # Waiting for the primary during initialisation: look again soon.
    assert requeue(decide(canary(), observe(primary=workload(ready=0)), at(0))) == 10
    # A step not yet due: come back when it is.
    early = in_phase(Phase.PROGRESSING, canary_weight=20, last_analysis_time=stamp(-45))
    assert requeue(decide(canary(early), observe(target=H2, routes=Routes(80, 20)), at(0))) == 15
    # Waiting for the canary close to its deadline: come back at the deadline.
    waiting = in_phase(Phase.PROGRESSING, waiting_since=stamp(-590))
    not_ready = observe(target=workload(ready=0, template_hash="h2"))
    assert requeue(decide(canary(waiting), not_ready, at(0))) == 10
    # Deleting: the apex Service's endpoints lag its new selector by seconds; poll briefly.
    done = canary(in_phase(Phase.TERMINATING), revert_on_deletion=True, finalizers=(FINALIZER,))
    assert requeue(decide(done, observe(deleting=True, apex_on_target=False), at(0))) == 1
    # The finalizer is gone: nothing more to do for this object.
    assert requeue(decide(done, observe(deleting=True, apex_on_target=True), at(0))) is None


def test_steps_happen_at_most_once_per_interval() -> None:
    """The runtime may tick early (watch events); the weight still moves once per interval."""
    subject = canary(in_phase(Phase.PROGRESSING, canary_weight=20))
    obs = observe(target=H2, routes=Routes(80, 20))
    first = run_tick(subject, obs, at(0))
    assert first.status.canary_weight == 30
    obs = replace(obs, routes=Routes(70, 30))
    for seconds in (1, 20, 59):
        early = run_tick(replace(subject, status=first.status), obs, at(seconds))
        assert early.status == first.status
    due = run_tick(replace(subject, status=first.status), obs, at(60))
    assert due.status.canary_weight == 40
