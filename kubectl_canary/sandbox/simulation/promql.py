"""A tiny PromQL evaluator: enough for the built-in success-rate and duration queries.

`kubectl canary demo` must work without a Prometheus, so the sandbox answers the provider's
built-in queries from its own counters. The accepted language is a small subset: number
literals, `sum [by (...)] (...)`, `rate`/`increase` of a range selector, `histogram_quantile`,
parentheses and `+ - * /` with Prometheus's one-to-one vector matching. Label matchers
`= != =~ !~` are parsed generically. Anything else gets a `bad_data` error telling the user to
run a real Prometheus.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

from kubectl_canary.sandbox.simulation.metrics import MetricsRegistry, MetricsView, expand_series


class UnsupportedQuery(ValueError):
    """The query is outside the subset the sandbox evaluates."""


_TOKEN = re.compile(
    r"""\s*(?:
      (?P<duration>(?:\d+(?:ms|s|m|h|d|w|y))+(?=\s*\]))
    | (?P<number>(?:\d+\.?\d*|\.\d+)(?:[eE][+-]?\d+)?)
    | (?P<string>"(?:[^"\\]|\\.)*"|'(?:[^'\\]|\\.)*')
    | (?P<ident>[a-zA-Z_:][a-zA-Z0-9_:]*)
    | (?P<op>=~|!~|!=|==|[=(){}\[\],+\-*/])
    )""",
    re.VERBOSE,
)
_DURATION_PART = re.compile(r"(\d+)(ms|s|m|h|d|w|y)")
_UNIT_SECONDS = {"ms": 0.001, "s": 1, "m": 60, "h": 3600, "d": 86400, "w": 604800, "y": 31536000}


@dataclass(frozen=True)
class _Token:
    kind: str
    text: str


def _tokenize(query: str) -> list[_Token]:
    tokens, position = [], 0
    query = query.rstrip()
    while position < len(query):
        found = _TOKEN.match(query, position)
        if found is None or found.end() == position:
            raise UnsupportedQuery(f"cannot parse near {query[position : position + 20]!r}")
        kind = found.lastgroup or ""
        tokens.append(_Token(kind, found.group(kind)))
        position = found.end()
    return tokens


def parse_duration(text: str) -> float:
    return sum(int(n) * _UNIT_SECONDS[unit] for n, unit in _DURATION_PART.findall(text))


def _unquote(text: str) -> str:
    body = text[1:-1]
    return re.sub(r"\\(.)", lambda m: {"n": "\n", "t": "\t"}.get(m.group(1), m.group(1)), body)


@dataclass(frozen=True)
class Matcher:
    name: str
    op: str  # = != =~ !~
    value: str

    def matches(self, labels: dict[str, str]) -> bool:
        actual = labels.get(self.name, "")
        if self.op == "=":
            return actual == self.value
        if self.op == "!=":
            return actual != self.value
        found = re.fullmatch(self.value, actual) is not None
        return found if self.op == "=~" else not found


# Expression tree: tuples keep the evaluator small and obviously side-effect free.
Node = tuple[Any, ...]


class _Parser:
    def __init__(self, query: str) -> None:
        self.tokens = _tokenize(query)
        self.index = 0

    def peek(self) -> _Token | None:
        return self.tokens[self.index] if self.index < len(self.tokens) else None

    def take(self, text: str | None = None, kind: str | None = None) -> _Token:
        token = self.peek()
        if token is None:
            raise UnsupportedQuery("unexpected end of query")
        if (text is not None and token.text != text) or (kind is not None and token.kind != kind):
            raise UnsupportedQuery(f"unexpected {token.text!r}")
        self.index += 1
        return token

    def parse(self) -> Node:
        node = self.additive()
        if self.peek() is not None:
            raise UnsupportedQuery(f"unexpected {self.peek().text!r}")  # type: ignore[union-attr]
        return node

    def additive(self) -> Node:
        node = self.multiplicative()
        while (token := self.peek()) is not None and token.text in ("+", "-"):
            self.index += 1
            node = ("binary", token.text, node, self.multiplicative())
        return node

    def multiplicative(self) -> Node:
        node = self.primary()
        while (token := self.peek()) is not None and token.text in ("*", "/"):
            self.index += 1
            node = ("binary", token.text, node, self.primary())
        return node

    def primary(self) -> Node:
        token = self.take()
        if token.kind == "number":
            return ("number", float(token.text))
        if token.text == "(":
            node = self.additive()
            self.take(")")
            return node
        if token.kind != "ident":
            raise UnsupportedQuery(f"unexpected {token.text!r}")
        name = token.text
        if name == "sum":
            grouping = self.grouping()
            self.take("(")
            inner = self.additive()
            self.take(")")
            grouping = grouping if grouping is not None else self.grouping()
            return ("sum", tuple(grouping or ()), inner)
        if name in ("rate", "increase"):
            self.take("(")
            selector = self.selector(self.take(kind="ident").text)
            self.take("[")
            seconds = parse_duration(self.take(kind="duration").text)
            self.take("]")
            self.take(")")
            return (name, selector, seconds)
        if name == "vector":
            # `vector(1)` is the liveness probe clients such as `kubectl canary doctor` send.
            self.take("(")
            inner = self.additive()
            self.take(")")
            return ("vector", inner)
        if name == "histogram_quantile":
            self.take("(")
            quantile = float(self.take(kind="number").text)
            self.take(",")
            inner = self.additive()
            self.take(")")
            return ("histogram_quantile", quantile, inner)
        if (following := self.peek()) is not None and following.text == "(":
            raise UnsupportedQuery(f"function {name}() is not supported")
        return ("instant", self.selector(name))

    def grouping(self) -> list[str] | None:
        token = self.peek()
        if token is None or token.text not in ("by", "without"):
            return None
        if token.text == "without":
            raise UnsupportedQuery("'without' is not supported")
        self.index += 1
        self.take("(")
        labels = []
        while (token := self.peek()) is not None and token.text != ")":
            labels.append(self.take(kind="ident").text)
            if (token := self.peek()) is not None and token.text == ",":
                self.index += 1
        self.take(")")
        return labels

    def selector(self, metric: str) -> tuple[str, tuple[Matcher, ...]]:
        matchers = []
        token = self.peek()
        if token is not None and token.text == "{":
            self.index += 1
            while (token := self.peek()) is not None and token.text != "}":
                label = self.take(kind="ident").text
                op = self.take(kind="op").text
                if op not in ("=", "!=", "=~", "!~"):
                    raise UnsupportedQuery(f"unexpected matcher {op!r}")
                value = _unquote(self.take(kind="string").text)
                if op in ("=~", "!~"):
                    try:
                        re.compile(value)
                    except re.error as error:
                        raise UnsupportedQuery(f"invalid regex {value!r}: {error}") from None
                matchers.append(Matcher(label, op, value))
                if (token := self.peek()) is not None and token.text == ",":
                    self.index += 1
            self.take("}")
        return metric, tuple(matchers)


Vector = list[tuple[dict[str, str], float]]
Value = float | Vector  # a float is a scalar


class _Evaluator:
    def __init__(self, view: MetricsView) -> None:
        self.view = view

    def evaluate(self, node: Node) -> Value:
        kind = node[0]
        if kind == "number":
            return float(node[1])
        if kind == "instant":
            metric, matchers = node[1]
            return _select(self.view.current, metric, matchers)
        if kind in ("rate", "increase"):
            (metric, matchers), seconds = node[1], node[2]
            elapsed, start = self.view.window(seconds)
            before = {_frozen(labels): value for labels, value in _select(start, metric, matchers)}
            result = []
            for labels, value in _select(self.view.current, metric, matchers):
                increase = value - before.get(_frozen(labels), 0.0)
                if kind == "increase":
                    result.append((labels, increase))
                elif elapsed > 0:
                    result.append((labels, increase / elapsed))
            return result
        if kind == "sum":
            return _sum(self.vector(node[2]), node[1])
        if kind == "histogram_quantile":
            return _histogram_quantile(node[1], self.vector(node[2]))
        if kind == "vector":
            scalar = self.evaluate(node[1])
            if not isinstance(scalar, float):
                raise UnsupportedQuery("vector() takes a scalar")
            return [({}, scalar)]
        if kind == "binary":
            return _binary(node[1], self.evaluate(node[2]), self.evaluate(node[3]))
        raise UnsupportedQuery(f"cannot evaluate {kind}")

    def vector(self, node: Node) -> Vector:
        value = self.evaluate(node)
        if isinstance(value, float):
            raise UnsupportedQuery("expected an instant vector, got a scalar")
        return value


def _frozen(labels: dict[str, str]) -> frozenset[tuple[str, str]]:
    return frozenset(labels.items())


def _select(snapshot: Any, metric: str, matchers: tuple[Matcher, ...]) -> Vector:
    return [
        (labels, value)
        for labels, value in expand_series(snapshot, metric)
        if all(m.matches(labels) for m in matchers)
    ]


def _sum(vector: Vector, by: tuple[str, ...]) -> Vector:
    groups: dict[frozenset[tuple[str, str]], tuple[dict[str, str], float]] = {}
    for labels, value in vector:
        kept = {name: labels[name] for name in by if name in labels}
        key = _frozen(kept)
        previous = groups.get(key, (kept, 0.0))[1]
        groups[key] = (kept, previous + value)
    return list(groups.values())


def _divide(a: float, b: float) -> float:
    if b == 0:
        return math.nan if a == 0 or math.isnan(a) else math.copysign(math.inf, a)
    return a / b


_OPERATIONS = {
    "+": lambda a, b: a + b,
    "-": lambda a, b: a - b,
    "*": lambda a, b: a * b,
    "/": _divide,
}


def _binary(op: str, left: Value, right: Value) -> Value:
    apply = _OPERATIONS[op]
    if isinstance(left, float) and isinstance(right, float):
        return float(apply(left, right))
    if isinstance(left, float):
        return [(_drop_name(labels), apply(left, value)) for labels, value in right]  # type: ignore[union-attr]
    if isinstance(right, float):
        return [(_drop_name(labels), apply(value, right)) for labels, value in left]
    # One-to-one matching on the full label set, as Prometheus does without on()/ignoring().
    by_labels = {_frozen(_drop_name(labels)): value for labels, value in right}
    result = []
    for labels, value in left:
        key = _frozen(_drop_name(labels))
        if key in by_labels:
            result.append((_drop_name(labels), apply(value, by_labels[key])))
    return result


def _drop_name(labels: dict[str, str]) -> dict[str, str]:
    return {k: v for k, v in labels.items() if k != "__name__"}


def _histogram_quantile(quantile: float, vector: Vector) -> Vector:
    """Prometheus's bucket interpolation, per group of series that differ only in `le`."""
    groups: dict[frozenset[tuple[str, str]], tuple[dict[str, str], list[tuple[float, float]]]] = {}
    for labels, value in vector:
        if "le" not in labels:
            continue
        rest = {k: v for k, v in labels.items() if k != "le"}
        groups.setdefault(_frozen(rest), (rest, []))[1].append((float(labels["le"]), value))
    return [(labels, _bucket_quantile(quantile, buckets)) for labels, buckets in groups.values()]


