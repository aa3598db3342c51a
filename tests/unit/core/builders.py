"""Builders for the core's inputs, so each test states only what matters to it."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime, timedelta
from typing import Any

from agent.core.decide import decide
from agent.core.timestamps import format_time
from agent.core.types import (
    Action,
    Decision,
    EmitEvent,
    GateResult,
    MetricResult,
    Observations,
    QueryMetrics,
    Routes,
    RunGates,
    WorkloadObservation,
)
from kubectl_canary.api.model import (
    FINALIZER,
    AnalysisSpec,
    Canary,
    CanarySpec,
    CanaryStatus,
    MetricSpec,
    Phase,
    ServiceSpec,
    TargetRef,
    ThresholdRange,
    WebhookSpec,
)

ALL_PRIMARY = Routes(100, 0)
T0 = datetime(2026, 11, 27, 12, 0, 0, tzinfo=UTC)
NAMESPACE = "application"
NAME = "mhs"

SUCCESS_RATE = MetricSpec(
    "request-success-rate", interval_seconds=60, threshold_range=ThresholdRange(min=99)
)
DURATION = MetricSpec(
    "request-duration", interval_seconds=60, threshold_range=ThresholdRange(max=500)
)


def analysis(**overrides: Any) -> AnalysisSpec:
    base = AnalysisSpec(
        interval_seconds=60,
        threshold=5,
        max_weight=50,
        step_weight=10,
        metrics=(SUCCESS_RATE, DURATION),
    )
    return replace(base, **overrides)


def canary(
    status: CanaryStatus | None = None,
    *,
    analysis_spec: AnalysisSpec | None = None,
    finalizers: tuple[str, ...] = (FINALIZER,),
    **spec_overrides: Any,
) -> Canary:
    """A Canary as the agent manages it: holding the finalizer unless said otherwise."""
    spec = CanarySpec(
        target_ref=TargetRef(NAME),
        service=ServiceSpec(port=9898),
        analysis=analysis_spec or analysis(),
        provider="istio",
    )
    return Canary(
        namespace=NAMESPACE,
        name=NAME,
        spec=replace(spec, **spec_overrides),
        status=status or CanaryStatus(),
        generation=1,
        finalizers=finalizers,
    )


def workload(
    replicas: int = 2, ready: int | None = None, template_hash: str = "h1", **more: Any
) -> WorkloadObservation:
    ready_count = replicas if ready is None else ready
    return WorkloadObservation(
        exists=True,
        replicas=replicas,
        ready_replicas=ready_count,
        updated_replicas=ready_count,
        available_replicas=ready_count,
        template_hash=template_hash,
        **more,
    )


def observe(
    target: WorkloadObservation | None = None,
    primary: WorkloadObservation | None = None,
    routes: Routes | None = ALL_PRIMARY,
    **more: Any,
) -> Observations:
    return Observations(
        target=target or workload(),
        primary=primary or workload(),
        routes=routes,
        **more,
    )


def healthy(**values: float) -> dict[str, MetricResult]:
    results = {"request-success-rate": MetricResult(99.9), "request-duration": MetricResult(120)}
    results.update({name: MetricResult(value) for name, value in values.items()})
    return results


def gates(**answers: bool) -> dict[str, GateResult]:
    return {name: GateResult(ok) for name, ok in answers.items()}


def hook(name: str, type_: str) -> WebhookSpec:
    return WebhookSpec(name=name, url=f"http://hooks.test/{name}", type=type_)


def events(decision: Decision) -> list[str]:
    return [a.message for a in decision.actions if isinstance(a, EmitEvent)]


def without_events(decision: Decision) -> list[Action]:
    return [a for a in decision.actions if not isinstance(a, EmitEvent)]


def at(seconds: float) -> datetime:
    return T0 + timedelta(seconds=seconds)


def is_query(decision: Decision) -> bool:
    return bool(decision.actions) and all(
        isinstance(a, (QueryMetrics, RunGates)) for a in decision.actions
    )


def run_tick(
    subject: Canary,
    obs: Observations,
    now: datetime,
    metrics: dict[str, MetricResult] | None = None,
    gate_answers: dict[str, GateResult] | None = None,
) -> Decision:
    """One tick through the two-pass protocol, as the runtime performs it.

    Metrics default to healthy values; every gate asked for answers ok unless `gate_answers`
    says otherwise. Asserts the protocol: a query pass changes nothing, the second never asks.
    """
    first = decide(subject, obs, now)
    if not is_query(first):
        return first
    assert first.status == subject.status, "a query pass must leave status unchanged"
    asked_gates: dict[str, GateResult] = {}
    asked_metrics: dict[str, MetricResult] | None = None
    for action in first.actions:
        if isinstance(action, RunGates):
            for webhook in action.webhooks:
                asked_gates[webhook.name] = (gate_answers or {}).get(webhook.name, GateResult(True))
        elif isinstance(action, QueryMetrics):
            given = healthy() if metrics is None else metrics
            asked_metrics = {m.name: given[m.name] for m in action.metrics if m.name in given}
    second = decide(
        subject,
        replace(
            obs,
            metrics=asked_metrics if asked_metrics is not None else obs.metrics,
            gates=asked_gates if asked_gates else obs.gates,
        ),
        now,
    )
    assert not is_query(second), f"second pass asked again: {second.actions}"
    return second


def stamp(seconds: float) -> str:
    """The stored form of `at(seconds)`."""
    return format_time(at(seconds))


def in_phase(phase: Phase, **fields: Any) -> CanaryStatus:
    """A status in `phase`: steady phases have 'h1' applied and promoted; releases analyse 'h2'.

    The last analysis step was one interval ago, so a step is due at `at(0)`.
    """
    steady = phase in (Phase.INITIALIZED, Phase.SUCCEEDED, Phase.FAILED)
    base = CanaryStatus(
        phase=phase,
        last_applied_spec="h1" if steady else "h2",
        last_promoted_spec="h1",
        last_transition_time=stamp(-600),
        last_analysis_time=stamp(-60),
        observed_generation=1,
    )
    return replace(base, **fields)
