"""Render model objects back to the documents the API server stores.

`render_status` is the exact inverse of `parse.parse_status`: fields equal to their default are
left out (so `parse_status(render_status(s)) == s` and an idle status stays small), and empty
timestamps are never written (the CRD declares them `format: date-time`).
"""

from __future__ import annotations

import json
import math
from typing import Any

from kubectl_canary.api.model import (
    CanaryStatus,
    Condition,
    HistoryEntry,
    MetricValue,
    Phase,
    Request,
    RequestAck,
)

# The condition `kubectl wait --for=condition=Promoted` waits for.
PROMOTED_CONDITION = "Promoted"


def render_status(status: CanaryStatus) -> dict[str, Any]:
    """The camelCase `status` dict for `status`, omitting fields at their default value."""
    out: dict[str, Any] = {"phase": status.phase.value}
    _put(out, "canaryWeight", status.canary_weight, 0)
    _put(out, "failedChecks", status.failed_checks, 0)
    _put(out, "iterations", status.iterations, 0)
    _put(out, "paused", status.paused, False)
    _put(out, "lastAppliedSpec", status.last_applied_spec, "")
    _put(out, "lastPromotedSpec", status.last_promoted_spec, "")
    _put(out, "lastFailedSpec", status.last_failed_spec, "")
    _put(out, "trackedConfigs", dict(status.tracked_configs), {})
    _put(out, "lastTransitionTime", status.last_transition_time, "")
    _put(out, "waitingSince", status.waiting_since, "")
    _put(out, "lastAnalysisTime", status.last_analysis_time, "")
    _put(out, "observedGeneration", status.observed_generation, 0)
    _put(out, "conditions", [_condition(c) for c in status.conditions], [])
    _put(out, "history", [_history_entry(h) for h in status.history], [])
    _put(out, "lastMetrics", [_metric_value(m) for m in status.last_metrics], [])
    if status.last_request is not None:
        out["lastRequest"] = _request_ack(status.last_request)
    _put(out, "primaryWeight", status.primary_weight, 100)
    return out


def _put(out: dict[str, Any], key: str, value: Any, default: Any) -> None:
    if value != default:
        out[key] = value


def _condition(c: Condition) -> dict[str, Any]:
    out = {"type": c.type, "status": c.status}
    _put(out, "reason", c.reason, "")
    _put(out, "message", c.message, "")
    _put(out, "lastTransitionTime", c.last_transition_time, "")
    _put(out, "lastUpdateTime", c.last_update_time, "")
    return out


def _history_entry(h: HistoryEntry) -> dict[str, Any]:
    return {"time": h.time, "type": h.type, "reason": h.reason, "message": h.message}


def _metric_value(m: MetricValue) -> dict[str, Any]:
    # `value: null` is kept: it says "no data", which differs from a metric never evaluated.
    out: dict[str, Any] = {"name": m.name, "value": _finite(m.value), "passed": m.passed}
    _put(out, "min", _finite(m.min), None)
    _put(out, "max", _finite(m.max), None)
    _put(out, "time", m.time, "")
    return out


def _finite(number: float | None) -> float | None:
    # JSON has no NaN/Infinity (PromQL returns NaN for 0/0): the API server would reject the
    # whole status write, so such a value is written as "no data".
    return number if number is not None and math.isfinite(number) else None


def _request_ack(ack: RequestAck) -> dict[str, Any]:
    out: dict[str, Any] = {"id": ack.id, "action": ack.action, "accepted": ack.accepted}
    _put(out, "message", ack.message, "")
    _put(out, "time", ack.time, "")
    return out


def promoted_condition(
    phase: Phase, *, message: str, now: str, previous: Condition | None = None
) -> Condition:
    """The `Promoted` condition for `phase`: True once Succeeded, False while releasing/failed.

    `lastTransitionTime` only moves when the status value changes, as Kubernetes expects.
    """
    if phase is Phase.SUCCEEDED:
        value, reason = "True", "Succeeded"
    elif phase is Phase.FAILED:
        value, reason = "False", "Failed"
    elif phase is Phase.INITIALIZED:
        value, reason = "True", "Initialized"
    else:
        value, reason = "Unknown", phase.value
    if previous is None or previous.status != value or not previous.last_transition_time:
        transition = now
    else:
        transition = previous.last_transition_time
    return Condition(
        type=PROMOTED_CONDITION,
        status=value,
        reason=reason,
        message=message,
        last_transition_time=transition,
        last_update_time=now,
    )


def render_request(request: Request) -> str:
    """The JSON the plugin writes to REQUEST_ANNOTATION (`parse.parse_request` reads it)."""
    body: dict[str, Any] = {"id": request.id, "action": request.action.value}
    if request.skip_analysis:
        body["skipAnalysis"] = True
    return json.dumps(body, separators=(",", ":"))
