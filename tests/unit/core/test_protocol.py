"""The two-pass protocol: a tick first asks for what it needs, then decides with the answers."""

from __future__ import annotations

from agent.core.decide import decide
from agent.core.types import GateResult, MetricResult, QueryMetrics, Routes, RunGates, SetRoutes
from kubectl_canary.api.model import Phase
from tests.unit.core.builders import (
    DURATION,
    SUCCESS_RATE,
    analysis,
    at,
    canary,
    events,
    healthy,
    hook,
    in_phase,
    observe,
    workload,
)

H2 = workload(template_hash="h2")
AT_20 = Routes(80, 20)


def test_first_pass_asks_for_all_gates_and_metrics_and_changes_nothing() -> None:
    hooks = (hook("load", "rollout"), hook("traffic", "confirm-traffic-increase"))
    subject = canary(
        in_phase(Phase.PROGRESSING, canary_weight=20), analysis_spec=analysis(webhooks=hooks)
    )
    decision = decide(subject, observe(target=H2, routes=AT_20), at(0))
    assert decision.status == subject.status
    assert decision.actions == (
        RunGates(hooks, "Progressing"),
        QueryMetrics((SUCCESS_RATE, DURATION)),
    )


def test_rollback_hooks_are_asked_with_the_current_phase() -> None:
    hooks = (hook("undo", "rollback"), hook("promo", "confirm-promotion"))
    subject = canary(
        in_phase(Phase.WAITING_PROMOTION, canary_weight=50),
        analysis_spec=analysis(webhooks=hooks),
    )
    decision = decide(subject, observe(target=H2, routes=Routes(50, 50)), at(0))
    assert decision.actions == (
        RunGates((hooks[0],), "WaitingPromotion"),
        RunGates((hooks[1],), "Progressing"),
        QueryMetrics((SUCCESS_RATE, DURATION)),
    )


def test_with_gates_answered_only_metrics_are_asked() -> None:
    hooks = (hook("load", "rollout"),)
    subject = canary(
        in_phase(Phase.PROGRESSING, canary_weight=20), analysis_spec=analysis(webhooks=hooks)
    )
    obs = observe(target=H2, routes=AT_20, gates={"load": GateResult(True)})
    assert decide(subject, obs, at(0)).actions == (QueryMetrics((SUCCESS_RATE, DURATION)),)


def test_a_metric_missing_from_the_answers_is_a_failed_check() -> None:
    subject = canary(in_phase(Phase.PROGRESSING, canary_weight=20))
    obs = observe(target=H2, routes=AT_20, metrics={"request-success-rate": MetricResult(100)})
    decision = decide(subject, obs, at(0))
    assert events(decision) == ["Metric query failed for request-duration: no result reported"]
    assert decision.status.failed_checks == 1


def test_a_gate_missing_from_the_answers_is_closed() -> None:
    hooks = (hook("traffic", "confirm-traffic-increase"),)
    subject = canary(
        in_phase(Phase.PROGRESSING, canary_weight=20), analysis_spec=analysis(webhooks=hooks)
    )
    obs = observe(target=H2, routes=AT_20, gates={}, metrics=healthy())
    decision = decide(subject, obs, at(0))
    assert not any(isinstance(a, SetRoutes) for a in decision.actions)
    assert events(decision)[-1] == (
        "Halt mhs.application advancement waiting for traffic increase approval traffic"
    )


def test_without_metrics_or_hooks_nothing_is_asked() -> None:
    subject = canary(
        in_phase(Phase.PROGRESSING, canary_weight=20), analysis_spec=analysis(metrics=())
    )
    decision = decide(subject, observe(target=H2, routes=AT_20), at(0))
    assert SetRoutes(70, 30) in decision.actions


def test_no_query_before_the_first_step() -> None:
    """At weight 0 no traffic reaches the canary: metrics are not queried (Flagger)."""
    subject = canary(in_phase(Phase.PROGRESSING))
    decision = decide(subject, observe(target=H2), at(0))
    assert not any(isinstance(a, QueryMetrics) for a in decision.actions)
    assert SetRoutes(90, 10) in decision.actions
