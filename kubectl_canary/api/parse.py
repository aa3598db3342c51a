"""Parse documents into the typed model: Canary, MetricTemplate, status and plugin requests.

`parse_canary` / `parse_metric_template` validate first and raise InvalidResource with every
problem, so a caller never holds a half-valid object. `parse_status` reads what the agent wrote
(`render.py` is its exact inverse). `parse_request` reads the plugin's request annotation.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

from kubectl_canary.api.errors import InvalidResource
from kubectl_canary.api.model import (
    REQUEST_ANNOTATION,
    Canary,
    CanaryStatus,
    Condition,
    HistoryEntry,
    MetricTemplate,
    MetricValue,
    Phase,
    Request,
    RequestAck,
    RequestAction,
)
from kubectl_canary.api.reader import Node, Problems, join
from kubectl_canary.api.validate import DEFAULT_PROVIDER, check_canary, check_metric_template


def parse_canary(obj: Any, *, default_provider: str = DEFAULT_PROVIDER) -> Canary:
    """The typed, defaulted Canary, including its status; InvalidResource lists every problem.

    `default_provider` is the agent's `--provider`, used when `spec.provider` is unset.
    """
    canary, problems = check_canary(obj, default_provider=default_provider)
    if problems or canary is None:
        raise InvalidResource("Canary", problems)
    assert isinstance(obj, Mapping)
    status = parse_status(obj.get("status"))
    return Canary(
        namespace=canary.namespace,
        name=canary.name,
        spec=canary.spec,
        status=status,
        uid=canary.uid,
        generation=canary.generation,
        resource_version=canary.resource_version,
        annotations=canary.annotations,
        finalizers=canary.finalizers,
        deletion_timestamp=canary.deletion_timestamp,
    )


def parse_metric_template(obj: Any) -> MetricTemplate:
    template, problems = check_metric_template(obj)
    if problems or template is None:
        raise InvalidResource("MetricTemplate", problems)
    return template


def parse_status(obj: Any) -> CanaryStatus:
    """The status the agent wrote (absent fields take their defaults).

    Raises InvalidResource when a field has the wrong type, e.g. after a hand edit.
    """
    if obj is None:
        return CanaryStatus()
    problems = Problems()
    if not isinstance(obj, Mapping):
        problems.add("status", "must be an object", obj)
        raise InvalidResource("Canary status", problems.items)
    node = Node(problems, obj, "status")
    phase_text = node.string("phase", enum=[p.value for p in Phase])
    last_request = node.child("lastRequest")
    status = CanaryStatus(
        phase=Phase(phase_text) if phase_text else Phase.INITIALIZING,
        canary_weight=node.integer("canaryWeight", 0, lo=0, hi=100),
        failed_checks=node.integer("failedChecks", 0, lo=0),
        iterations=node.integer("iterations", 0, lo=0),
        paused=node.boolean("paused"),
        last_applied_spec=node.string("lastAppliedSpec") or "",
        last_promoted_spec=node.string("lastPromotedSpec") or "",
        last_failed_spec=node.string("lastFailedSpec") or "",
        tracked_configs=node.string_map("trackedConfigs"),
        last_transition_time=node.string("lastTransitionTime") or "",
        waiting_since=node.string("waitingSince") or "",
        last_analysis_time=node.string("lastAnalysisTime") or "",
        observed_generation=node.integer("observedGeneration", 0, lo=0),
        conditions=tuple(_condition(c) for c in node.children("conditions")),
        history=tuple(_history_entry(h) for h in node.children("history")),
        last_metrics=tuple(_metric_value(m) for m in node.children("lastMetrics")),
        last_request=_request_ack(last_request) if last_request else None,
        primary_weight=node.integer("primaryWeight", 100, lo=0, hi=100),
    )
    if problems.items:
        raise InvalidResource("Canary status", problems.items)
    return status


def _condition(node: Node) -> Condition:
    return Condition(
        type=node.string("type", required=True) or "",
        status=node.string("status", required=True, enum=("True", "False", "Unknown")) or "",
        reason=node.string("reason") or "",
        message=node.string("message") or "",
        last_transition_time=node.string("lastTransitionTime") or "",
        last_update_time=node.string("lastUpdateTime") or "",
    )


def _history_entry(node: Node) -> HistoryEntry:
    return HistoryEntry(
        time=node.string("time") or "",
        type=node.string("type") or "",
        reason=node.string("reason") or "",
        message=node.string("message") or "",
    )


def _metric_value(node: Node) -> MetricValue:
    return MetricValue(
        name=node.string("name") or "",
        value=node.number("value"),
        min=node.number("min"),
        max=node.number("max"),
        passed=node.boolean("passed"),
        time=node.string("time") or "",
    )


def _request_ack(node: Node) -> RequestAck:
    return RequestAck(
        id=node.string("id") or "",
        action=node.string("action") or "",
        accepted=node.boolean("accepted"),
        message=node.string("message") or "",
        time=node.string("time") or "",
    )


def parse_request(annotations: Mapping[str, str] | None) -> Request | None:
    """The plugin's pending request, or None when the annotation is absent.

    Raises InvalidResource (path `metadata.annotations["kubectl-canary.dev/request"]`) when
    the annotation is not JSON of the form {"id": "...", "action": "promote", ...}.
    """
    text = (annotations or {}).get(REQUEST_ANNOTATION)
    if text is None:
        return None
    path = join("metadata.annotations", REQUEST_ANNOTATION)
    problems = Problems()
    try:
        data = json.loads(text)
    except ValueError as err:
        problems.add(path, f"must be JSON ({err})", text)
        raise InvalidResource("request", problems.items) from None
    if not isinstance(data, Mapping):
        problems.add(path, "must be a JSON object", data)
        raise InvalidResource("request", problems.items)
    node = Node(problems, data, path)
    node.only(("id", "action", "skipAnalysis"))
    request_id = node.string("id", required=True)
    action = node.string("action", required=True, enum=[a.value for a in RequestAction])
    skip = node.boolean("skipAnalysis")
    if skip and action and action != RequestAction.PROMOTE.value:
        node.add("skipAnalysis", f"only applies to promote, not {action}", skip)
    if problems.items or request_id is None or action is None:
        raise InvalidResource("request", problems.items)
    return Request(id=request_id, action=RequestAction(action), skip_analysis=skip)
