"""Metric providers by MetricTemplate `provider.type`, and the query a metric check runs.

An unknown provider type is an error, never a silent fallback to Prometheus.
"""

from __future__ import annotations

from collections.abc import Callable

from agent.metrics.base import MetricProvider
from agent.metrics.builtin import builtin_query
from agent.metrics.prometheus import PrometheusProvider
from agent.metrics.templates import QueryContext, prometheus_duration, render
from kubectl_canary.api.model import Canary, MetricSpec, MetricTemplate
from kubectl_canary.egress.policy import EgressPolicy
from kubectl_canary.objects.names import service_name

ProviderFactory = Callable[..., MetricProvider]
_PROVIDERS: dict[str, ProviderFactory] = {"prometheus": PrometheusProvider}


class UnknownMetricProviderError(ValueError):
    pass


def provider_types() -> tuple[str, ...]:
    return tuple(_PROVIDERS)


def provider_for(
    provider_type: str,
    address: str,
    *,
    policy: EgressPolicy,
    timeout_seconds: float = 5.0,
    token: str | None = None,
    username: str | None = None,
    password: str | None = None,
) -> MetricProvider:
    """A provider for `address`; credentials are the strings the runtime read from the
    template's Secret (`token`, or `username`/`password`)."""
    factory = _PROVIDERS.get(provider_type)
    if factory is None:
        known = ", ".join(_PROVIDERS)
        raise UnknownMetricProviderError(
            f"unknown metric provider type {provider_type!r}; known: {known}"
        )
    return factory(
        address,
        policy=policy,
        timeout_seconds=timeout_seconds,
        token=token,
        username=username,
        password=password,
    )


def query_for(canary: Canary, metric: MetricSpec, template: MetricTemplate | None) -> str:
    """The rendered PromQL of one analysis metric: the template's query when the metric has a
    templateRef (pass the MetricTemplate it names), else the provider's built-in query."""
    if metric.template_ref is not None:
        if template is None:
            raise ValueError(f"metric {metric.name!r} needs MetricTemplate {metric.template_ref}")
        query = template.query
    else:
        query = builtin_query(canary.spec.provider, metric.name)
    context = QueryContext(
        name=canary.name,
        namespace=canary.namespace,
        target=canary.spec.target_ref.name,
        service=service_name(canary),
        interval=prometheus_duration(metric.interval_seconds),
        variables=metric.template_variables,
    )
    return render(query, context)
