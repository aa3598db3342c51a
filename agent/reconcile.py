"""Reconcile one canary (the shell around the pure core's `decide`, agent/core): observe from
the caches, decide, act, write status once, record events.

    obj --parse--> Canary --observe--> Observations --decide--> Decision
        (QueryMetrics/RunGates? run them, decide again at the same `now`)
        --execute actions--> write status (skip if unchanged) --> create Events

A spec that does not parse never reaches `decide`, and an action that fails stops the tick: the
core says what status records of them (agent/core/faults.py), this module writes it and records
the Event, and the agent carries on with other canaries. Once the spec parses again, `decide`
sees the `Valid=False` condition and turns it to `Valid=True`.
"""

from __future__ import annotations

import dataclasses
import logging
from collections.abc import Callable, Hashable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from agent.cache import Caches
from agent.core import faults, readiness
from agent.core.types import (
    Decision,
    EmitEvent,
    GateResult,
    MetricResult,
    Observations,
    QueryMetrics,
    RunGates,
)
from agent.events import event_object
from agent.executor import DEPLOYMENT_API, Executor
from agent.logs import CanaryLogger, for_canary
from agent.memo import ByVersion
from agent.metrics import query_for
from agent.observe import observations, pending_request
from agent.policy import TenantPolicy, spec_problem
from agent.status_writer import write_status
from agent.telemetry import Telemetry
from agent.toolkit import Router, Toolkit
from kubectl_canary.api.errors import InvalidResource
from kubectl_canary.api.model import (
    API_VERSION,
    CLUSTER_TEMPLATE_KIND,
    FINALIZER,
    Canary,
    CanaryStatus,
    MetricTemplate,
    Phase,
)
from kubectl_canary.api.parse import parse_canary, parse_metric_template, parse_status
from kubectl_canary.api.render import render_status
from kubectl_canary.objects.apex import (
    apex_serves_target,
    has_ready_address,
    pods_of,
    serves_only,
)
from kubectl_canary.objects.builders import HPA_API
from kubectl_canary.objects.names import primary_name, service_name, service_names
from kubectl_canary.objects.selectors import generated_names_problem
from kubectl_canary.objects.writer import OwnershipError
from kubectl_canary.resources import ApiError, NotFoundError, Obj

log = logging.getLogger("agent.reconcile")

DecideFn = Callable[[Canary, Observations, datetime], Decision]
# How many decide passes a tick allows (gates, then metrics, then the real decision).
_MAX_PASSES = 4


@dataclass(frozen=True)
class TickSettings:
    default_provider: str = "kubernetes"
    metrics_server: str = ""
    min_interval: float = 1.0
    instance: str = "kubectl-canary-agent"
    policy: TenantPolicy = field(default_factory=TenantPolicy)
    # Next tick after an invalid spec or a failed action (a fix triggers a tick at once anyway).
    retry_seconds: float = 10.0


def _reverting(canary: Canary) -> bool:
    """A Canary being deleted whose finalizer waits for the hand-back (every deleted Canary
    the agent manages, whatever revertOnDeletion says)."""
    return canary.deletion_timestamp is not None and FINALIZER in canary.finalizers


def _onboarding(canary: Canary) -> bool:
    """A Canary initialising (not being deleted): staged onboarding waits on endpoints."""
    return canary.deletion_timestamp is None and canary.status.phase == Phase.INITIALIZING


class EventSink:
    """Creates Events; a failure is logged, never fatal (the history in status has them)."""

    def __init__(self, create: Callable[[Obj], Obj], telemetry: Telemetry) -> None:
        self._create = create
        self._telemetry = telemetry

    def record(self, obj: Obj, clog: CanaryLogger) -> None:
        try:
            self._create(obj)
            self._telemetry.event_recorded()
        except ApiError as exc:
            clog.warning("could not record event: %s", exc, extra={"reason": obj.get("reason")})


