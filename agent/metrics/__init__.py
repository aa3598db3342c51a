"""Metric providers (Prometheus) and the built-in queries per traffic provider."""

from agent.metrics.base import MetricProvider
from agent.metrics.registry import (
    UnknownMetricProviderError,
    provider_for,
    provider_types,
    query_for,
)

__all__ = [
    "MetricProvider",
    "UnknownMetricProviderError",
    "provider_for",
    "provider_types",
    "query_for",
]
