"""Query templating and the built-in queries."""

from __future__ import annotations

import pytest

from agent.metrics import query_for
from agent.metrics.builtin import UnknownMetricError, builtin_query
from agent.metrics.templates import QueryContext, TemplateError, prometheus_duration, render
from kubectl_canary.api.model import (
    Canary,
    CanarySpec,
    MetricSpec,
    MetricTemplate,
    ServiceSpec,
    TargetRef,
    TemplateRef,
)

CONTEXT = QueryContext(
    name="podinfo",
    namespace="test",
    target="podinfo",
    service="web",
    interval="1m",
    variables={"route": "/api"},
)


def test_every_placeholder_is_rendered() -> None:
    query = (
        'x{ns="{{ namespace }}",wl="{{target}}",svc="{{ service }}",c="{{ name }}",'
        'path="{{ variables.route }}"}[{{ interval }}]'
    )

    assert render(query, CONTEXT) == (
        'x{ns="test",wl="podinfo",svc="web",c="podinfo",path="/api"}[1m]'
    )


@pytest.mark.parametrize(
    ("query", "message"),
    [
        ("x[{{ intervall }}]", "unknown placeholder {{ intervall }}"),
        ('x{p="{{ variables.nope }}"}', "unknown template variable 'nope'.*route"),
        ('x{p="{{ namespace "}', "malformed placeholder"),
        ('x{p="{{ .namespace }}"}', "malformed placeholder"),
    ],
)
def test_bad_placeholders_are_errors(query: str, message: str) -> None:
    with pytest.raises(TemplateError, match=message):
        render(query, CONTEXT)


@pytest.mark.parametrize(
    ("seconds", "text"), [(60, "1m"), (300, "5m"), (90, "90s"), (30, "30s"), (0.5, "500ms")]
)
def test_prometheus_durations(seconds: float, text: str) -> None:
    assert prometheus_duration(seconds) == text


def test_zero_interval_is_an_error() -> None:
    with pytest.raises(TemplateError, match="positive"):
        prometheus_duration(0)


@pytest.mark.parametrize("provider", ["istio", "gatewayapi", "kubernetes"])
def test_builtin_queries_exist_for_every_provider(provider: str) -> None:
    success = render(builtin_query(provider, "request-success-rate"), CONTEXT)
    duration = render(builtin_query(provider, "request-duration"), CONTEXT)

    selector = (
        'reporter="destination", destination_workload_namespace="test", '
        'destination_workload=~"podinfo"'
    )
    assert success == (
        f'sum(rate(istio_requests_total{{{selector}, response_code!~"5.*"}}[1m]))'
        f" / sum(rate(istio_requests_total{{{selector}}}[1m])) * 100"
    )
    assert duration == (
        "histogram_quantile(0.99, sum(rate(istio_request_duration_milliseconds_bucket"
        f"{{{selector}}}[1m])) by (le))"
    )


def test_unknown_builtin_metric_or_provider_is_an_error() -> None:
    with pytest.raises(UnknownMetricError, match="'error-rate' is not a built-in metric"):
        builtin_query("istio", "error-rate")
    with pytest.raises(UnknownMetricError, match="'linkerd'"):
        builtin_query("linkerd", "request-success-rate")


def canary() -> Canary:
    return Canary(
        namespace="test",
        name="podinfo",
        spec=CanarySpec(
            target_ref=TargetRef("podinfo"), service=ServiceSpec(port=9898, name="web")
        ),
    )


def test_query_for_a_builtin_metric_uses_the_metric_interval() -> None:
    metric = MetricSpec(name="request-duration", interval_seconds=30)

    query = query_for(canary(), metric, None)

    assert "[30s]" in query and 'destination_workload=~"podinfo"' in query


def test_query_for_a_template_metric() -> None:
    metric = MetricSpec(
        name="404s",
        template_ref=TemplateRef("not-found"),
        template_variables={"code": "404"},
    )
    template = MetricTemplate(
        namespace="test",
        name="not-found",
        provider_type="prometheus",
        query='sum(rate(http_total{svc="{{ service }}",code="{{ variables.code }}"}'
        "[{{ interval }}]))",
    )

    assert query_for(canary(), metric, template) == (
        'sum(rate(http_total{svc="web",code="404"}[1m]))'
    )
    with pytest.raises(ValueError, match="needs MetricTemplate"):
        query_for(canary(), metric, None)


# ----- template variables are literals (docs/security.md, "PromQL template variables") -----


def with_variable(value: str) -> QueryContext:
    return QueryContext("a", "test", "a", "a", "1m", {"v": value})


@pytest.mark.parametrize(
    ("query", "value", "rendered"),
    [
        ('x{s=~"{{ variables.v }}"}', "5..", 'x{s=~"5.."}'),
        ('x{s=~"{{ variables.v }}"}', "5\\d\\d", 'x{s=~"5\\\\d\\\\d"}'),
        ("x{s='{{ variables.v }}'}", 'say "hi"', "x{s='say \"hi\"'}"),
        ("x{s=~`{{ variables.v }}`}", "5\\d", "x{s=~`5\\d`}"),
        ("rate(x[{{ variables.v }}])", "5m", "rate(x[5m])"),
        ('x{a="\\"{{ namespace }}"} > {{ variables.v }}', "0.5", 'x{a="\\"test"} > 0.5'),
    ],
)
def test_variables_are_pasted_as_literals(query: str, value: str, rendered: str) -> None:
    assert render(query, with_variable(value)) == rendered


@pytest.mark.parametrize(
    ("query", "value", "words"),
    [
        (
            'x{namespace="{{ namespace }}",s=~"{{ variables.v }}"}',
            '5.."} or y{a=~".+',
            'must not contain "',
        ),
        ("x{s='{{ variables.v }}'}", "it's", "must not contain '"),
        ("x{s=~`{{ variables.v }}`}", "a`b", "backtick"),
        ('x{s="{{ variables.v }}"}', "a\nb", "control characters"),
        ("rate(x[{{ variables.v }}])", "5m]) or y[5m", "outside a quoted string"),
        ("x > {{ variables.v }}", "0 or vector(1)", "outside a quoted string"),
    ],
)
def test_variables_that_would_change_the_query_are_refused(
    query: str, value: str, words: str
) -> None:
    with pytest.raises(TemplateError, match="templateVariables.v") as raised:
        render(query, with_variable(value))
    assert words in str(raised.value)
