"""Every transition of the release loop, one row each: inputs -> phase, events, actions.

Each row runs one tick through the two-pass protocol (`run_tick`) and compares the phase, the
exact event messages in order, and the exact non-event actions (RequeueAfter aside).
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace

import pytest

from agent.core.types import (
    Action,
    AddFinalizer,
    GateResult,
    Initialize,
    MetricResult,
    Notify,
    Observations,
    PromoteTemplate,
    RemoveFinalizer,
    RequeueAfter,
    RestoreTargetTemplate,
    Revert,
    RevertRouting,
    Routes,
    ScaleTarget,
    SetRoutes,
    WorkloadObservation,
)
from kubectl_canary.api.model import (
    FINALIZER,
    Canary,
    CanaryStatus,
    HistoryEntry,
    Phase,
    ServiceSpec,
)
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

H2 = workload(template_hash="h2")  # the target running the revision under analysis
SCALED_TO_ZERO = "waiting for rollout to finish: deployment is scaled to zero"
ONE_OF_TWO = (
    "waiting for rollout to finish: 1 of 2 (readyThreshold 100%) updated replicas are available"
)
NOT_READY = (
    "waiting for rollout to finish: 0 of 2 (readyThreshold 100%) updated replicas are available"
)
CANARY_NOT_READY = f"canary deployment mhs.application not ready: {NOT_READY}"
FAILED = "Canary failed! Scaling down mhs.application"
MATCH = ({"headers": {"x-canary": {"exact": "insider"}}},)


# Initialising, the primary's rollout already waited for an interval (60 s by default).
INIT_WAITED = in_phase(Phase.INITIALIZING, last_analysis_time="", waiting_since=stamp(-60))


def routes(canary_weight: int, mirror: bool = False) -> Routes:
    return Routes(100 - canary_weight, canary_weight, mirror)


def release(weight: int = 0, **fields: object) -> CanaryStatus:
    return in_phase(Phase.PROGRESSING, canary_weight=weight, **fields)


@dataclass
class Case:
    subject: Canary
    obs: Observations
    phase: Phase
    events: list[str]
    actions: list[Action] = field(default_factory=list)
    metrics: dict[str, MetricResult] | None = None
    gates: dict[str, GateResult] | None = None


def with_hooks(*hooks: tuple[str, str], status: CanaryStatus, **more: object) -> Canary:
    spec = analysis(webhooks=tuple(hook(n, t) for n, t in hooks), **more)
    return canary(status, analysis_spec=spec)


def waited(message: str) -> tuple[HistoryEntry, ...]:
    return (HistoryEntry(stamp(-60), "Warning", "Synced", message),)


CASES = [
    # ----- initialisation (staged: never a moment without a ready endpoint) -----
    pytest.param(
        Case(
            canary(),
            observe(primary=WorkloadObservation(False), routes=None),
            Phase.INITIALIZING,
            [],
            [Initialize(routing=False)],
        ),
        id="init-creates-the-primary-side-only",
    ),
    pytest.param(
        Case(
            canary(),
            observe(primary=workload(ready=0), routes=None),
            Phase.INITIALIZING,
            [],  # the primary's own rollout: nothing to say yet
            [Initialize(routing=False)],
        ),
        id="init-starts-waiting-for-primary-quietly",
    ),
    pytest.param(
        Case(
            canary(INIT_WAITED),
            observe(primary=workload(ready=0), routes=None),
            Phase.INITIALIZING,
            [f"mhs-primary.application not ready: {NOT_READY}"],
            [Initialize(routing=False)],
        ),
        id="init-waits-for-primary",
    ),
    pytest.param(
        Case(
            canary(),
            observe(routes=None, primary_service_on_primary=False, apex_on_primary=True),
            Phase.INITIALIZING,
            [],
            [Initialize(routing=False)],
        ),
        id="init-ready-primary-waits-for-its-service-endpoints",
    ),
    pytest.param(
        Case(
            canary(),
            observe(routes=None),
            Phase.INITIALIZING,
            [],
            [Initialize(routing=False)],
        ),
        id="init-unobserved-endpoints-count-as-not-yet",
    ),
    pytest.param(
        Case(
            canary(),
            observe(routes=None, primary_service_on_primary=True, apex_on_primary=True),
            Phase.INITIALIZING,
            [],
            [Initialize(routing=True)],
        ),
        id="init-routes-to-the-primary-once-it-serves",
    ),
    pytest.param(
        Case(
            canary(INIT_WAITED),
            observe(primary=workload(ready=1), routes=None, primary_service_on_primary=True),
            Phase.INITIALIZING,
            [f"mhs-primary.application not ready: {ONE_OF_TWO}"],
            [Initialize(routing=False)],
        ),
        id="init-serving-service-but-primary-below-threshold",
    ),
    pytest.param(
        Case(
            canary(),
            observe(apex_on_primary=False),
            Phase.INITIALIZING,
            [],
            [Initialize(routing=True)],
        ),
        id="init-keeps-the-target-until-the-apex-endpoints-are-the-primary",
    ),
    pytest.param(
        Case(
            canary(INIT_WAITED),
            observe(primary=workload(ready=1), apex_on_primary=True),
            Phase.INITIALIZING,
            [f"mhs-primary.application not ready: {ONE_OF_TWO}"],
            [Initialize(routing=True)],
        ),
        id="init-routed-primary-no-longer-ready",
    ),
    pytest.param(
        Case(
            canary(),
            observe(apex_on_primary=True),
            Phase.INITIALIZED,
            ["Initialization done! mhs.application"],
            [Initialize(routing=True), ScaleTarget(0)],
        ),
        id="init-done",
    ),
    pytest.param(
        Case(
            canary(analysis_spec=analysis(primary_ready_threshold=50)),
            observe(primary=workload(ready=1), apex_on_primary=True),
            Phase.INITIALIZED,
            ["Initialization done! mhs.application"],
            [Initialize(), ScaleTarget(0)],
        ),
        id="init-primary-ready-threshold",
    ),
    pytest.param(
        Case(
            canary(finalizers=()),
            observe(apex_on_primary=True),
            Phase.INITIALIZED,
            ["Initialization done! mhs.application"],
            [AddFinalizer(), Initialize(), ScaleTarget(0)],
        ),
        id="init-adds-finalizer-without-revert-on-deletion",
    ),
    pytest.param(
        Case(
            canary(finalizers=(), revert_on_deletion=True),
            observe(apex_on_primary=True),
            Phase.INITIALIZED,
            ["Initialization done! mhs.application"],
            [AddFinalizer(), Initialize(), ScaleTarget(0)],
        ),
        id="init-adds-finalizer-with-revert-on-deletion",
    ),
    pytest.param(
        Case(
            canary(finalizers=(), suspend=True),
            observe(),
            Phase.INITIALIZING,
            ["skipping canary run as object is suspended"],
            [AddFinalizer()],
        ),
        id="suspended-canary-gets-the-finalizer",
    ),
    # ----- steady phases -----
    pytest.param(
        Case(canary(in_phase(Phase.INITIALIZED)), observe(), Phase.INITIALIZED, []),
        id="initialized-idle",
    ),
    pytest.param(
        Case(
            canary(in_phase(Phase.SUCCEEDED)),
            observe(target=workload(0, template_hash="h2")),
            Phase.PROGRESSING,
            ["New revision detected! Scaling up mhs.application"],
            [ScaleTarget(2)],
        ),
        id="new-revision",
    ),
    pytest.param(
        Case(
            canary(in_phase(Phase.SUCCEEDED)),
            observe(target=workload(0, template_hash="h2"), primary=workload(5)),
            Phase.PROGRESSING,
            ["New revision detected! Scaling up mhs.application"],
            [ScaleTarget(5)],
        ),
        id="new-revision-scales-like-primary",
    ),
    pytest.param(
        Case(
            with_hooks(("approve", "confirm-rollout"), status=in_phase(Phase.SUCCEEDED)),
            observe(target=workload(0, template_hash="h2")),
            Phase.WAITING,
            ["Halt mhs.application advancement waiting for approval approve"],
            gates={"approve": GateResult(False)},
        ),
        id="confirm-rollout-closed",
    ),
    pytest.param(
        Case(
            with_hooks(("approve", "confirm-rollout"), status=in_phase(Phase.WAITING)),
            observe(target=workload(0, template_hash="h2")),
            Phase.PROGRESSING,
            [
                "Confirm-rollout check approve passed",
                "New revision detected! Scaling up mhs.application",
            ],
            [ScaleTarget(2)],
        ),
        id="confirm-rollout-opens",
    ),
    pytest.param(
        Case(
            with_hooks(
                ("approve", "confirm-rollout"),
                status=in_phase(
                    Phase.WAITING,
                    history=waited("Halt mhs.application advancement waiting for approval approve"),
                ),
            ),
            observe(target=workload(0, template_hash="h2")),
            Phase.WAITING,
            [],
            gates={"approve": GateResult(False)},
        ),
        id="confirm-rollout-still-closed-is-quiet",
    ),
    pytest.param(
        Case(
            canary(in_phase(Phase.FAILED, last_applied_spec="h2", last_failed_spec="h2")),
            observe(target=workload(0, template_hash="h2")),
            Phase.FAILED,
            [],
        ),
        id="failed-revision-stays-failed",
    ),
    pytest.param(
        Case(
            canary(in_phase(Phase.FAILED, last_applied_spec="h2", last_failed_spec="h2")),
            observe(target=workload(0, template_hash="h3")),
            Phase.PROGRESSING,
            ["New revision detected! Scaling up mhs.application"],
            [ScaleTarget(2)],
        ),
        id="failed-then-new-revision",
    ),
    pytest.param(
        Case(
            canary(in_phase(Phase.SUCCEEDED, last_applied_spec="h3", last_failed_spec="h2")),
            observe(target=workload(0, template_hash="h2")),
            Phase.FAILED,
            [
                "Skipping analysis of mhs.application: revision h2 failed its analysis before; "
                "retry it to analyse it again"
            ],
        ),
        id="failed-revision-comes-back",
    ),
    # ----- waiting for the canary -----
    pytest.param(
        Case(
            canary(release(waiting_since=stamp(-60))),
            observe(target=workload(ready=0, template_hash="h2")),
            Phase.PROGRESSING,
            [CANARY_NOT_READY],
        ),
        id="canary-not-ready",
    ),
    pytest.param(
        Case(
            canary(release(waiting_since=stamp(-60))),
            observe(target=workload(0, template_hash="h2")),
            Phase.PROGRESSING,
            [f"canary deployment mhs.application not ready: {SCALED_TO_ZERO}"],
            [ScaleTarget(2)],
        ),
        id="canary-scaled-to-zero-is-scaled-again",
    ),
    pytest.param(
        Case(
            canary(release(waiting_since=stamp(-601))),
            observe(target=workload(ready=0, template_hash="h2")),
            Phase.FAILED,
            [f"Rolling back mhs.application progress deadline exceeded {CANARY_NOT_READY}", FAILED],
            [SetRoutes(100, 0), ScaleTarget(0)],
        ),
        id="progress-deadline",
    ),
    pytest.param(
        Case(
            canary(release(10)),
            observe(target=workload(ready=1, template_hash="h2", deadline_exceeded=True)),
            Phase.FAILED,
            [
                "Rolling back mhs.application progress deadline exceeded canary deployment "
                "mhs.application not ready: deployment exceeded its progress deadline",
                FAILED,
            ],
            [SetRoutes(100, 0), ScaleTarget(0)],
        ),
        id="deployment-deadline-exceeded",
    ),
    pytest.param(
        Case(
            canary(release(10)),
            observe(target=H2, primary=workload(ready=1), routes=routes(10)),
            Phase.PROGRESSING,
            [f"mhs-primary.application not ready: {ONE_OF_TWO}"],
        ),
        id="primary-not-ready",
    ),
    # ----- canary analysis -----
    pytest.param(
        Case(
            canary(release()),
            observe(target=H2),
            Phase.PROGRESSING,
            [
                "Starting canary analysis for mhs.application",
                "Advance mhs.application canary weight 10",
            ],
            [SetRoutes(90, 10)],
        ),
        id="first-step",
    ),
    pytest.param(
        Case(
            with_hooks(("smoke", "pre-rollout"), status=release()),
            observe(target=H2),
            Phase.PROGRESSING,
            [
                "Starting canary analysis for mhs.application",
                "Pre-rollout check smoke passed",
                "Advance mhs.application canary weight 10",
            ],
            [SetRoutes(90, 10)],
        ),
        id="pre-rollout-passes",
    ),
    pytest.param(
        Case(
            with_hooks(("smoke", "pre-rollout"), status=release()),
            observe(target=H2),
            Phase.PROGRESSING,
            [
                "Starting canary analysis for mhs.application",
                "Halt mhs.application advancement pre-rollout check smoke failed HTTP 500",
            ],
            gates={"smoke": GateResult(False, "HTTP 500")},
        ),
        id="pre-rollout-fails",
    ),
    pytest.param(
        Case(
            canary(release(20)),
            observe(target=H2, routes=routes(20)),
            Phase.PROGRESSING,
            ["Advance mhs.application canary weight 30"],
            [SetRoutes(70, 30)],
        ),
        id="step",
    ),
    pytest.param(
        Case(
            canary(release(25), analysis_spec=analysis(step_weights=(5, 25, 60), max_weight=100)),
            observe(target=H2, routes=routes(25)),
            Phase.PROGRESSING,
            ["Advance mhs.application canary weight 60"],
            [SetRoutes(40, 60)],
        ),
        id="step-weights",
    ),
    pytest.param(
        Case(
            canary(release(40), analysis_spec=analysis(step_weight=20)),
            observe(target=H2, routes=routes(40)),
            Phase.PROGRESSING,
            ["Advance mhs.application canary weight 50"],
            [SetRoutes(50, 50)],
        ),
        id="last-step-stops-at-max-weight",
    ),
    pytest.param(
        Case(
            canary(release(20)),
            observe(target=H2, routes=routes(20)),
            Phase.PROGRESSING,
            ["Halt mhs.application advancement success rate 57.14% < 99%"],
            metrics=healthy(**{"request-success-rate": 57.142857}),
        ),
        id="success-rate-fails",
    ),
    pytest.param(
        Case(
            canary(release(20)),
            observe(target=H2, routes=routes(20)),
            Phase.PROGRESSING,
            ["Halt mhs.application advancement request duration 1.2s > 500ms"],
            metrics=healthy(**{"request-duration": 1200}),
        ),
        id="duration-fails",
    ),
    pytest.param(
        Case(
            canary(release(20)),
            observe(target=H2, routes=routes(20)),
            Phase.PROGRESSING,
            [
                "Halt advancement no values found for istio metric request-success-rate "
                "probably mhs.application is not receiving traffic"
            ],
            metrics={
                "request-success-rate": MetricResult(no_data=True),
                "request-duration": MetricResult(100),
            },
        ),
        id="no-data",
    ),
    pytest.param(
        Case(
            canary(release(20)),
            observe(target=H2, routes=routes(20)),
            Phase.PROGRESSING,
            ["Metric query failed for request-duration: bad_data: parse error"],
            metrics={
                "request-success-rate": MetricResult(100),
                "request-duration": MetricResult(error="bad_data: parse error"),
            },
        ),
        id="query-error",
    ),
    pytest.param(
        Case(
            canary(release(20)),
            observe(target=H2, routes=routes(20)),
            Phase.PROGRESSING,
            [
                "Halt mhs.application advancement success rate 90.00% < 99%",
                "Halt mhs.application advancement request duration 900ms > 500ms",
            ],
            metrics=healthy(**{"request-success-rate": 90, "request-duration": 900}),
        ),
        id="two-metrics-fail",
    ),
    pytest.param(
        Case(
            with_hooks(("load", "rollout"), status=release(20)),
            observe(target=H2, routes=routes(20)),
            Phase.PROGRESSING,
            ["Halt mhs.application advancement external check load failed timeout"],
            gates={"load": GateResult(False, "timeout")},
        ),
        id="rollout-hook-fails",
    ),
    pytest.param(
        Case(
            canary(release(10, failed_checks=4)),
            observe(target=H2, routes=routes(10)),
            Phase.FAILED,
            [
                "Halt mhs.application advancement success rate 57.14% < 99%",
                "Rolling back mhs.application failed checks threshold reached 5",
                FAILED,
            ],
            [SetRoutes(100, 0), ScaleTarget(0)],
            metrics=healthy(**{"request-success-rate": 57.142857}),
        ),
        id="threshold-reached",
    ),
    pytest.param(
        Case(
            canary(release(10, failed_checks=3), analysis_spec=analysis(threshold=2)),
            observe(target=H2, routes=routes(10)),
            Phase.FAILED,
            ["Rolling back mhs.application failed checks threshold reached 3", FAILED],
            [SetRoutes(100, 0), ScaleTarget(0)],
        ),
        id="threshold-already-exceeded",
    ),
    pytest.param(
        Case(
            with_hooks(("undo", "rollback"), ("after", "post-rollout"), status=release(30)),
            observe(target=H2, routes=routes(30)),
            Phase.FAILED,
            [
                "Rollback check undo passed",
                "Rolling back mhs.application manual webhook invoked",
                FAILED,
            ],
            [SetRoutes(100, 0), ScaleTarget(0), Notify((hook("after", "post-rollout"),), "Failed")],
            gates={"undo": GateResult(True)},
        ),
        id="rollback-webhook",
    ),
    pytest.param(
        Case(
            with_hooks(("undo", "rollback"), status=release(30)),
            observe(target=H2, routes=routes(30)),
            Phase.PROGRESSING,
            ["Advance mhs.application canary weight 40"],
            [SetRoutes(60, 40)],
            gates={"undo": GateResult(False)},
        ),
        id="rollback-webhook-quiet",
    ),
    pytest.param(
        Case(
            with_hooks(("traffic", "confirm-traffic-increase"), status=release(20)),
            observe(target=H2, routes=routes(20)),
            Phase.PROGRESSING,
            ["Halt mhs.application advancement waiting for traffic increase approval traffic"],
            gates={"traffic": GateResult(False)},
        ),
        id="confirm-traffic-increase-closed",
    ),
    pytest.param(
        Case(
            with_hooks(("traffic", "confirm-traffic-increase"), status=release(20)),
            observe(target=H2, routes=routes(20)),
            Phase.PROGRESSING,
            [
                "Confirm-traffic-increase check traffic passed",
                "Advance mhs.application canary weight 30",
            ],
            [SetRoutes(70, 30)],
        ),
        id="confirm-traffic-increase-open",
    ),
    pytest.param(
        Case(
            canary(release(50)),
            observe(target=H2, routes=routes(50)),
            Phase.PROMOTING,
            ["Copying mhs.application template spec to mhs-primary.application"],
            [PromoteTemplate(with_replicas=True)],
        ),
        id="max-weight-promotes",
    ),
    pytest.param(
        Case(
            with_hooks(("promo", "confirm-promotion"), status=release(50)),
            observe(target=H2, routes=routes(50)),
            Phase.WAITING_PROMOTION,
            ["Halt mhs.application advancement waiting for promotion approval promo"],
            gates={"promo": GateResult(False)},
        ),
        id="confirm-promotion-closed",
    ),
    pytest.param(
        Case(
            with_hooks(
                ("promo", "confirm-promotion"),
                status=replace(release(50), phase=Phase.WAITING_PROMOTION),
            ),
            observe(target=H2, routes=routes(50)),
            Phase.PROMOTING,
            [
                "Confirm-promotion check promo passed",
                "Copying mhs.application template spec to mhs-primary.application",
            ],
            [PromoteTemplate(with_replicas=True)],
        ),
        id="confirm-promotion-opens",
    ),
    pytest.param(
        Case(
            with_hooks(
                ("promo", "confirm-promotion"),
                status=replace(release(50), phase=Phase.WAITING_PROMOTION),
            ),
            observe(target=H2, routes=routes(50)),
            Phase.WAITING_PROMOTION,
            ["Halt mhs.application advancement success rate 10.00% < 99%"],
            metrics=healthy(**{"request-success-rate": 10}),
        ),
        id="waiting-promotion-keeps-checking",
    ),
    pytest.param(
        Case(
            canary(release(20, last_analysis_time=stamp(-30))),
            observe(target=H2, routes=routes(20)),
            Phase.PROGRESSING,
            [],
        ),
        id="step-not-due",
    ),
    pytest.param(
        Case(
            canary(release(30, failed_checks=2)),
            observe(target=workload(template_hash="h3"), routes=routes(30)),
            Phase.PROGRESSING,
            ["New revision detected! Restarting analysis for mhs.application"],
            [SetRoutes(100, 0)],
        ),
        id="new-revision-restarts-analysis",
    ),
    pytest.param(
        Case(
            canary(release(30, last_failed_spec="h0")),
            observe(target=workload(template_hash="h0"), routes=routes(30)),
            Phase.FAILED,
            [
                "Rolling back mhs.application revision h0 failed its analysis before; "
                "retry it to analyse it again",
                FAILED,
            ],
            [SetRoutes(100, 0), ScaleTarget(0)],
        ),
        id="failed-revision-during-analysis",
    ),
    pytest.param(
        Case(
            canary(release(20, paused=True)),
            observe(target=H2, routes=routes(20)),
            Phase.PROGRESSING,
            [],
        ),
        id="paused",
    ),
    pytest.param(
        Case(
            canary(release(), skip_analysis=True),
            observe(target=H2),
            Phase.SUCCEEDED,
            [
                "Copying mhs.application template spec to mhs-primary.application",
                "Promotion completed! Canary analysis was skipped for mhs.application",
            ],
            [SetRoutes(100, 0), PromoteTemplate(with_replicas=True), ScaleTarget(0)],
        ),
        id="skip-analysis",
    ),
    pytest.param(
        Case(
            canary(release(), analysis_spec=analysis(mirror=True)),
            observe(target=H2),
            Phase.PROGRESSING,
            [
                "Starting canary analysis for mhs.application",
                "Advance mhs.application canary weight 0 with traffic mirroring",
            ],
            [SetRoutes(100, 0, mirror=True)],
        ),
        id="mirror-step",
    ),
    pytest.param(
        Case(
            canary(release(), analysis_spec=analysis(mirror=True)),
            observe(target=H2, routes=routes(0, mirror=True)),
            Phase.PROGRESSING,
            ["Advance mhs.application canary weight 10"],
            [SetRoutes(90, 10)],
        ),
        id="mirror-then-weight",
    ),
    # ----- blue/green and A/B -----
    pytest.param(
        Case(
            canary(release(), analysis_spec=analysis(iterations=3)),
            observe(target=H2),
            Phase.PROGRESSING,
            [
                "Starting canary analysis for mhs.application",
                "Advance mhs.application canary iteration 1/3",
            ],
        ),
        id="blue-green-first-iteration",
    ),
    pytest.param(
        Case(
            canary(release(iterations=2), analysis_spec=analysis(iterations=3)),
            observe(target=H2),
            Phase.PROGRESSING,
            ["Advance mhs.application canary iteration 3/3"],
        ),
        id="blue-green-iteration",
    ),
    pytest.param(
        Case(
            canary(release(iterations=1), analysis_spec=analysis(iterations=3, mirror=True)),
            observe(target=H2),
            Phase.PROGRESSING,
            ["Advance mhs.application canary iteration 2/3"],
            [SetRoutes(100, 0, mirror=True)],
        ),
        id="blue-green-mirror",
    ),
    pytest.param(
        Case(
            canary(release(iterations=3), analysis_spec=analysis(iterations=3)),
            observe(target=H2),
            Phase.PROGRESSING,
            ["Routing all traffic to canary"],
            [SetRoutes(0, 100)],
        ),
        id="blue-green-all-traffic-to-canary",
    ),
    pytest.param(
        Case(
            canary(release(iterations=3), analysis_spec=analysis(iterations=3, mirror=True)),
            observe(target=H2, routes=routes(0, mirror=True)),
            Phase.PROGRESSING,
            ["Stop traffic mirroring and route all traffic to canary"],
            [SetRoutes(0, 100)],
        ),
        id="blue-green-mirror-stops",
    ),
    pytest.param(
        Case(
            canary(release(100, iterations=4), analysis_spec=analysis(iterations=3)),
            observe(target=H2, routes=routes(100)),
            Phase.PROMOTING,
            ["Copying mhs.application template spec to mhs-primary.application"],
            [PromoteTemplate(with_replicas=True)],
        ),
        id="blue-green-promotes",
    ),
    pytest.param(
        Case(
            canary(release(), analysis_spec=analysis(iterations=2, match=MATCH)),
            observe(target=H2),
            Phase.PROGRESSING,
            [
                "Starting canary analysis for mhs.application",
                "Advance mhs.application canary iteration 1/2",
            ],
            [SetRoutes(0, 100, match=MATCH)],
        ),
        id="ab-iteration",
    ),
    pytest.param(
        Case(
            canary(release(iterations=2), analysis_spec=analysis(iterations=2, match=MATCH)),
            observe(target=H2),
            Phase.PROMOTING,
            ["Copying mhs.application template spec to mhs-primary.application"],
            [PromoteTemplate(with_replicas=True)],
        ),
        id="ab-promotes",
    ),
    # ----- promotion -----
    pytest.param(
        Case(
            canary(replace(release(50), phase=Phase.PROMOTING)),
            observe(target=H2, primary=workload(template_hash="h1"), routes=routes(50)),
            Phase.PROMOTING,
            [
                "mhs-primary.application not ready: waiting for rollout to finish: "
                "the promoted template is not rolled out yet"
            ],
        ),
        id="promoting-waits-for-primary-template",
    ),
    pytest.param(
        Case(
            canary(replace(release(50), phase=Phase.PROMOTING)),
            observe(target=H2, primary=workload(ready=1, template_hash="h2"), routes=routes(50)),
            Phase.PROMOTING,
            [f"mhs-primary.application not ready: {ONE_OF_TWO}"],
        ),
        id="promoting-waits-for-primary-pods",
    ),
    pytest.param(
        Case(
            canary(replace(release(50), phase=Phase.PROMOTING)),
            observe(target=H2, primary=workload(template_hash="h2"), routes=routes(50)),
            Phase.FINALISING,
            ["Routing all traffic to primary"],
            [SetRoutes(100, 0)],
        ),
        id="promoting-routes-back",
    ),
    pytest.param(
        Case(
            canary(
                replace(release(50), phase=Phase.PROMOTING),
                analysis_spec=analysis(step_weight_promotion=20),
            ),
            observe(target=H2, primary=workload(template_hash="h2"), routes=routes(50)),
            Phase.PROMOTING,
            ["Advance mhs.application primary weight 70"],
            [SetRoutes(70, 30)],
        ),
        id="step-weight-promotion",
    ),
    pytest.param(
        Case(
            canary(
                replace(release(10), phase=Phase.PROMOTING),
                analysis_spec=analysis(step_weight_promotion=20),
            ),
            observe(target=H2, primary=workload(template_hash="h2"), routes=routes(10)),
            Phase.FINALISING,
            ["Advance mhs.application primary weight 100"],
            [SetRoutes(100, 0)],
        ),
        id="step-weight-promotion-last",
    ),
    pytest.param(
        Case(
            with_hooks(
                ("after", "post-rollout"), status=replace(release(), phase=Phase.FINALISING)
            ),
            observe(target=H2, primary=workload(template_hash="h2")),
            Phase.SUCCEEDED,
            ["Promotion completed! Scaling down mhs.application"],
            [ScaleTarget(0), Notify((hook("after", "post-rollout"),), "Succeeded")],
        ),
        id="finalising",
    ),
    # ----- suspend, bad spec, missing objects -----
    pytest.param(
        Case(
            canary(release(20), suspend=True),
            observe(target=H2, routes=routes(20)),
            Phase.PROGRESSING,
            ["skipping canary run as object is suspended"],
        ),
        id="suspended",
    ),
    pytest.param(
        Case(
            canary(release(20)),
            observe(
                target=H2, routes=routes(20), spec_error="analysis.interval: '1x' is not a duration"
            ),
            Phase.PROGRESSING,
            ["Invalid spec of mhs.application: analysis.interval: '1x' is not a duration"],
        ),
        id="invalid-spec",
    ),
    pytest.param(
        Case(
            canary(in_phase(Phase.SUCCEEDED)),
            observe(target=WorkloadObservation(False)),
            Phase.SUCCEEDED,
            ["Target deployment mhs.application not found"],
        ),
        id="target-missing",
    ),
    pytest.param(
        Case(
            canary(in_phase(Phase.SUCCEEDED)),
            observe(primary=WorkloadObservation(False)),
            Phase.SUCCEEDED,
            ["The primary deployment of mhs.application is missing, re-initializing"],
            [Initialize()],
        ),
        id="primary-missing",
    ),
    pytest.param(
        Case(
            canary(in_phase(Phase.SUCCEEDED)),
            observe(routes=None),
            Phase.SUCCEEDED,
            ["The routing object of mhs.application is missing, re-initializing"],
            [Initialize()],
        ),
        id="routing-missing",
    ),
    pytest.param(
        Case(
            canary(in_phase(Phase.SUCCEEDED), finalizers=()),
            observe(),
            Phase.SUCCEEDED,
            [],
            [AddFinalizer()],
        ),
        id="existing-canary-gets-the-finalizer",
    ),
    pytest.param(
        Case(
            canary(in_phase(Phase.SUCCEEDED), finalizers=("other",)),
            observe(),
            Phase.SUCCEEDED,
            [],
            [AddFinalizer()],
        ),
        id="finalizer-added-beside-another",
    ),
    pytest.param(
        Case(canary(in_phase(Phase.SUCCEEDED)), observe(), Phase.SUCCEEDED, []),
        id="finalizer-kept-without-revert-on-deletion",
    ),
    # ----- deletion -----
    pytest.param(
        Case(
            canary(in_phase(Phase.SUCCEEDED), finalizers=()),
            observe(deleting=True),
            Phase.SUCCEEDED,
            [],
        ),
        id="delete-without-finalizer",
    ),
    pytest.param(
        Case(
            canary(in_phase(Phase.SUCCEEDED)),
            observe(target=workload(0), deleting=True),
            Phase.TERMINATING,
            [
                "Terminating mhs.application: restoring mhs.application (deleting a Canary "
                "always hands the app back, revertOnDeletion: false included)",
                f"Waiting for mhs.application before reverting: {SCALED_TO_ZERO}",
            ],
            [ScaleTarget(2)],
        ),
        id="delete-without-revert-on-deletion-restores-target",
    ),
    pytest.param(
        Case(
            canary(in_phase(Phase.TERMINATING, waiting_since=stamp(-30))),
            observe(deleting=True, apex_on_target=True),
            Phase.TERMINATING,
            ["Reverted mhs.application: finalizer removed"],
            [Revert(), RevertRouting(), RemoveFinalizer()],
        ),
        id="delete-without-revert-on-deletion-lets-go-once-endpoints-are-the-target",
    ),
    pytest.param(
        Case(
            canary(in_phase(Phase.INITIALIZING)),
            observe(primary=WorkloadObservation(False), routes=None, deleting=True),
            Phase.INITIALIZING,
            [
                "Nothing of mhs.application serves traffic (no primary, no routing): "
                "mhs.application keeps serving; finalizer removed"
            ],
            [Revert(), RevertRouting(), RemoveFinalizer()],
        ),
        id="delete-never-initialised-lets-go-at-once",
    ),
    pytest.param(
        Case(
            canary(in_phase(Phase.INITIALIZING)),
            observe(
                target=workload(ready=0),
                primary=WorkloadObservation(False),
                routes=None,
                deleting=True,
            ),
            Phase.INITIALIZING,
            [
                "Nothing of mhs.application serves traffic (no primary, no routing): "
                "mhs.application keeps serving; finalizer removed"
            ],
            [Revert(), RevertRouting(), RemoveFinalizer()],
        ),
        id="delete-never-initialised-does-not-wait-for-a-broken-target",
    ),
    pytest.param(
        Case(
            canary(in_phase(Phase.SUCCEEDED)),
            observe(
                target=workload(0), primary=WorkloadObservation(False), routes=None, deleting=True
            ),
            Phase.TERMINATING,
            [
                "Terminating mhs.application: restoring mhs.application (deleting a Canary "
                "always hands the app back, revertOnDeletion: false included)",
                f"Waiting for mhs.application before reverting: {SCALED_TO_ZERO}",
            ],
            [ScaleTarget(1)],
        ),
        id="delete-with-primary-gone-and-target-at-zero-scales-it-up-first",
    ),
    pytest.param(
        Case(
            canary(in_phase(Phase.INITIALIZING)),
            observe(primary=WorkloadObservation(False), deleting=True),
            Phase.TERMINATING,
            [
                "Terminating mhs.application: restoring mhs.application (deleting a Canary "
                "always hands the app back, revertOnDeletion: false included)",
                "Waiting for the endpoints of service mhs.application to be the pods of "
                "mhs.application before reverting the routing",
            ],
            [Revert()],
        ),
        id="delete-with-our-routing-but-no-primary-waits-for-the-endpoints",
    ),
    pytest.param(
        Case(
            canary(in_phase(Phase.SUCCEEDED)),
            observe(target=workload(deleting=True), deleting=True),
            Phase.SUCCEEDED,
            ["Target mhs.application being deleted, nothing to revert; finalizer removed"],
            [RemoveFinalizer()],
        ),
        id="delete-with-target-being-deleted",
    ),
    pytest.param(
        Case(
            canary(in_phase(Phase.SUCCEEDED), revert_on_deletion=True, finalizers=(FINALIZER,)),
            observe(target=workload(0), deleting=True),
            Phase.TERMINATING,
            [
                "Terminating mhs.application: restoring mhs.application",
                f"Waiting for mhs.application before reverting: {SCALED_TO_ZERO}",
            ],
            [ScaleTarget(2)],
        ),
        id="delete-restores-target",
    ),
    pytest.param(
        Case(
            canary(
                in_phase(Phase.TERMINATING, waiting_since=stamp(-30)),
                revert_on_deletion=True,
                finalizers=(FINALIZER,),
            ),
            observe(deleting=True, apex_on_target=False),
            Phase.TERMINATING,
            [
                "Waiting for the endpoints of service mhs.application to be the pods of "
                "mhs.application before reverting the routing"
            ],
            [Revert()],
        ),
        id="delete-hands-the-service-over-when-target-ready",
    ),
    pytest.param(
        Case(
            canary(
                in_phase(Phase.TERMINATING, waiting_since=stamp(-30)),
                revert_on_deletion=True,
                finalizers=(FINALIZER,),
            ),
            observe(deleting=True),
            Phase.TERMINATING,
            [
                "Waiting for the endpoints of service mhs.application to be the pods of "
                "mhs.application before reverting the routing"
            ],
            [Revert()],
        ),
        id="delete-never-lets-go-without-observing-the-endpoints",
    ),
    pytest.param(
        Case(
            canary(
                in_phase(Phase.TERMINATING, waiting_since=stamp(-30)),
                revert_on_deletion=True,
                finalizers=(FINALIZER,),
                service=ServiceSpec(port=9898, name="front"),
            ),
            observe(deleting=True, apex_on_target=True),
            Phase.TERMINATING,
            ["Reverted mhs.application: finalizer removed"],
            [Revert(), RevertRouting(), RemoveFinalizer()],
        ),
        id="delete-reverts-routing-once-endpoints-are-the-target",
    ),
    pytest.param(
        Case(
            canary(
                in_phase(Phase.TERMINATING, waiting_since=stamp(-600)),
                revert_on_deletion=True,
                finalizers=(FINALIZER,),
                service=ServiceSpec(port=9898, name="front"),
            ),
            observe(deleting=True, apex_on_target=False),
            Phase.TERMINATING,
            [
                "Reverted mhs.application although the endpoints of service "
                "front.application are not all its pods yet: progress deadline exceeded; "
                "finalizer removed"
            ],
            [Revert(), RevertRouting(), RemoveFinalizer()],
        ),
        id="delete-reverts-routing-after-deadline-with-stale-endpoints",
    ),
    pytest.param(
        Case(
            canary(
                in_phase(Phase.TERMINATING, waiting_since=stamp(-600)),
                revert_on_deletion=True,
                finalizers=(FINALIZER,),
            ),
            observe(target=workload(ready=0), deleting=True),
            Phase.TERMINATING,
            [
                f"Reverted mhs.application although it is not ready ({NOT_READY}): "
                "progress deadline exceeded; finalizer removed"
            ],
            [Revert(), RevertRouting(), RemoveFinalizer()],
        ),
        id="delete-reverts-after-deadline",
    ),
    pytest.param(
        Case(
            canary(in_phase(Phase.PROGRESSING), revert_on_deletion=True, finalizers=(FINALIZER,)),
            observe(target=WorkloadObservation(False), deleting=True),
            Phase.PROGRESSING,
            ["Target mhs.application not found, nothing to revert; finalizer removed"],
            [RemoveFinalizer()],
        ),
        id="delete-with-target-gone",
    ),
    pytest.param(
        Case(
            canary(
                in_phase(Phase.FAILED, last_failed_spec="h2"),
                revert_on_deletion=True,
                finalizers=(FINALIZER,),
            ),
            observe(target=workload(0, template_hash="h2"), deleting=True),
            Phase.TERMINATING,
            [
                "Terminating mhs.application: restoring mhs.application",
                "Waiting for mhs.application before reverting: restoring its last promoted "
                "revision h1 (the current one never was)",
            ],
            [RestoreTargetTemplate(), ScaleTarget(2)],
        ),
        id="delete-after-failure-restores-the-promoted-template-first",
    ),
    pytest.param(
        Case(
            canary(
                in_phase(Phase.TERMINATING, waiting_since=stamp(-30)),
                revert_on_deletion=True,
                finalizers=(FINALIZER,),
            ),
            observe(target=workload(template_hash="h2"), deleting=True),
            Phase.TERMINATING,
            [
                "Waiting for mhs.application before reverting: restoring its last promoted "
                "revision h1 (the current one never was)"
            ],
            [RestoreTargetTemplate()],
        ),
        id="delete-mid-analysis-never-reverts-to-the-unpromoted-revision",
    ),
]


@pytest.mark.parametrize("case", CASES)
def test_transition(case: Case) -> None:
    decision = run_tick(case.subject, case.obs, at(0), case.metrics, case.gates)
    assert decision.status.phase == case.phase
    assert events(decision) == case.events
    acted = [
        a
        for a in decision.actions
        if not isinstance(a, RequeueAfter) and type(a).__name__ != "EmitEvent"
    ]
    assert acted == case.actions


def test_a_template_changed_during_promotion_is_reported_not_waited_for() -> None:
    subject = canary(replace(release(50), phase=Phase.PROMOTING))
    obs = observe(
        target=workload(template_hash="h3"),
        primary=workload(template_hash="h3"),
        routes=routes(50),
    )
    decision = run_tick(subject, obs, at(0))
    assert events(decision) == [
        "Revision h3 of mhs.application changed during the promotion and was copied to "
        "mhs-primary.application without analysis",
        "Routing all traffic to primary",
    ]
    assert decision.status.phase == Phase.FINALISING
    assert decision.status.last_applied_spec == "h3"


def test_a_spec_change_reconciles_the_generated_objects() -> None:
    """A new generation (e.g. a new port) re-runs the idempotent Initialize, nothing else."""
    subject = replace(canary(in_phase(Phase.SUCCEEDED)), generation=2)
    decision = run_tick(subject, observe(), at(0))
    assert decision.actions == (Initialize(), RequeueAfter(60))
    assert decision.status.observed_generation == 2
    again = run_tick(replace(subject, status=decision.status), observe(), at(60))
    assert again.actions == (RequeueAfter(60),)


def test_waiting_for_the_endpoints_is_recorded_once_and_polled_briefly() -> None:
    """The stale-endpoints wait is one history entry however many ticks it lasts; each tick
    hands the Service over again (idempotent) and looks again within seconds."""
    subject = canary(
        in_phase(Phase.TERMINATING, waiting_since=stamp(-30)),
        revert_on_deletion=True,
        finalizers=(FINALIZER,),
    )
    obs = observe(deleting=True, apex_on_target=False)
    first = run_tick(subject, obs, at(0))
    again = run_tick(replace(subject, status=first.status), obs, at(2))
    assert again.status == first.status
    assert again.actions == (Revert(), RequeueAfter(1.0))
    done = run_tick(replace(subject, status=first.status), replace(obs, apex_on_target=True), at(4))
    assert done.actions[:3] == (Revert(), RevertRouting(), RemoveFinalizer())
    assert not any(isinstance(a, RequeueAfter) for a in done.actions)


@pytest.mark.parametrize(
    ("obs", "requeue"),
    [
        (observe(routes=None), 1.0),  # the primary Service's endpoints: a second or two
        (observe(apex_on_primary=False), 1.0),  # the apex Service's endpoints
        (observe(primary=workload(ready=0), routes=None), 10.0),  # pods take longer
    ],
    ids=["primary-service", "apex", "primary-pods"],
)
def test_onboarding_looks_again_soon_while_endpoints_catch_up(
    obs: Observations, requeue: float
) -> None:
    """Nothing triggers a tick when an endpoints controller catches up (Endpoints are not
    watched), so a ready primary waiting on endpoints polls briefly."""
    decision = run_tick(canary(), obs, at(0))
    assert [a for a in decision.actions if isinstance(a, RequeueAfter)] == [RequeueAfter(requeue)]
