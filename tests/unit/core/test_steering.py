"""Plugin requests: each accepted or refused exactly once, with what it did or why not."""

from __future__ import annotations

from dataclasses import dataclass, field, replace

import pytest

from agent.core.decide import decide
from agent.core.types import (
    Action,
    EmitEvent,
    GateResult,
    Initialize,
    MetricResult,
    Observations,
    PromoteTemplate,
    RequeueAfter,
    RestoreTargetTemplate,
    Routes,
    ScaleTarget,
    SetRoutes,
    WorkloadObservation,
)
from kubectl_canary.api.model import Canary, Phase, Request, RequestAck, RequestAction
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
FAILED = "Canary failed! Scaling down mhs.application"
COPYING = "Copying mhs.application template spec to mhs-primary.application"


def ask(action: RequestAction, skip_analysis: bool = False) -> Request:
    return Request(id="r1", action=action, skip_analysis=skip_analysis)


def routes(weight: int) -> Routes:
    return Routes(100 - weight, weight)


@dataclass
class Case:
    subject: Canary
    obs: Observations
    accepted: bool
    phase: Phase
    events: list[str]
    actions: list[Action] = field(default_factory=list)
    metrics: dict[str, MetricResult] | None = None


ABORT = ask(RequestAction.ABORT)
PAUSE = ask(RequestAction.PAUSE)
RESUME = ask(RequestAction.RESUME)
RETRY = ask(RequestAction.RETRY)
PROMOTE = ask(RequestAction.PROMOTE)
PROMOTE_NOW = ask(RequestAction.PROMOTE, skip_analysis=True)
PROGRESSING_20 = in_phase(Phase.PROGRESSING, canary_weight=20)

