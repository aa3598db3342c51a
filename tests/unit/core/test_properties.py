"""Invariants of the core over random release histories (hypothesis).

A random spec (canary weights, stepWeights, blue/green, A/B; gates, thresholds, mirroring) is
driven through a random sequence of ticks at random times, new revisions, crashing versions,
bad metrics, closed gates and plugin requests, against the fake cluster of `world.py`. After
every tick the invariants below must hold.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st

from agent.core.types import (
    Decision,
    EmitEvent,
    GateResult,
    MetricResult,
    PromoteTemplate,
    RemoveFinalizer,
    Revert,
    RevertRouting,
    SetRoutes,
)
from kubectl_canary.api.model import (
    HISTORY_LIMIT,
    WEBHOOK_TYPES,
    AnalysisSpec,
    CanaryStatus,
    Phase,
    Request,
    RequestAction,
)
from tests.unit.core.builders import DURATION, SUCCESS_RATE, canary, hook
from tests.unit.core.world import World

PROGRESSION = (Phase.PROGRESSING, Phase.WAITING_PROMOTION)
GATED_TYPES = tuple(t for t in WEBHOOK_TYPES if t not in ("post-rollout", "event"))
VERSIONS = ("1.1.2", "1.1.3", "1.1.4")


@st.composite
def analyses(draw: st.DrawFn) -> AnalysisSpec:
    strategy = draw(st.sampled_from(["canary", "weights", "blue-green", "ab"]))
    hooks = draw(st.lists(st.sampled_from(GATED_TYPES), unique=True, max_size=3))
    spec = AnalysisSpec(
        interval_seconds=60,
        threshold=draw(st.integers(1, 4)),
        max_weight=draw(st.integers(1, 100)),
        step_weight=draw(st.integers(1, 60)),
        step_weight_promotion=draw(st.sampled_from([0, 0, 15, 40])),
        mirror=draw(st.booleans()),
        metrics=(SUCCESS_RATE, DURATION),
        webhooks=tuple(hook(type_, type_) for type_ in hooks),
    )
    if strategy == "weights":
        steps = draw(st.lists(st.integers(-10, 120), min_size=1, max_size=5))
        spec = replace(spec, step_weights=tuple(steps))
    elif strategy in ("blue-green", "ab"):
        spec = replace(spec, iterations=draw(st.integers(1, 4)))
        if strategy == "ab":
            spec = replace(spec, match=({"headers": {"x-canary": {"exact": "yes"}}},))
    return spec


METRIC_MODES: list[dict[str, MetricResult] | None] = [
    None,  # per-version behaviour of the world
    {"request-success-rate": MetricResult(no_data=True), "request-duration": MetricResult(100)},
    {"request-success-rate": MetricResult(100), "request-duration": MetricResult(error="down")},
    {"request-success-rate": MetricResult(100), "request-duration": MetricResult(2500)},
]

TICKS = st.lists(st.sampled_from([1, 30, 60, 60, 60, 61, 700]), min_size=1, max_size=4)
CHANGES = st.one_of(
    st.tuples(st.just("deploy"), st.sampled_from(VERSIONS)),
    st.tuples(st.just("deploy"), st.sampled_from(VERSIONS)),
    st.tuples(st.just("deploy"), st.sampled_from(VERSIONS)),
    st.tuples(st.just("crash"), st.sampled_from(VERSIONS)),
    st.tuples(st.just("metrics"), st.integers(0, len(METRIC_MODES) - 1)),
    st.tuples(st.just("gate"), st.sampled_from(GATED_TYPES), st.booleans()),
    st.tuples(st.just("request"), st.sampled_from(list(RequestAction)), st.booleans()),
    st.tuples(st.just("suspend"), st.booleans()),
    st.tuples(st.just("wait")),
)
# Each change to the world is followed by a few ticks at random times.
OPERATIONS = st.tuples(CHANGES, TICKS)


@dataclass
class Checker:
    world: World
    request_ids: int = 0

    def run(self, operations: list[tuple[tuple[Any, ...], list[int]]]) -> None:
        for _ in range(3):  # initialise: the interesting part starts with a release
            self.tick(60)
        for operation, ticks in operations:
            self.change(operation)
            for seconds in ticks:
                self.tick(seconds)
        self.world.deleting = True
        # The default progress deadline (600 s) bounds every wait of the revert.
        for _ in range(12):
            if not self.world.canary.finalizers:
                break
            self.tick(60)
        assert not self.world.canary.finalizers, "a deletion is never blocked forever"
        # Whatever revertOnDeletion says: the app is always handed back.
        assert self.world.service_on_target and self.world.routing_reverted

    def change(self, operation: tuple[Any, ...]) -> None:
        kind = operation[0]
        if kind == "deploy":
            self.world.target_version = operation[1]
        elif kind == "crash":
            self.world.crashing ^= {operation[1]}
        elif kind == "metrics":
            self.world.metrics_override = METRIC_MODES[operation[1]]
        elif kind == "gate":
            self.world.gate_answers[operation[1]] = GateResult(operation[2])
        elif kind == "request":
            self.request_ids += 1
            self.world.request = Request(f"r{self.request_ids}", operation[1], operation[2])
        elif kind == "suspend":
            spec = replace(self.world.canary.spec, suspend=operation[1])
            self.world.canary = replace(self.world.canary, spec=spec)

    def tick(self, seconds: float) -> None:
        before = self.world.canary.status
        revision = self.world.target_version
        request = self.world.request
        metrics = self.world.metrics()
        answers = dict(self.world.gate_answers)
        on_target = self.world.endpoints_on_target
        decision = self.world.tick(seconds)
        self.check(before, decision, revision, request, metrics, answers)
        self.check_revert(decision, on_target)

    def check_revert(self, decision: Decision, on_target: bool) -> None:
        """The routing object and the finalizer (hence, by garbage collection, the primary)
        go only once the apex Service's endpoints are the target's pods, unless the progress
        deadline forced it; the Service is handed over no later than the routing."""
        actions = list(decision.actions)
        if any(isinstance(a, RevertRouting) for a in actions):
            forced = any(
                isinstance(a, EmitEvent) and "progress deadline exceeded" in a.message
                for a in actions
            )
            assert on_target or forced, "routing reverted while the endpoints were stale"
            assert any(isinstance(a, RemoveFinalizer) for a in actions)
            assert self.world.service_on_target
        if self.world.deleting and any(isinstance(a, RemoveFinalizer) for a in actions):
            gone = any(isinstance(a, EmitEvent) and "not found" in a.message for a in actions)
            assert gone or any(isinstance(a, RevertRouting) for a in actions)
            forced = any(
                isinstance(a, EmitEvent) and "progress deadline exceeded" in a.message
                for a in actions
            )
            # Letting go never leaves the app with fewer ready pods than the primary served.
            target = self.world.observe().target
            assert gone or forced or target.ready_replicas >= self.world.primary_replicas

    def check(
        self,
        before: CanaryStatus,
        decision: Decision,
        revision: str,
        request: Request | None,
        metrics: dict[str, MetricResult],
        answers: dict[str, GateResult],
    ) -> None:
        after = decision.status
        spec = self.world.canary.spec
        routes = [a for a in decision.actions if isinstance(a, SetRoutes)]
        emitted = [a for a in decision.actions if isinstance(a, EmitEvent)]
        ack = after.last_request if after.last_request != before.last_request else None
        accepted = ack.action if ack is not None and ack.accepted else None

        # Weights stay in 0..100 and sum to 100.
        for action in routes:
            assert 0 <= action.primary <= 100 and 0 <= action.canary <= 100
            assert action.primary + action.canary == 100
        assert 0 <= after.canary_weight <= 100

        # Weight never decreases during a progression of one revision.
        if (
            before.phase in PROGRESSION
            and after.phase in PROGRESSION
            and after.last_applied_spec == before.last_applied_spec
        ):
            assert after.canary_weight >= before.canary_weight
            assert all(a.canary >= before.canary_weight for a in routes)

        # A rollback always ends at 100/0 with the canary scaled to 0.
        if after.phase == Phase.FAILED and before.phase != Phase.FAILED:
            assert self.world.routes is not None
            assert (self.world.routes.primary, self.world.routes.canary) == (100, 0)
            assert self.world.target_replicas == 0
            assert after.canary_weight == 0

        # Promotion never happens with a failed check pending or a closed gate.
        if any(isinstance(a, PromoteTemplate) for a in decision.actions):
            skipped = spec.skip_analysis or (
                accepted == "promote" and request is not None and request.skip_analysis
            )
            if not skipped:
                # Failed checks and closed gates are Warnings of the release ("Synced").
                assert not [e for e in emitted if (e.type, e.reason) == ("Warning", "Synced")]
                for metric in spec.analysis.metrics:
                    value = metrics[metric.name].value
                    limits = metric.threshold_range
                    assert value is not None
                    assert limits.min is None or value >= limits.min
                    assert limits.max is None or value <= limits.max
                for webhook in spec.analysis.webhooks:
                    if webhook.type in ("rollout", "confirm-promotion") and accepted != "promote":
                        assert answers.get(webhook.name, GateResult(True)).ok
                    if webhook.type == "rollback":
                        assert not answers.get(webhook.name, GateResult(True)).ok

        # Only the retry request runs a failed revision again without a spec change.
        started = before.phase not in PROGRESSION + (Phase.WAITING,) and after.phase in (
            PROGRESSION + (Phase.WAITING,)
        )
        if started and revision == before.last_failed_spec:
            assert accepted == "retry"
        if after.phase in PROGRESSION:
            assert after.last_applied_spec != after.last_failed_spec, "analysing a failed revision"

        # A revert hands the app back on its last promoted revision, never on one that was not
        # promoted (unless the progress deadline forced it).
        if any(isinstance(a, Revert) for a in decision.actions) and before.last_promoted_spec:
            forced = any("although it is not ready" in e.message for e in emitted)
            assert forced or revision == before.last_promoted_spec, "reverted to unpromoted"

        # History is the events, in order, bounded; each request is answered once.
        grown = len(after.history) - len(before.history)
        new_entries = after.history[-len(emitted) :] if emitted else ()
        assert [(h.type, h.reason, h.message) for h in new_entries] == [
            (e.type, e.reason, e.message) for e in emitted
        ]
        assert len(after.history) <= HISTORY_LIMIT
        assert grown <= len(emitted)
        if ack is not None:
            assert request is not None and ack.id == request.id
        assert after.failed_checks <= max(spec.analysis.threshold, before.failed_checks)


@settings(max_examples=200, deadline=None)
@given(
    analysis_spec=analyses(),
    skip_analysis=st.sampled_from([False, False, False, True]),
    revert=st.booleans(),
    gate_answers=st.fixed_dictionaries({type_: st.booleans() for type_ in GATED_TYPES}),
    operations=st.lists(OPERATIONS, min_size=3, max_size=25),
)
def test_invariants_hold_over_random_histories(
    analysis_spec: AnalysisSpec,
    skip_analysis: bool,
    revert: bool,
    gate_answers: dict[str, bool],
    operations: list[tuple[tuple[Any, ...], list[int]]],
) -> None:
    subject = canary(
        analysis_spec=analysis_spec, skip_analysis=skip_analysis, revert_on_deletion=revert
    )
    world = World(subject, success_rate={"1.1.3": 40.0})
    world.gate_answers = {name: GateResult(ok) for name, ok in gate_answers.items()}
    Checker(world).run(operations)


@settings(max_examples=100, deadline=None)
@given(analysis_spec=analyses())
def test_a_healthy_release_always_succeeds(analysis_spec: AnalysisSpec) -> None:
    """With healthy metrics and open gates, every strategy ends Succeeded, primary updated."""
    world = World(canary(analysis_spec=analysis_spec))
    world.gate_answers["rollback"] = GateResult(False)  # a 2xx from a rollback hook rolls back
    for _ in range(3):
        world.tick()
    world.target_version = "1.1.2"
    for _ in range(150):  # the slowest schedule (stepWeight 1 to 100) needs ~105 ticks
        world.tick()
        if world.canary.status.phase == Phase.SUCCEEDED:
            break
    assert world.canary.status.phase == Phase.SUCCEEDED
    assert world.primary_version == "1.1.2"
    assert world.target_replicas == 0
    assert world.routes is not None and (world.routes.primary, world.routes.canary) == (100, 0)
