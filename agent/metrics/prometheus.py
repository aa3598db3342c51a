"""Prometheus instant queries over its HTTP API (GET /api/v1/query), with urllib.

How answers map to MetricResult (the core turns no_data into a failed check whose event says
the canary is probably not receiving traffic):
- one sample (vector of one series, or a scalar) → its value;
- an empty vector → no_data (no series: nothing was recorded for the workload);
- NaN → no_data: a ratio over no requests is 0/0 = NaN, which is "no traffic", not a number;
- ±Inf → error: e.g. a quantile beyond the last histogram bucket; no threshold can judge it;
- several series → error "query returned N series, expected 1": summing or picking one would
  silently judge something other than what the query author meant;
- HTTP errors, connection errors, timeouts and `status: error` answers → error with the reason.
"""

from __future__ import annotations

import base64
import http.client
import json
import math
import urllib.error
import urllib.parse
import urllib.request
from typing import Any

from agent.core.types import MetricResult

_EXCERPT = 200


class PrometheusProvider:
    def __init__(
        self,
        address: str,
        *,
        timeout_seconds: float = 5.0,
        token: str | None = None,
        username: str | None = None,
        password: str | None = None,
    ) -> None:
        self.address = address.rstrip("/")
        self.timeout_seconds = timeout_seconds
        self._headers = {"Accept": "application/json"}
        if token:
            self._headers["Authorization"] = f"Bearer {token}"
        elif username is not None:
            pair = f"{username}:{password or ''}".encode()
            self._headers["Authorization"] = "Basic " + base64.b64encode(pair).decode()

    def run_query(self, query: str) -> MetricResult:
        url = f"{self.address}/api/v1/query?" + urllib.parse.urlencode({"query": query})
        try:
            request = urllib.request.Request(url, headers=self._headers, method="GET")
            with urllib.request.urlopen(request, timeout=self.timeout_seconds) as response:
                body = response.read()
        except urllib.error.HTTPError as error:
            return MetricResult(error=_http_error(error))
        except (urllib.error.URLError, http.client.HTTPException, OSError, ValueError) as error:
            # ValueError: a malformed address; OSError covers timeouts and refused connections.
            reason = getattr(error, "reason", error)
            return MetricResult(error=f"prometheus {self.address} unreachable: {reason}")
        try:
            document = json.loads(body)
        except ValueError:
            return MetricResult(error=f"prometheus answered non-JSON: {_excerpt(body)}")
        return _result(document)

    def is_online(self) -> bool:
        result = self.run_query("vector(1)")
        return result.value == 1.0


def _excerpt(raw: bytes) -> str:
    text = raw.decode(errors="replace").strip().replace("\n", " ")
    return text[:_EXCERPT] + ("…" if len(text) > _EXCERPT else "")


def _http_error(error: urllib.error.HTTPError) -> str:
    raw = error.read() or b""
    try:
        document = json.loads(raw)
        detail = f"{document.get('errorType', 'error')}: {document.get('error', '')}"
    except ValueError:
        detail = _excerpt(raw)
    return f"prometheus returned HTTP {error.code}: {detail}".rstrip(": ")


def _result(document: Any) -> MetricResult:
    if not isinstance(document, dict):
        return MetricResult(error="prometheus answer is not a JSON object")
    if document.get("status") != "success":
        kind = document.get("errorType", "error")
        return MetricResult(error=f"prometheus query failed: {kind}: {document.get('error', '')}")
    data = document.get("data") or {}
    kind, result = data.get("resultType"), data.get("result")
    if kind == "scalar":
        return _sample(result)
    if kind != "vector":
        return MetricResult(error=f"query returned a {kind}, expected a vector or scalar")
    if not result:
        return MetricResult(no_data=True)
    if len(result) > 1:
        return MetricResult(error=f"query returned {len(result)} series, expected 1")
    return _sample(result[0].get("value"))


def _sample(sample: Any) -> MetricResult:
    try:
        value = float(sample[1])
    except (TypeError, ValueError, IndexError):
        return MetricResult(error=f"unreadable sample {sample!r}")
    if math.isnan(value):
        return MetricResult(no_data=True)
    if math.isinf(value):
        return MetricResult(error=f"query returned {'+' if value > 0 else '-'}Inf")
    return MetricResult(value=value)