CASES = [
    pytest.param(
        Case(
            canary(PROGRESSING_20),
            observe(target=H2, routes=routes(20), request=ABORT),
            True,
            Phase.FAILED,
            ["Abort requested: rolling back mhs.application", FAILED],
            [SetRoutes(100, 0), ScaleTarget(0)],
        ),
        id="abort",
    ),
    pytest.param(
        Case(
            canary(in_phase(Phase.WAITING)),
            observe(target=workload(0, template_hash="h2"), request=ABORT),
            True,
            Phase.FAILED,
            ["Abort requested: rolling back mhs.application", FAILED],
            [SetRoutes(100, 0), ScaleTarget(0)],
        ),
        id="abort-waiting",
    ),
    pytest.param(
        Case(
            canary(in_phase(Phase.SUCCEEDED)),
            observe(request=ABORT),
            False,
            Phase.SUCCEEDED,
            ["Abort refused: mhs.application is Succeeded; no release is in progress"],
        ),
        id="abort-refused-when-idle",
    ),
    pytest.param(
        Case(
            canary(in_phase(Phase.PROMOTING, canary_weight=50)),
            observe(target=H2, primary=workload(template_hash="h1"), request=ABORT),
            False,
            Phase.PROMOTING,
            [
                "Abort refused: mhs.application is Promoting; no release is in progress",
                "mhs-primary.application not ready: waiting for rollout to finish: "
                "the promoted template is not rolled out yet",
            ],
        ),
        id="abort-refused-while-promoting",
    ),
    pytest.param(
        Case(
            canary(PROGRESSING_20),
            observe(target=H2, routes=routes(20), request=PROMOTE_NOW),
            True,
            Phase.SUCCEEDED,
            [
                "Promote requested: promoting mhs.application without analysis",
                COPYING,
                "Promotion completed! Canary analysis was skipped for mhs.application",
            ],
            [SetRoutes(100, 0), PromoteTemplate(with_replicas=True), ScaleTarget(0)],
        ),
        id="promote-skip-analysis",
    ),
    pytest.param(
        Case(
            canary(PROGRESSING_20),
            observe(target=H2, routes=routes(20), request=PROMOTE),
            True,
            Phase.PROMOTING,
            [COPYING, "Promote requested: checks passed, promoting mhs.application now"],
            [PromoteTemplate(with_replicas=True)],
        ),
        id="promote-after-checks",
    ),
    pytest.param(
        Case(
            canary(PROGRESSING_20),
            observe(target=H2, routes=routes(20), request=PROMOTE),
            False,
            Phase.PROGRESSING,
            [
                "Halt mhs.application advancement success rate 50.00% < 99%",
                "Promote refused: mhs.application was not promoted: "
                "Halt mhs.application advancement success rate 50.00% < 99%",
            ],
            metrics=healthy(**{"request-success-rate": 50}),
        ),
        id="promote-refused-by-checks",
    ),
    pytest.param(
        Case(
            canary(in_phase(Phase.PROGRESSING)),
            observe(target=H2, request=PROMOTE),
            False,
            Phase.PROGRESSING,
            [
                "Promote refused: the analysis of mhs.application has not started yet, there is "
                "nothing to judge; promote with --skip-analysis to promote without checks",
                "Starting canary analysis for mhs.application",
                "Advance mhs.application canary weight 10",
            ],
            [SetRoutes(90, 10)],
        ),
        id="promote-refused-before-first-step",
    ),
    pytest.param(
        Case(
            canary(PROGRESSING_20),
            observe(target=H2, routes=routes(20), request=PAUSE),
            True,
            Phase.PROGRESSING,
            ["Pause requested: advancement of mhs.application paused at canary weight 20"],
        ),
        id="pause",
    ),
    pytest.param(
        Case(
            canary(replace(PROGRESSING_20, paused=True)),
            observe(target=H2, routes=routes(20), request=PAUSE),
            False,
            Phase.PROGRESSING,
            ["Pause refused: mhs.application is already paused"],
        ),
        id="pause-twice",
    ),
    pytest.param(
        Case(
            canary(replace(PROGRESSING_20, paused=True)),
            observe(target=H2, routes=routes(20), request=RESUME),
            True,
            Phase.PROGRESSING,
            [
                "Resume requested: advancement of mhs.application resumed",
                "Advance mhs.application canary weight 30",
            ],
            [SetRoutes(70, 30)],
        ),
        id="resume-continues-at-once-when-due",
    ),
    pytest.param(
        Case(
            canary(PROGRESSING_20),
            observe(target=H2, routes=routes(20), request=RESUME),
            False,
            Phase.PROGRESSING,
            [
                "Resume refused: mhs.application is not paused",
                "Advance mhs.application canary weight 30",
            ],
            [SetRoutes(70, 30)],
        ),
        id="resume-refused-when-not-paused",
    ),
    pytest.param(
        Case(
            canary(in_phase(Phase.FAILED, last_applied_spec="h2", last_failed_spec="h2")),
            observe(target=workload(0, template_hash="h2"), request=RETRY),
            True,
            Phase.PROGRESSING,
            [
                "Retry requested: analysing revision h2 of mhs.application again",
                "Retrying analysis! Scaling up mhs.application",
            ],
            [ScaleTarget(2)],
        ),
        id="retry",
    ),
    pytest.param(
        Case(
            canary(in_phase(Phase.SUCCEEDED)),
            observe(request=RETRY),
            False,
            Phase.SUCCEEDED,
            ["Retry refused: mhs.application is Succeeded; only a Failed canary can be retried"],
        ),
        id="retry-refused-when-succeeded",
    ),
    pytest.param(
        Case(
            canary(PROGRESSING_20, suspend=True),
            observe(target=H2, routes=routes(20), request=ABORT),
            False,
            Phase.PROGRESSING,
            [
                "skipping canary run as object is suspended",
                "Abort refused: mhs.application is suspended",
            ],
        ),
        id="refused-while-suspended",
    ),
    pytest.param(
        Case(
            canary(in_phase(Phase.INITIALIZING, waiting_since=stamp(-60))),
            observe(primary=workload(ready=0), request=PAUSE),
            False,
            Phase.INITIALIZING,
            [
                "mhs-primary.application not ready: waiting for rollout to finish: 0 of 2 "
                "(readyThreshold 100%) updated replicas are available",
                "Pause refused: mhs.application is still initializing",
            ],
            [Initialize()],
        ),
        id="refused-while-initializing",
    ),
    pytest.param(
        Case(
            canary(PROGRESSING_20),
            observe(target=H2, routes=routes(20), request=ABORT, deleting=True),
            False,
            Phase.TERMINATING,
            [
                "Terminating mhs.application: restoring mhs.application (deleting a Canary "
                "always hands the app back, revertOnDeletion: false included)",
                "Waiting for mhs.application before reverting: restoring its last promoted "
                "revision h1 (the current one never was)",
                "Abort refused: mhs.application is being deleted",
            ],
            [RestoreTargetTemplate()],
        ),
        id="refused-while-deleting",
    ),
    pytest.param(
        Case(
            canary(PROGRESSING_20),
            observe(target=H2, routes=routes(20), request=PAUSE, spec_error="threshold: < 1"),
            False,
            Phase.PROGRESSING,
            [
                "Invalid spec of mhs.application: threshold: < 1",
                "Pause refused: the spec of mhs.application is invalid",
            ],
        ),
        id="refused-with-invalid-spec",
    ),
    pytest.param(
        Case(
            canary(PROGRESSING_20),
            observe(target=WorkloadObservation(False), routes=routes(20), request=ABORT),
            False,
            Phase.PROGRESSING,
            [
                "Target deployment mhs.application not found",
                "Abort refused: target deployment mhs.application not found",
            ],
        ),
        id="refused-without-target",
    ),
    pytest.param(
        Case(
            canary(PROGRESSING_20),
            observe(target=H2, routes=None, request=ABORT),
            False,
            Phase.PROGRESSING,
            [
                "The routing object of mhs.application is missing, re-initializing",
                "Abort refused: mhs.application is being re-initialized",
            ],
            [Initialize()],
        ),
        id="refused-while-repairing",
    ),
]


