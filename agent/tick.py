"""One tick of one canary: observe from the caches, decide, act, write status once, record events.

    obj --parse--> Canary --observe--> Observations --decide--> Decision
        (QueryMetrics/RunGates? run them, decide again at the same `now`)
        --execute actions--> write status (skip if unchanged) --> create Events

A spec that does not parse never reaches the core: the tick sets a `Valid=False` condition and
records a Warning event once per distinct problem, and the agent carries on with other canaries.
Once the spec parses again, the core sees that condition and turns it to `Valid=True`.
"""

from __future__ import annotations

import dataclasses
import logging
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from agent.cache import Caches
from agent.core.conditions import VALID as VALID_CONDITION
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
    HISTORY_LIMIT,
    Canary,
    CanaryStatus,
    Condition,
    HistoryEntry,
    MetricTemplate,
)
from kubectl_canary.api.parse import parse_canary, parse_metric_template, parse_status
from kubectl_canary.api.render import render_status
from kubectl_canary.objects.apex import apex_serves_target
from kubectl_canary.objects.builders import HPA_API
from kubectl_canary.objects.names import primary_name
from kubectl_canary.objects.selectors import generated_names_problem
from kubectl_canary.objects.writer import OwnershipError
from kubectl_canary.resources import ApiError, NotFoundError, Obj

log = logging.getLogger("agent.tick")

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
    """A Canary being deleted whose finalizer waits for the revert (revertOnDeletion)."""
    return (
        canary.deletion_timestamp is not None
        and canary.spec.revert_on_deletion
        and FINALIZER in canary.finalizers
    )


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
        self._last_failure: dict[str, str] = {}

    def __call__(self, key: str) -> float | None:
        ns, name = key.split("/", 1)
        obj = self._caches.get(API_VERSION, "Canary", ns, name)
        clog = for_canary(log, key)
        if obj is None:
            self._telemetry.forget(ns, name)
            self._last_failure.pop(key, None)
            return None
        try:
            canary = parse_canary(obj, default_provider=self._settings.default_provider)
        except InvalidResource as exc:
            self._not_valid(obj, "InvalidSpec", f"Invalid spec: {exc}", clog)
            self._telemetry.outcome("invalid")
            return self._settings.retry_seconds
        try:
            delay = self._tick(canary, obj, clog)
            self._last_failure.pop(key, None)
            outcome = "ok"
        except OwnershipError as exc:
            # Not ours to take (a user's `<name>-primary` HPA, Deployment, Service): say so in
            # a condition until it is out of the way; the next clean tick clears it.
            self._not_valid(obj, "ObjectInTheWay", f"Blocked: {exc}", clog)
            delay = self._settings.retry_seconds
            outcome = "blocked"
        except (ApiError, RuntimeError, LookupError, ValueError) as exc:
            # API failures and provider refusals (a routing object owned by someone else, a
            # Deployment gone mid-tick): nothing is written; retried soon.
            delay = self._failed(canary, obj, exc, clog)
            outcome = "error"
        self._telemetry.outcome(outcome)
        return delay

    # ----- the normal path -----

    def _tick(self, canary: Canary, obj: Obj, clog: CanaryLogger) -> float:
        now = self._clock()
        ns = canary.namespace
        target_name = canary.spec.target_ref.name
        target = self._caches.get(DEPLOYMENT_API, "Deployment", ns, target_name)
        primary = self._caches.get(DEPLOYMENT_API, "Deployment", ns, primary_name(canary))
        target_hash = self._target_hash(ns, target) if target is not None else ""
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

    def _target_hash(self, ns: str, target: Obj) -> str:
        configs: dict[tuple[str, str], Obj | None] = {}
        for kind, cname in self._toolkit.tracked_config_refs(target):
            # Through the client: ConfigMaps from their cache, Secrets by a GET of that one
            # Secret (they are never listed or cached: docs/security.md).
            configs[(kind, cname)] = self._client.get("v1", kind, ns, cname)
        return self._toolkit.template_hash(target, configs)

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
        """An action failed mid-tick: nothing is written; say so once per distinct error."""
        clog.error("tick failed: %s", exc, extra={"error": type(exc).__name__})
        message = f"Reconciliation failed: {exc}"
        if self._last_failure.get(canary.key) != message:
            self._last_failure[canary.key] = message
            ev = EmitEvent("Warning", "SyncFailed", message)
            self._event(obj, ev, self._clock(), clog)
        return min(self._settings.retry_seconds, canary.spec.analysis.interval_seconds)

    def _not_valid(self, obj: Obj, reason: str, message: str, clog: CanaryLogger) -> None:
        """Valid=False with `reason`, one history entry and one Warning per distinct message."""
        try:
            status = parse_status(obj.get("status"))
        except InvalidResource:
            status = CanaryStatus()
        current = next((c for c in status.conditions if c.type == VALID_CONDITION), None)
        if current is not None and current.status == "False" and current.message == message:
            return  # already reported; no event per tick
        now = self._clock()
        stamp = now.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
        condition = Condition(VALID_CONDITION, "False", reason, message, stamp, stamp)
        others = tuple(c for c in status.conditions if c.type != VALID_CONDITION)
        entry = HistoryEntry(stamp, "Warning", reason, message)
        status = dataclasses.replace(
            status,
            conditions=(*others, condition),
            history=(*status.history, entry)[-HISTORY_LIMIT:],
        )
        clog.warning(message, extra={"reason": reason, "eventType": "Warning"})
        try:
            write_status(self._client, obj, render_status(status))
        except ApiError as err:
            clog.error("could not write status: %s", err)
        ev = event_object(obj, "Warning", reason, message, now, self._settings.instance)
        self._events.record(ev, clog)
