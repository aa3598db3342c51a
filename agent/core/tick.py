"""The working state of one `decide` call: status being built, actions, and result access.

Dataclasses in the model are frozen; a tick collects changes here and freezes them into a
`Decision` at the end. All event emission goes through `Tick.event`, which appends the identical
entry to `status.history` (and tells `event` webhooks), so status, Events and logs agree.

Results follow the two-pass protocol of `types.py`. While a result is missing, `Results` records
that it is needed and answers "carry on" (gate open, rollback not signalled, metric not judged),
so a first pass walks the longest path the tick could take and asks for everything that path
needs at once; the second pass, with the results, then never lacks one.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from datetime import datetime
from typing import Any

from agent.core import conditions, history
from agent.core.timestamps import format_time, seconds_since
from agent.core.types import (
    Action,
    Decision,
    EmitEvent,
    GateResult,
    MetricResult,
    Notify,
    Observations,
    QueryMetrics,
    RequeueAfter,
    RunGates,
    SetRoutes,
)
from kubectl_canary.api.model import (
    AnalysisSpec,
    Canary,
    CanarySpec,
    CanaryStatus,
    HistoryEntry,
    MetricSpec,
    Phase,
    WebhookSpec,
)
from kubectl_canary.objects.names import primary_name

NORMAL = "Normal"
WARNING = "Warning"
SYNCED = "Synced"  # Flagger's reason for every release event
# Smallest requeue of a tick that polls (waits on something no watch event announces), so a
# runtime never spins on a zero delay.
MIN_REQUEUE_SECONDS = 1.0
# A tick that moved to a phase whose next move waits for nothing asks for the next tick at
# once: it makes progress every time, so it cannot spin.
PROCEED_SECONDS = 0.0


class Results:
    """Metric and gate results of this tick, recording the ones still to be fetched."""

    def __init__(self, observations: Observations) -> None:
        self._metrics = observations.metrics
        self._gates = observations.gates
        self._missing_metrics: dict[str, MetricSpec] = {}
        self._missing_gates: dict[str, tuple[WebhookSpec, str]] = {}

    def metric(self, spec: MetricSpec) -> MetricResult | None:
        """The result for `spec`, or None (recorded as needed) before metrics were queried."""
        if self._metrics is None:
            self._missing_metrics.setdefault(spec.name, spec)
            return None
        # Queried but absent: the runtime had nothing to say, which must not pass as healthy.
        return self._metrics.get(spec.name, MetricResult(error="no result reported"))

    def gate(self, webhook: WebhookSpec, phase: str) -> GateResult | None:
        """The result for `webhook`, or None (recorded as needed) before gates were called."""
        if self._gates is None:
            self._missing_gates.setdefault(webhook.name, (webhook, phase))
            return None
        return self._gates.get(webhook.name, GateResult(ok=False, message="no result reported"))

    @property
    def incomplete(self) -> bool:
        return bool(self._missing_metrics or self._missing_gates)

    def queries(self) -> tuple[Action, ...]:
        """The RunGates (one per webhook phase) and QueryMetrics actions still needed."""
        by_phase: dict[str, list[WebhookSpec]] = {}
        for webhook, phase in self._missing_gates.values():
            by_phase.setdefault(phase, []).append(webhook)
        actions: list[Action] = [RunGates(tuple(hooks), phase) for phase, hooks in by_phase.items()]
        if self._missing_metrics:
            actions.append(QueryMetrics(tuple(self._missing_metrics.values())))
        return tuple(actions)


@dataclass
class Tick:
    canary: Canary
    obs: Observations
    now: datetime
    status: CanaryStatus
    results: Results
    actions: list[Action] = field(default_factory=list)
    requeue: float | None = None  # None: no requeue (the object is going away)
    # A `promote` request without --skip-analysis: promote in this tick if its checks pass.
    promotion_forced: bool = False

    @classmethod
    def start(cls, canary: Canary, observations: Observations, now: datetime) -> Tick:
        return cls(
            canary=canary,
            obs=observations,
            now=now,
            status=canary.status,
            results=Results(observations),
            requeue=canary.spec.analysis.interval_seconds,
        )

    # ----- names used in messages -----

    @property
    def spec(self) -> CanarySpec:
        return self.canary.spec

    @property
    def analysis(self) -> AnalysisSpec:
        return self.canary.spec.analysis

    @property
    def display(self) -> str:
        """`<canary>.<namespace>`, as Flagger names the canary in events."""
        return self.canary.display

    @property
    def target_display(self) -> str:
        """`<target>.<namespace>`, as Flagger names the workload in events."""
        return f"{self.spec.target_ref.name}.{self.canary.namespace}"

    @property
    def primary_display(self) -> str:
        return f"{primary_name(self.canary)}.{self.canary.namespace}"

    @property
    def now_text(self) -> str:
        return format_time(self.now)

    # ----- building the decision -----

    def update(self, **changes: Any) -> None:
        self.status = replace(self.status, **changes)

    def act(self, action: Action) -> None:
        if isinstance(action, SetRoutes):
            self.update(primary_weight=action.primary)
        self.actions.append(action)

    def hooks(self, type_: str) -> tuple[WebhookSpec, ...]:
        return tuple(w for w in self.analysis.webhooks if w.type == type_)

    def event(
        self, message: str, *, warning: bool = False, reason: str = SYNCED, once: bool = False
    ) -> None:
        """Emit an Event and append the same entry to history.

        `once`: skip it when history already ends with this very entry, so a wait that lasts
        many ticks is recorded once and leaves status unchanged.
        """
        type_ = WARNING if warning else NORMAL
        if once and history.repeats_last(self.status.history, type_, reason, message):
            return
        entry = HistoryEntry(self.now_text, type_, reason, message)
        self.update(history=history.append(self.status.history, entry))
        self.actions.append(EmitEvent(type_, reason, message))
        event_hooks = self.hooks("event")
        if event_hooks:
            self.actions.append(Notify(event_hooks, self.status.phase.value, message))

    def enter(self, phase: Phase) -> None:
        """Move to `phase`: transition time on change, and the matching Promoted condition."""
        if phase != self.status.phase or not self.status.last_transition_time:
            self.update(phase=phase, last_transition_time=self.now_text)
        self.update(
            conditions=conditions.with_promoted(self.status.conditions, phase, self.now_text)
        )

    def requeue_within(self, seconds: float) -> None:
        """Ask to be ticked again no later than `seconds` from now."""
        seconds = max(MIN_REQUEUE_SECONDS, seconds)
        if self.requeue is not None:
            self.requeue = min(self.requeue, seconds)

    def proceed(self) -> None:
        """Ask for the next tick at once: the next move waits for no time and no rollout."""
        if self.requeue is not None:
            self.requeue = PROCEED_SECONDS

    def interval_passed(self, since: str) -> bool:
        """True when an `interval` has passed since `since` (or there is no such time); else
        ask to be ticked again when it has.

        A stored time in the future (clock skew between agent replicas) counts as passed, so a
        canary can never be stuck behind a bad clock.
        """
        elapsed = seconds_since(since, self.now)
        interval = self.analysis.interval_seconds
        if elapsed is None or elapsed < 0 or elapsed >= interval:
            return True
        self.requeue_within(interval - elapsed)
        return False

    def due(self) -> bool:
        """True when an analysis step may run: one `interval` after the last step, or at once
        when the release has taken none yet (`lastAnalysisTime` empty): the wait before the
        first step is the canary's rollout, not an interval."""
        return self.interval_passed(self.status.last_analysis_time)

    def decision(self) -> Decision:
        if self.results.incomplete:
            return Decision(self.canary.status, self.results.queries())
        if self.obs.routes is not None and not any(isinstance(a, SetRoutes) for a in self.actions):
            self.update(primary_weight=self.obs.routes.primary)
        if self.status.observed_generation != self.canary.generation:
            self.update(observed_generation=self.canary.generation)
        actions = list(self.actions)
        if self.requeue is not None:
            actions.append(RequeueAfter(self.requeue))
        return Decision(self.status, tuple(actions))
