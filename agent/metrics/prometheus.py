"""Prometheus instant queries over its HTTP API (GET /api/v1/query), through the egress policy.

How answers map to MetricResult (the core turns no_data into a failed check whose event says
the canary is probably not receiving traffic):
- one sample (vector of one series, or a scalar) → its value;
- an empty vector → no_data (no series: nothing was recorded for the workload);
- NaN → no_data: a ratio over no requests is 0/0 = NaN, which is "no traffic", not a number;
- ±Inf → error: e.g. a quantile beyond the last histogram bucket; no threshold can judge it;
- several series → error "query returned N series, expected 1": summing or picking one would
  silently judge something other than what the query author meant;
- refused URLs, connection errors, deadlines, oversized answers and `status: error` answers →
  error with the reason. Only Prometheus' own `errorType`/`error` fields are ever quoted
  (cleaned, cut short): the address may be any server, and its body is not ours to repeat.
"""

from __future__ import annotations

import base64
import json
import math
import urllib.parse
from typing import Any

from agent.core.types import MetricResult
from kubectl_canary.egress import bounded
from kubectl_canary.egress.policy import EgressError, EgressPolicy, parse_url

# A one-sample answer is a few hundred bytes; 1 MiB leaves room for long label sets.
MAX_ANSWER_BYTES = 1 << 20


class PrometheusProvider:
    def __init__(
        self,
        address: str,
        *,
        policy: EgressPolicy,
        timeout_seconds: float = 5.0,
        token: str | None = None,
        username: str | None = None,
        password: str | None = None,
    ) -> None:
        self.address = address.rstrip("/")
        self.policy = policy
        self.timeout_seconds = timeout_seconds
        self._headers = {"Accept": "application/json"}
        if token:
            self._headers["Authorization"] = f"Bearer {token}"
        elif username is not None:
            pair = f"{username}:{password or ''}".encode()
            self._headers["Authorization"] = "Basic " + base64.b64encode(pair).decode()

    def run_query(self, query: str) -> MetricResult:
        try:
            origin = parse_url(self.address, allow_query=False).origin
        except EgressError as exc:
            return MetricResult(error=f"metrics server refused: {exc}")
        url = f"{self.address}/api/v1/query?" + urllib.parse.urlencode({"query": query})
        try:
            reply = bounded.request(
                self.policy,
                "GET",
                url,
                deadline_seconds=self.timeout_seconds,
                max_bytes=MAX_ANSWER_BYTES,
                headers=self._headers,
            )
        except EgressError as exc:
            return MetricResult(error=f"metrics server refused: {exc}")
        except bounded.CallError as exc:
            return MetricResult(error=f"prometheus {origin} unreachable: {exc}")
        try:
            document = json.loads(reply.body)
        except ValueError:
            document = None
        size = bounded.size_text(len(reply.body))
        if reply.status != 200:
            # Prometheus explains a refused query (400, 422, 503) in errorType/error.
            if isinstance(document, dict) and document.get("status") == "error":
                return MetricResult(
                    error=f"prometheus returned HTTP {reply.status}: {_said(document)}"
                )
            return MetricResult(error=f"prometheus returned HTTP {reply.status} ({size})")
        if document is None:
            return MetricResult(error=f"prometheus answered non-JSON ({size})")
        return _result(document)

    def is_online(self) -> bool:
        result = self.run_query("vector(1)")
        return result.value == 1.0


def _result(document: Any) -> MetricResult:
    if not isinstance(document, dict):
        return MetricResult(error="prometheus answer is not a JSON object")
    if document.get("status") != "success":
        return MetricResult(error=f"prometheus query failed: {_said(document)}")
    data = document.get("data") or {}
    kind, result = data.get("resultType"), data.get("result")
    if kind == "scalar":
        return _sample(result)
    if kind != "vector":
        shown = bounded.clean_text(str(kind), 20)
        return MetricResult(error=f"query returned a {shown}, expected a vector or scalar")
    if not result:
        return MetricResult(no_data=True)
    if len(result) > 1:
        return MetricResult(error=f"query returned {len(result)} series, expected 1")
    return _sample(result[0].get("value"))


def _said(document: dict[str, Any]) -> str:
    """Prometheus' own explanation of an error answer, cleaned and cut short."""
    error_type = bounded.clean_text(str(document.get("errorType", "error")), 40)
    detail = bounded.clean_text(str(document.get("error", "")))
    return f"{error_type}: {detail}".rstrip(": ")


def _sample(sample: Any) -> MetricResult:
    try:
        value = float(sample[1])
    except (TypeError, ValueError, IndexError):
        return MetricResult(error="unreadable sample in the answer")
    if math.isnan(value):
        return MetricResult(no_data=True)
    if math.isinf(value):
        return MetricResult(error=f"query returned {'+' if value > 0 else '-'}Inf")
    return MetricResult(value=value)