class Ticker:
    def __init__(
        self,
        client: Any,  # CachedClient: ResourceClient + update_status, reads from caches
        caches: Caches,
        toolkit: Toolkit,
        decide: DecideFn,
        telemetry: Telemetry,
        settings: TickSettings,
        clock: Callable[[], datetime] = lambda: datetime.now(UTC),
    ) -> None:
        self._client = client
        self._caches = caches
        self._toolkit = toolkit
        self._decide = decide
        self._telemetry = telemetry
        self._settings = settings
        self._clock = clock
        self._events = EventSink(client.create, telemetry)
        # Per canary: the parsed Canary, and its target's revision hash (agent/memo.py).
        self._parsed: ByVersion[Canary] = ByVersion()
        self._revisions: ByVersion[str] = ByVersion()

    def __call__(self, key: str) -> float | None:
        ns, name = key.split("/", 1)
        obj = self._caches.get(API_VERSION, "Canary", ns, name)
        clog = for_canary(log, key)
        if obj is None:
            self.forget(key)
            return None
        try:
            canary = self._parsed.get(key, _version(obj), lambda: self._parse(obj))
        except InvalidResource as exc:
            self._report(obj, faults.invalid_spec, str(exc), clog)
            self._telemetry.outcome("invalid")
            return self._settings.retry_seconds
        try:
            delay = self._tick(canary, obj, clog)
            outcome = "ok"
        except OwnershipError as exc:
            # Not ours to take (a user's `<name>-primary` HPA, Deployment, Service): say so in
            # a condition until it is out of the way; the next clean tick clears it.
            self._report(obj, faults.object_in_the_way, str(exc), clog)
            delay = self._settings.retry_seconds
            outcome = "blocked"
        except (ApiError, RuntimeError, LookupError, ValueError) as exc:
            # API failures and provider refusals (a routing object owned by someone else, a
            # Deployment gone mid-tick): nothing is written; retried soon.
            delay = self._failed(canary, obj, exc, clog)
            outcome = "error"
        self._telemetry.outcome(outcome)
        return delay

    def forget(self, key: str) -> None:
        """Drop what is kept for a canary that is gone, or no longer this replica's."""
        ns, name = key.split("/", 1)
        self._telemetry.forget(ns, name)
        self._parsed.forget(key)
        self._revisions.forget(key)

    def _parse(self, obj: Obj) -> Canary:
        return parse_canary(obj, default_provider=self._settings.default_provider)

    # ----- the normal path -----

    def _tick(self, canary: Canary, obj: Obj, clog: CanaryLogger) -> float:
        now = self._clock()
        ns = canary.namespace
        target_name = canary.spec.target_ref.name
        target = self._caches.get(DEPLOYMENT_API, "Deployment", ns, target_name)
        primary = self._caches.get(DEPLOYMENT_API, "Deployment", ns, primary_name(canary))
        target_hash = self._target_hash(canary, target) if target is not None else ""
        spec_error, templates = self._templates(canary)
        if spec_error is None:
            spec_error = spec_problem(
                canary, templates, self._settings.policy, self._settings.metrics_server
            )
        if target is not None and spec_error is None:
            refs = self._toolkit.tracked_config_refs(target)
            spec_error = generated_names_problem(target, refs)
        router: Router | None = None
        try:
            router = self._toolkit.router(canary, self._client)
        except (KeyError, ValueError) as exc:
            spec_error = spec_error or str(exc)
        routes = router.get_routes(canary) if router is not None and target is not None else None
        hpa = None
        if canary.spec.autoscaler_ref is not None:
            ref = canary.spec.autoscaler_ref
            hpa = self._caches.get(HPA_API, "HorizontalPodAutoscaler", ns, ref.name)
        request = pending_request(canary, clog.warning)
        on_target = self._apex_on_target(canary, target) if _reverting(canary) else None
        obs = observations(
            canary, target, target_hash, primary, "", routes, hpa, request, spec_error, on_target
        )
        threshold = canary.spec.analysis.primary_ready_threshold
        if _onboarding(canary) and readiness.is_ready(obs.primary, threshold):
            # The endpoints matter to onboarding only once the primary is ready (the core's
            # initializing_tick): before that, reading them on every rollout event of every
            # onboarding canary was most of the API load of onboarding 10,000 at once.
            on_service, on_apex = self._on_primary(canary, primary)
            obs = dataclasses.replace(
                obs, primary_service_on_primary=on_service, apex_on_primary=on_apex
            )
        decision = self._decide_fully(canary, obs, now, templates, clog)
        executor = Executor(self._client, self._toolkit, clog)
        out = executor.run(canary, obj, target, decision.actions)
        self._write(canary, out.canary_obj, decision.status, clog)
        for ev in out.events:
            self._event(out.canary_obj, ev, now, clog)
        self._telemetry.canary(canary, decision.status)
        if out.requeue is not None:
            return max(out.requeue, 0.0)
        return max(canary.spec.analysis.interval_seconds, self._settings.min_interval)

    def _apex_on_target(self, canary: Canary, target: Obj | None) -> bool | None:
        """Whether the apex Service's ready endpoints are all the target's pods.

        Two live reads (Endpoints and Pods are not cached: watching every pod of the cluster
        would cost far more than these requests), made only while a Canary is being reverted,
        so the API load does not grow with the number of canaries. None: cannot tell.
        """
        return apex_serves_target(self._client, canary, target)

    def _on_primary(self, canary: Canary, primary: Obj | None) -> tuple[bool | None, bool | None]:
        """Whether the primary Service's and the apex Service's ready endpoints are all the
        primary's pods: live reads, made only while a Canary initialises with its primary
        ready. The Endpoints first: while neither has a ready address (the endpoints controller
        not there yet) the answer is no, and the pods need not be listed."""
        _, primary_service, _ = service_names(canary)
        ns = canary.namespace
        endpoints = [
            self._client.get("v1", "Endpoints", ns, s)
            for s in (primary_service, service_name(canary))
        ]
        if not any(has_ready_address(e) for e in endpoints):
            return False, False
        pods = pods_of(self._client, primary)
        if pods is None:
            return None, None
        on_service, on_apex = (serves_only(e, pods) for e in endpoints)
        return on_service, on_apex

    def _target_hash(self, canary: Canary, target: Obj) -> str:
        ns = canary.namespace
        configs: dict[tuple[str, str], Obj | None] = {}
        for kind, cname in self._toolkit.tracked_config_refs(target):
            # Through the client: ConfigMaps from their cache, Secrets by a GET of that one
            # Secret (they are never listed or cached: docs/security.md).
            configs[(kind, cname)] = self._client.get("v1", kind, ns, cname)
        version = (_version(target), tuple((ref, _version(c)) for ref, c in configs.items()))
        return self._revisions.get(
            f"{ns}/{canary.name}", version, lambda: self._toolkit.template_hash(target, configs)
        )

    def _templates(self, canary: Canary) -> tuple[str | None, dict[str, MetricTemplate]]:
        """The templates the analysis references (by metric name), and a problem if one is
        missing, bad, not usable from this namespace, or renders to an unsafe query."""
        found: dict[str, MetricTemplate] = {}
        for metric in canary.spec.analysis.metrics:
            ref = metric.template_ref
            if ref is None:
                continue
            if ref.kind == CLUSTER_TEMPLATE_KIND:
                if not self._caches.watches(API_VERSION, CLUSTER_TEMPLATE_KIND):
                    return (
                        f"metric {metric.name}: ClusterMetricTemplates are served only by an "
                        "agent that watches every namespace",
                        found,
                    )
                shown = f"{CLUSTER_TEMPLATE_KIND} {ref.name}"
                raw = self._caches.get(API_VERSION, CLUSTER_TEMPLATE_KIND, "", ref.name)
            else:
                # Cross-namespace references are refused by the spec check (validate.py).
                shown = f"MetricTemplate {canary.namespace}/{ref.name}"
                raw = self._caches.get(API_VERSION, "MetricTemplate", canary.namespace, ref.name)
            if raw is None:
                return f"metric {metric.name}: {shown} not found", found
            try:
                template = parse_metric_template(raw)
                query_for(canary, metric, template)
            except InvalidResource as exc:
                return f"metric {metric.name}: {shown}: {exc}", found
            except ValueError as exc:
                return f"metric {metric.name}: {exc}", found
            found[metric.name] = template
        return None, found

    def _decide_fully(
        self,
        canary: Canary,
        obs: Observations,
        now: datetime,
        templates: dict[str, MetricTemplate],
        clog: CanaryLogger,
    ) -> Decision:
        decision = self._decide(canary, obs, now)
        for _ in range(_MAX_PASSES):
            asks = [a for a in decision.actions if isinstance(a, QueryMetrics | RunGates)]
            if not asks:
                return decision
            for ask in asks:
                if isinstance(ask, QueryMetrics):
                    merged = dict(obs.metrics or {})
                    merged.update(self._query(canary, ask, templates, clog))
                    obs = dataclasses.replace(obs, metrics=merged)
                else:
                    gates = dict(obs.gates or {})
                    gates.update(self._gates(canary, ask, clog))
                    obs = dataclasses.replace(obs, gates=gates)
            decision = self._decide(canary, obs, now)
        raise RuntimeError("the core kept asking for metrics/gates")

    def _query(
        self,
        canary: Canary,
        ask: QueryMetrics,
        templates: dict[str, MetricTemplate],
        clog: CanaryLogger,
    ) -> dict[str, MetricResult]:
        server = canary.spec.metrics_server or self._settings.metrics_server
        results: dict[str, MetricResult] = {}
        for metric in ask.metrics:
            try:
                result = self._toolkit.query_metric(
                    canary, metric, templates.get(metric.name), server
                )
            except Exception as exc:  # noqa: BLE001 - a provider bug is a failed check, not a crash
                clog.exception("metric query crashed", extra={"metric": metric.name})
                result = MetricResult(error=str(exc))
            results[metric.name] = result
            clog.info(
                "metric %s",
                metric.name,
                extra={
                    "metric": metric.name,
                    "value": result.value,
                    "noData": result.no_data,
                    "error": result.error,
                },
            )
        return results

    def _gates(self, canary: Canary, ask: RunGates, clog: CanaryLogger) -> dict[str, GateResult]:
        results: dict[str, GateResult] = {}
        for hook in ask.webhooks:
            payload = self._toolkit.webhook_payload(canary, hook, ask.phase)
            try:
                result = self._toolkit.call_webhook(hook, payload)
            except Exception as exc:  # noqa: BLE001 - a webhook bug closes the gate
                clog.exception("webhook call crashed", extra={"webhook": hook.name})
                result = GateResult(ok=False, message=str(exc))
            results[hook.name] = result
            clog.info(
                "webhook %s %s",
                hook.name,
                "passed" if result.ok else "failed",
                extra={"webhook": hook.name, "type": hook.type, "detail": result.message},
            )
        return results

    def _write(self, canary: Canary, obj: Obj, status: CanaryStatus, clog: CanaryLogger) -> None:
        try:
            written = write_status(self._client, obj, render_status(status))
        except NotFoundError:
            clog.info("canary is gone; status not written")
            return
        if written is not None:
            self._telemetry.status_written()
            clog.debug(
                "status written",
                extra={"phase": status.phase.value, "canaryWeight": status.canary_weight},
            )

    def _event(self, canary_obj: Obj, ev: EmitEvent, now: datetime, clog: CanaryLogger) -> None:
        obj = event_object(canary_obj, ev.type, ev.reason, ev.message, now, self._settings.instance)
        level = logging.WARNING if ev.type == "Warning" else logging.INFO
        clog.log(level, ev.message, extra={"reason": ev.reason, "eventType": ev.type})
        self._events.record(obj, clog)

    # ----- failures -----

    def _failed(self, canary: Canary, obj: Obj, exc: Exception, clog: CanaryLogger) -> float:
        """An action failed mid-tick: nothing it decided is written; the failure is reported."""
        clog.error("tick failed: %s", exc, extra={"error": type(exc).__name__})
        self._report(obj, faults.sync_failed, str(exc), clog)
        return min(self._settings.retry_seconds, canary.spec.analysis.interval_seconds)

    def _report(
        self,
        obj: Obj,
        fault: Callable[[CanaryStatus, str, datetime], Decision | None],
        problem: str,
        clog: CanaryLogger,
    ) -> None:
        """Write what the core says of `problem` onto the stored status, then its Event; nothing
        when the core finds it already reported."""
        try:
            status = parse_status(obj.get("status"))
        except InvalidResource:
            status = CanaryStatus()
        now = self._clock()
        decision = fault(status, problem, now)
        if decision is None:
            return  # already reported; no event per tick
        try:
            write_status(self._client, obj, render_status(decision.status))
        except ApiError as err:
            clog.error("could not write status: %s", err)
        for action in decision.actions:
            if isinstance(action, EmitEvent):
                self._event(obj, action, now, clog)


def _version(obj: Obj | None) -> Hashable:
    """What says an object changed: its uid and resourceVersion (the API server bumps the
    latter on every write). An object without one is never taken as unchanged."""
    if obj is None:
        return None
    meta = obj.get("metadata") or {}
    rv = meta.get("resourceVersion")
    return (meta.get("uid"), rv) if rv else object()
