"""Built-in metrics per provider: `request-success-rate` (percent of non-5xx responses) and
`request-duration` (p99, milliseconds), as templated PromQL (see templates.py).

All three providers use Istio's standard telemetry (`istio_requests_total`,
`istio_request_duration_milliseconds_bucket`) as reported by the destination's proxy: the mesh
(or, in the sandbox, its simulation) exports those whatever object steers traffic, and
`reporter="destination"` counts each request once, at the pod that served it.
`destination_workload` is the Deployment the request landed on, so `{{ target }}` (the canary
Deployment) measures the canary alone.
"""

from __future__ import annotations

from kubectl_canary.api.model import BUILTIN_METRICS, PROVIDERS

_SELECTOR = (
    'reporter="destination", '
    'destination_workload_namespace="{{ namespace }}", '
    'destination_workload=~"{{ target }}"'
)

_SUCCESS_RATE = (
    "sum(rate(istio_requests_total{" + _SELECTOR + ', response_code!~"5.*"}[{{ interval }}]))'
    " / sum(rate(istio_requests_total{" + _SELECTOR + "}[{{ interval }}])) * 100"
)

_DURATION = (
    "histogram_quantile(0.99, sum(rate(istio_request_duration_milliseconds_bucket{"
    + _SELECTOR
    + "}[{{ interval }}])) by (le))"
)

_ISTIO_QUERIES = {"request-success-rate": _SUCCESS_RATE, "request-duration": _DURATION}
_QUERIES: dict[str, dict[str, str]] = {provider: _ISTIO_QUERIES for provider in PROVIDERS}


class UnknownMetricError(ValueError):
    pass


def builtin_query(provider: str, metric: str) -> str:
    """The templated query of a built-in metric for a provider."""
    queries = _QUERIES.get(provider)
    if queries is None:
        raise UnknownMetricError(f"no built-in metrics for provider {provider!r}")
    if metric not in queries:
        known = ", ".join(BUILTIN_METRICS)
        raise UnknownMetricError(
            f"{metric!r} is not a built-in metric (known: {known}); set templateRef to use a "
            "MetricTemplate"
        )
    return queries[metric]