def _bucket_quantile(quantile: float, buckets: list[tuple[float, float]]) -> float:
    if quantile < 0:
        return -math.inf
    if quantile > 1:
        return math.inf
    buckets.sort()
    if len(buckets) < 2 or not math.isinf(buckets[-1][0]):
        return math.nan
    total = buckets[-1][1]
    if total <= 0:
        return math.nan
    rank = quantile * total
    index = next(i for i, (_, count) in enumerate(buckets) if count >= rank)
    if index == len(buckets) - 1:
        return buckets[-2][0]
    if index == 0 and buckets[0][0] <= 0:
        return buckets[0][0]
    start, below = (0.0, 0.0) if index == 0 else buckets[index - 1]
    end, count = buckets[index]
    return start + (end - start) * ((rank - below) / (count - below))


def format_value(value: float) -> str:
    """Sample values as Prometheus's HTTP API writes them (Go's 'f' format, NaN, +Inf)."""
    if math.isnan(value):
        return "NaN"
    if math.isinf(value):
        return "+Inf" if value > 0 else "-Inf"
    text = repr(value)
    if "e" in text or "E" in text:
        text = format(Decimal(text), "f")
    return text[:-2] if text.endswith(".0") else text


def answer_query(registry: MetricsRegistry, query: str) -> dict[str, Any]:
    """A Prometheus /api/v1/query response body for `query`, evaluated now."""
    view = registry.view()
    try:
        value = _Evaluator(view).evaluate(_Parser(query).parse())
    except UnsupportedQuery as error:
        return {
            "status": "error",
            "errorType": "bad_data",
            "error": (
                "sandbox answers only the built-in queries; use a real Prometheus for "
                f"{query.strip()!r} ({error})"
            ),
        }
    now = view.now
    if isinstance(value, float):
        return {
            "status": "success",
            "data": {"resultType": "scalar", "result": [now, format_value(value)]},
        }
    return {
        "status": "success",
        "data": {
            "resultType": "vector",
            "result": [{"metric": labels, "value": [now, format_value(v)]} for labels, v in value],
        },
    }