@pytest.mark.parametrize("case", CASES)
def test_request(case: Case) -> None:
    decision = run_tick(case.subject, case.obs, at(0), case.metrics)
    ack = decision.status.last_request
    assert case.obs.request is not None
    assert ack == RequestAck(
        id=case.obs.request.id,
        action=case.obs.request.action.value,
        accepted=case.accepted,
        message=ack.message if ack else "",
        time=stamp(0),
    )
    assert decision.status.phase == case.phase
    assert events(decision) == case.events
    acted = [a for a in decision.actions if not isinstance(a, (EmitEvent, RequeueAfter))]
    assert acted == case.actions
    # The acknowledgement is in history with its own reason, Normal or Warning.
    entry = next(h for h in decision.status.history if h.message == ack.message)
    expected = ("Normal", "RequestAccepted") if case.accepted else ("Warning", "RequestRefused")
    assert (entry.type, entry.reason) == expected


def test_pause_freezes_until_resume() -> None:
    paused = run_tick(
        canary(PROGRESSING_20), observe(target=H2, routes=routes(20), request=PAUSE), at(0)
    )
    assert paused.status.paused
    later = decide(
        replace(canary(), status=paused.status), observe(target=H2, routes=routes(20)), at(600)
    )
    assert events(later) == []
    assert later.status == paused.status
    assert [type(a) for a in later.actions] == [RequeueAfter]


def test_a_request_is_acknowledged_only_once() -> None:
    first = run_tick(canary(in_phase(Phase.SUCCEEDED)), observe(request=RETRY), at(0))
    again = decide(replace(canary(), status=first.status), observe(request=RETRY), at(60))
    assert events(again) == []
    assert again.status == first.status


def test_retry_is_the_only_way_back_for_a_failed_revision() -> None:
    failed = in_phase(Phase.FAILED, last_applied_spec="h2", last_failed_spec="h2")
    for request in (None, ABORT, PAUSE, RESUME, PROMOTE):
        decision = run_tick(
            canary(failed), observe(target=workload(0, template_hash="h2"), request=request), at(0)
        )
        assert decision.status.phase == Phase.FAILED
        assert not any(isinstance(a, ScaleTarget) and a.replicas > 0 for a in decision.actions)
    retried = run_tick(
        canary(failed), observe(target=workload(0, template_hash="h2"), request=RETRY), at(0)
    )
    assert retried.status.phase == Phase.PROGRESSING
    assert retried.status.last_failed_spec == ""


def test_retry_goes_through_the_confirm_rollout_gate() -> None:
    failed = in_phase(Phase.FAILED, last_applied_spec="h2", last_failed_spec="h2")
    gated = canary(failed, analysis_spec=analysis(webhooks=(hook("approve", "confirm-rollout"),)))
    decision = run_tick(
        gated,
        observe(target=workload(0, template_hash="h2"), request=RETRY),
        at(0),
        gate_answers={"approve": GateResult(False)},
    )
    assert decision.status.phase == Phase.WAITING
    assert events(decision)[-1] == "Halt mhs.application advancement waiting for approval approve"
