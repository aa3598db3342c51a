"""Rendering of templated PromQL (built-in queries and MetricTemplate queries).

Placeholders are written like Flagger's: `{{ name }}` (the Canary), `{{ namespace }}`,
`{{ target }}`, `{{ service }}`, `{{ interval }}`, `{{ variables.NAME }}` (from the metric's
templateVariables). An unknown placeholder, or a `{{` that is not one, is an error: a
half-rendered query would run and answer something else than intended.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field

_PLACEHOLDER = re.compile(r"\{\{\s*([A-Za-z_][A-Za-z0-9_]*(?:\.[A-Za-z0-9_-]+)?)\s*\}\}")


class TemplateError(ValueError):
    pass


@dataclass(frozen=True)
class QueryContext:
    name: str
    namespace: str
    target: str
    service: str
    interval: str  # a Prometheus duration, see `prometheus_duration`
    variables: Mapping[str, str] = field(default_factory=dict)


def prometheus_duration(seconds: float) -> str:
    """60 → "1m", 90 → "90s", 0.5 → "500ms": the shortest exact Prometheus duration."""
    milliseconds = round(seconds * 1000)
    if milliseconds <= 0:
        raise TemplateError(f"interval must be positive, got {seconds}s")
    if milliseconds % 60_000 == 0:
        return f"{milliseconds // 60_000}m"
    if milliseconds % 1000 == 0:
        return f"{milliseconds // 1000}s"
    return f"{milliseconds}ms"


def render(query: str, context: QueryContext) -> str:
    values = {
        "name": context.name,
        "namespace": context.namespace,
        "target": context.target,
        "service": context.service,
        "interval": context.interval,
    }

    def substitute(match: re.Match[str]) -> str:
        name = match.group(1)
        if name.startswith("variables."):
            key = name.split(".", 1)[1]
            if key not in context.variables:
                known = ", ".join(sorted(context.variables)) or "none"
                raise TemplateError(
                    f"unknown template variable {key!r} (templateVariables: {known})"
                )
            return context.variables[key]
        if name not in values:
            raise TemplateError(
                f"unknown placeholder {{{{ {name} }}}}; known: name, namespace, target, "
                "service, interval, variables.NAME"
            )
        return values[name]

    rendered = _PLACEHOLDER.sub(substitute, query)
    if "{{" in rendered:
        raise TemplateError(f"malformed placeholder in query: {query!r}")
    return rendered
