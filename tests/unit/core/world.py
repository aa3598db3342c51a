"""A tiny fake cluster for driving the core tick by tick.

It applies the core's actions the way the runtime would (scale, route, promote, finalizers)
and turns its state back into observations, so tests can tell a release as a story instead of
hand-writing every observation. Pods are ready as soon as they are asked for, except for
versions listed in `crashing`; metrics come from per-version behaviour. The Services'
endpoints follow their selectors one tick late, as an endpoints controller that has not caught
up when the next tick observes.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from datetime import datetime, timedelta

from agent.core.types import (
    AddFinalizer,
    Decision,
    GateResult,
    Initialize,
    MetricResult,
    Observations,
    PromoteTemplate,
    RemoveFinalizer,
    RestoreTargetTemplate,
    Revert,
    RevertRouting,
    Routes,
    ScaleTarget,
    SetRoutes,
    WorkloadObservation,
)
from kubectl_canary.api.model import FINALIZER, Canary, Request
from tests.unit.core.builders import T0, run_tick


@dataclass
class World:
    canary: Canary
    now: datetime = T0
    target_version: str = "1.1.1"
    target_replicas: int = 2
    primary_version: str | None = None  # None: no primary Deployment yet
    primary_replicas: int = 0
    routes: Routes | None = None
    success_rate: dict[str, float] = field(default_factory=dict)  # by version; default 100
    crashing: set[str] = field(default_factory=set)
    metrics_override: dict[str, MetricResult] | None = None  # e.g. no data or query errors
    gate_answers: dict[str, GateResult] = field(default_factory=dict)  # default: all ok
    deleting: bool = False
    request: Request | None = None
    # revertOnDeletion: the apex Service selects the target's pods (after `Revert`); its ready
    # endpoints are the target's pods (one tick later); the routing object was given back.
    service_on_target: bool = False
    endpoints_on_target: bool = False
    routing_reverted: bool = False
    # Onboarding: the primary Service's and the apex Service's ready endpoints are the
    # primary's pods (one tick after the primary is ready, and after the routing is ours).
    primary_service_serves: bool = False
    apex_on_primary: bool = False
    decisions: list[Decision] = field(default_factory=list)

    def _workload(self, version: str, replicas: int) -> WorkloadObservation:
        ready = 0 if version in self.crashing else replicas
        return WorkloadObservation(
            exists=True,
            replicas=replicas,
            ready_replicas=ready,
            updated_replicas=replicas,
            available_replicas=ready,
            template_hash=version,
        )

    def observe(self) -> Observations:
        primary = (
            WorkloadObservation(exists=False)
            if self.primary_version is None
            else self._workload(self.primary_version, self.primary_replicas)
        )
        return Observations(
            target=self._workload(self.target_version, self.target_replicas),
            primary=primary,
            routes=self.routes,
            request=self.request,
            deleting=self.deleting,
            # The runtime reads the endpoints only for a Canary being deleted.
            apex_on_target=self.endpoints_on_target if self.deleting else None,
            primary_service_on_primary=self.primary_service_serves,
            apex_on_primary=self.apex_on_primary,
        )

    def metrics(self) -> dict[str, MetricResult]:
        if self.metrics_override is not None:
            return self.metrics_override
        if self.target_replicas == 0 or self.target_version in self.crashing:
            return {
                "request-success-rate": MetricResult(no_data=True),
                "request-duration": MetricResult(no_data=True),
            }
        rate = self.success_rate.get(self.target_version, 100.0)
        return {
            "request-success-rate": MetricResult(rate),
            "request-duration": MetricResult(120.0),
        }

    def apply(self, decision: Decision) -> None:
        for action in decision.actions:
            if isinstance(action, Initialize):
                if self.primary_version is None:
                    self.primary_version = self.target_version
                    self.primary_replicas = self.target_replicas
                if self.routes is None and action.routing:
                    self.routes = Routes(100, 0)
            elif isinstance(action, ScaleTarget):
                self.target_replicas = action.replicas
            elif isinstance(action, SetRoutes):
                self.routes = Routes(action.primary, action.canary, action.mirror)
            elif isinstance(action, PromoteTemplate):
                self.primary_version = self.target_version
            elif isinstance(action, AddFinalizer):
                self.canary = replace(self.canary, finalizers=(FINALIZER,))
            elif isinstance(action, RemoveFinalizer):
                self.canary = replace(self.canary, finalizers=())
            elif isinstance(action, RestoreTargetTemplate):
                assert self.primary_version is not None, "restore without a primary"
                self.target_version = self.primary_version
            elif isinstance(action, Revert):
                self.service_on_target = True
            elif isinstance(action, RevertRouting):
                self.routing_reverted = True
                self.routes = None
        self.canary = replace(self.canary, status=decision.status)
        ack = decision.status.last_request
        if ack is not None and self.request is not None and ack.id == self.request.id:
            self.request = None  # acknowledged: the plugin's annotation is spent

    def tick(
        self, seconds: float | None = None, gate_answers: dict[str, GateResult] | None = None
    ) -> Decision:
        """Advance the clock (one analysis interval by default) and run one tick."""
        step = self.canary.spec.analysis.interval_seconds if seconds is None else seconds
        self.now += timedelta(seconds=step)
        answers = self.gate_answers if gate_answers is None else gate_answers
        selected_target = self.service_on_target
        decision = run_tick(self.canary, self.observe(), self.now, self.metrics(), answers)
        self.apply(decision)
        target_serves = self.target_replicas > 0 and self.target_version not in self.crashing
        self.endpoints_on_target = selected_target and target_serves
        primary_serves = (
            self.primary_version is not None
            and self.primary_replicas > 0
            and self.primary_version not in self.crashing
        )
        # The routing written this tick is what the endpoints controller follows by the next.
        routed = self.routes is not None
        self.apex_on_primary = self.primary_service_serves and routed and primary_serves
        self.primary_service_serves = primary_serves
        self.decisions.append(decision)
        return decision
