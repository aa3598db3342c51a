r"""Rendering of templated PromQL (built-in queries and MetricTemplate queries).

Placeholders are written like Flagger's: `{{ name }}` (the Canary), `{{ namespace }}`,
`{{ target }}`, `{{ service }}`, `{{ interval }}`, `{{ variables.NAME }}` (from the metric's
templateVariables). An unknown placeholder, or a `{{` that is not one, is an error: a
half-rendered query would run and answer something else than intended.

Variables are the Canary author's, and the template (often a platform's) scopes its query with
`namespace="{{ namespace }}"`: a value must never change the query's structure. So a variable is
pasted as a literal, by where it stands:
- inside a quoted string ("..." or '...'): backslashes are escaped, so the value reaches
  Prometheus as written (a regex is written as Prometheus should see it: `5\d\d`); the quote
  character itself, newlines and control characters are refused (a value holding the quote is
  an attempt to close the string and append selectors);
- inside a raw `...` string: a backtick or a control character is refused;
- anywhere else (a duration, a number, a metric name): only `[A-Za-z0-9_.:]` is allowed.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field

_PLACEHOLDER = re.compile(r"\{\{\s*([A-Za-z_][A-Za-z0-9_]*(?:\.[A-Za-z0-9_-]+)?)\s*\}\}")
_BARE_VALUE = re.compile(r"[A-Za-z0-9_.:]*")


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

    quotes = _quote_states(query)

    def substitute(match: re.Match[str]) -> str:
        name = match.group(1)
        if name.startswith("variables."):
            key = name.split(".", 1)[1]
            if key not in context.variables:
                known = ", ".join(sorted(context.variables)) or "none"
                raise TemplateError(
                    f"unknown template variable {key!r} (templateVariables: {known})"
                )
            return literal(key, context.variables[key], quotes[match.start()])
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


def _quote_states(query: str) -> list[str]:
    """For each position of `query`, the quote it stands in ('"', "'", '`') or '' outside.
    PromQL strings escape with a backslash, except raw `...` strings."""
    states: list[str] = []
    quote, escaped = "", False
    for ch in query:
        states.append(quote)
        if escaped:
            escaped = False
        elif quote and quote != "`" and ch == "\\":
            escaped = True
        elif quote and ch == quote:
            quote = ""
        elif not quote and ch in "\"'`":
            quote = ch
    states.append(quote)
    return states


def literal(key: str, value: str, quote: str) -> str:
    """`value` as a literal where the placeholder stands (see the module doc), or TemplateError
    naming the variable."""
    where = f"templateVariables.{key}"
    if any(ord(ch) < 0x20 or ord(ch) == 0x7F for ch in value):
        raise TemplateError(f"{where}: newlines and control characters are not allowed")
    if quote == "`":
        if "`" in value:
            raise TemplateError(f"{where}: must not contain a backtick (it would end the string)")
        return value
    if quote:
        if quote in value:
            raise TemplateError(
                f"{where}: must not contain {quote} (it would end the quoted label value and "
                "let the value rewrite the query)"
            )
        return value.replace("\\", "\\\\")
    if not _BARE_VALUE.fullmatch(value):
        raise TemplateError(
            f"{where}: outside a quoted string only letters, digits, '_', '.' and ':' are "
            f"allowed, got {value!r}"
        )
    return value
