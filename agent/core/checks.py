"""Judging one metric result against its `thresholdRange`, in Flagger's words.

Providers only return numbers (or no data, or an error); deciding pass/fail is the core's job,
so every router/provider combination reads the same way. Messages keep Flagger's wording,
including Go's number and duration formatting ("57.14% < 99%", "1.2s > 500ms").
"""

from __future__ import annotations

from dataclasses import dataclass

from agent.core.types import MetricResult
from kubectl_canary.api.model import BUILTIN_METRICS, MetricSpec, MetricValue

_NS_PER_MS = 1_000_000
_NS_PER_S = 1_000_000_000
_NS_PER_MIN = 60 * _NS_PER_S


@dataclass(frozen=True)
class Verdict:
    """One metric judged: the value to show in status, and the Warning message on failure."""

    value: MetricValue
    failure: str | None  # None: the check passed

    @property
    def passed(self) -> bool:
        return self.failure is None


def go_float(number: float) -> str:
    """A float as Go's `%v` prints it: 99 -> '99', 99.5 -> '99.5'."""
    number = float(number)  # YAML gives ints for whole thresholds
    if number.is_integer() and abs(number) < 1e21:
        return str(int(number))
    return repr(number)


def _fraction(value: int, precision: int) -> str:
    whole, rest = divmod(value, 10**precision)
    digits = f"{rest:0{precision}d}".rstrip("0")
    return f"{whole}.{digits}" if digits else str(whole)


def go_duration(milliseconds: float) -> str:
    """Whole milliseconds as Go's `time.Duration` prints them: '500ms', '1.2s', '1m30s'."""
    nanos = int(milliseconds) * _NS_PER_MS  # Flagger truncates to whole milliseconds
    if nanos == 0:
        return "0s"
    sign = "-" if nanos < 0 else ""
    nanos = abs(nanos)
    if nanos < _NS_PER_S:
        return f"{sign}{_fraction(nanos, 6)}ms"
    minutes, rest = divmod(nanos, _NS_PER_MIN)
    text = f"{_fraction(rest, 9)}s"
    if minutes:
        hours, minutes = divmod(minutes, 60)
        text = f"{minutes}m{text}"
        if hours:
            text = f"{hours}h{text}"
    return sign + text


def is_builtin(metric: MetricSpec) -> bool:
    return metric.template_ref is None and metric.name in BUILTIN_METRICS


def _breach(metric: MetricSpec, value: float) -> tuple[str, float] | None:
    """('<', min) or ('>', max) when `value` is outside the range, else None."""
    limits = metric.threshold_range
    if limits.min is not None and value < limits.min:
        return "<", limits.min
    if limits.max is not None and value > limits.max:
        return ">", limits.max
    return None


def _describe_breach(metric: MetricSpec, value: float, op: str, limit: float) -> str:
    if is_builtin(metric) and metric.name == "request-success-rate":
        return f"success rate {value:.2f}% {op} {go_float(limit)}%"
    if is_builtin(metric) and metric.name == "request-duration":
        return f"request duration {go_duration(value)} {op} {go_duration(limit)}"
    return f"{metric.name} {value:.2f} {op} {go_float(limit)}"


def judge(
    metric: MetricSpec,
    result: MetricResult,
    *,
    canary_display: str,
    target_display: str,
    provider: str,
    time: str,
) -> Verdict:
    """Judge `result` for `metric`; no data and query errors are failed checks."""
    limits = metric.threshold_range

    def shown(value: float | None, passed: bool) -> MetricValue:
        return MetricValue(metric.name, value, limits.min, limits.max, passed, time)

    if result.error is not None:
        failure = f"Metric query failed for {metric.name}: {result.error}"
        return Verdict(shown(None, False), failure)
    if result.no_data or result.value is None:
        kind = f"{provider} metric" if is_builtin(metric) else "custom metric"
        failure = (
            f"Halt advancement no values found for {kind} {metric.name} "
            f"probably {target_display} is not receiving traffic"
        )
        return Verdict(shown(None, False), failure)
    breach = _breach(metric, result.value)
    if breach is None:
        return Verdict(shown(result.value, True), None)
    op, limit = breach
    failure = (
        f"Halt {canary_display} advancement {_describe_breach(metric, result.value, op, limit)}"
    )
    return Verdict(shown(result.value, False), failure)
