"""Judging metric results against thresholdRange, with Flagger's messages."""

from __future__ import annotations

import pytest

from agent.core.checks import go_duration, go_float, judge
from agent.core.types import MetricResult
from kubectl_canary.api.model import MetricSpec, TemplateRef, ThresholdRange

RATE = MetricSpec("request-success-rate", threshold_range=ThresholdRange(min=99))
RATE_MAX = MetricSpec("request-success-rate", threshold_range=ThresholdRange(max=99.5))
DURATION = MetricSpec("request-duration", threshold_range=ThresholdRange(max=500))
DURATION_MIN = MetricSpec("request-duration", threshold_range=ThresholdRange(min=10))
CUSTOM = MetricSpec(
    "error-ratio", template_ref=TemplateRef("errors"), threshold_range=ThresholdRange(max=1)
)
CUSTOM_MIN = MetricSpec(
    "throughput", template_ref=TemplateRef("rps"), threshold_range=ThresholdRange(min=2.5)
)
UNBOUNDED = MetricSpec("latency", template_ref=TemplateRef("lat"))


def verdict(metric: MetricSpec, result: MetricResult) -> str | None:
    return judge(
        metric,
        result,
        canary_display="mhs.test",
        target_display="mhs.test",
        provider="istio",
        time="2026-11-27T12:00:00Z",
    ).failure


@pytest.mark.parametrize(
    ("metric", "result", "message"),
    [
        (RATE, MetricResult(99.5), None),
        (RATE, MetricResult(99), None),
        (RATE, MetricResult(57.142857), "Halt mhs.test advancement success rate 57.14% < 99%"),
        (RATE_MAX, MetricResult(99.9), "Halt mhs.test advancement success rate 99.90% > 99.5%"),
        (DURATION, MetricResult(499.9), None),
        (DURATION, MetricResult(1200), "Halt mhs.test advancement request duration 1.2s > 500ms"),
        (DURATION, MetricResult(750.6), "Halt mhs.test advancement request duration 750ms > 500ms"),
        (DURATION_MIN, MetricResult(3), "Halt mhs.test advancement request duration 3ms < 10ms"),
        (CUSTOM, MetricResult(0.5), None),
        (CUSTOM, MetricResult(2.345), "Halt mhs.test advancement error-ratio 2.35 > 1"),
        (CUSTOM_MIN, MetricResult(1), "Halt mhs.test advancement throughput 1.00 < 2.5"),
        (UNBOUNDED, MetricResult(1e9), None),
        (
            RATE,
            MetricResult(no_data=True),
            "Halt advancement no values found for istio metric request-success-rate "
            "probably mhs.test is not receiving traffic",
        ),
        (
            CUSTOM,
            MetricResult(no_data=True),
            "Halt advancement no values found for custom metric error-ratio "
            "probably mhs.test is not receiving traffic",
        ),
        (
            DURATION,
            MetricResult(error="connection refused"),
            "Metric query failed for request-duration: connection refused",
        ),
        # A result with neither a value nor an error is no data, never a pass.
        (
            CUSTOM,
            MetricResult(),
            "Halt advancement no values found for custom metric error-ratio "
            "probably mhs.test is not receiving traffic",
        ),
    ],
)
def test_judge_messages(metric: MetricSpec, result: MetricResult, message: str | None) -> None:
    assert verdict(metric, result) == message


def test_judged_value_is_kept_for_status() -> None:
    shown = judge(
        RATE,
        MetricResult(97.0),
        canary_display="a.b",
        target_display="a.b",
        provider="istio",
        time="t",
    ).value
    assert (shown.name, shown.value, shown.min, shown.max, shown.passed) == (
        "request-success-rate",
        97.0,
        99,
        None,
        False,
    )


@pytest.mark.parametrize(
    ("ms", "text"),
    [
        (0, "0s"),
        (500, "500ms"),
        (1, "1ms"),
        (1200, "1.2s"),
        (1000, "1s"),
        (60_000, "1m0s"),
        (90_500, "1m30.5s"),
        (3_723_000, "1h2m3s"),
        (-250, "-250ms"),
    ],
)
def test_go_duration(ms: float, text: str) -> None:
    assert go_duration(ms) == text


@pytest.mark.parametrize(
    ("number", "text"), [(99, "99"), (99.0, "99"), (99.5, "99.5"), (0.1, "0.1")]
)
def test_go_float(number: float, text: str) -> None:
    assert go_float(number) == text
