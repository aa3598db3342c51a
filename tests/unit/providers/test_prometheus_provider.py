"""PrometheusProvider against a stub HTTP server: how each kind of answer maps to MetricResult."""

from __future__ import annotations

import base64
import json
import socket
import urllib.parse
from typing import Any

import pytest

from agent.core.types import MetricResult
from agent.metrics import UnknownMetricProviderError, provider_for
from agent.metrics.prometheus import PrometheusProvider
from kubectl_canary.egress.policy import EgressPolicy

from .conftest import Answer, HttpStub, Received


def vector(*values: str) -> bytes:
    series = [
        {"metric": {"pod": f"p{i}"}, "value": [1700000000.0, v]} for i, v in enumerate(values)
    ]
    return json.dumps(
        {"status": "success", "data": {"resultType": "vector", "result": series}}
    ).encode()


def prom(address: str, **options: Any) -> PrometheusProvider:
    """A provider whose egress policy admits `address` (the stubs listen on loopback)."""
    policy = EgressPolicy.build([address]) if address.startswith("http") else EgressPolicy()
    return PrometheusProvider(address, policy=policy, **options)


def answer_with(stub: HttpStub, answer: Answer) -> None:
    stub.respond = lambda _: answer


def test_single_series_is_the_value(http_stub: HttpStub) -> None:
    answer_with(http_stub, Answer(body=vector("99.5")))

    result = prom(http_stub.url).run_query('sum(rate(x{a="b"}[1m]))')

    assert result == MetricResult(value=99.5)
    request = http_stub.received[0]
    assert request.method == "GET"
    path, _, query = request.path.partition("?")
    assert path == "/api/v1/query"
    assert urllib.parse.parse_qs(query)["query"] == ['sum(rate(x{a="b"}[1m]))']


def test_scalar_is_the_value(http_stub: HttpStub) -> None:
    body = {"status": "success", "data": {"resultType": "scalar", "result": [1.0, "42"]}}
    answer_with(http_stub, Answer(body=json.dumps(body).encode()))

    assert prom(http_stub.url + "/").run_query("42") == MetricResult(value=42.0)


@pytest.mark.parametrize("body", [vector(), vector("NaN")], ids=["empty", "nan"])
def test_empty_or_nan_is_no_data(http_stub: HttpStub, body: bytes) -> None:
    answer_with(http_stub, Answer(body=body))

    assert prom(http_stub.url).run_query("q") == MetricResult(no_data=True)


def test_infinity_is_an_error(http_stub: HttpStub) -> None:
    answer_with(http_stub, Answer(body=vector("+Inf")))

    result = prom(http_stub.url).run_query("q")

    assert result.value is None and result.error == "query returned +Inf"


def test_several_series_are_an_error(http_stub: HttpStub) -> None:
    answer_with(http_stub, Answer(body=vector("1", "2")))

    result = prom(http_stub.url).run_query("q")

    assert result == MetricResult(error="query returned 2 series, expected 1")


def test_matrix_is_an_error(http_stub: HttpStub) -> None:
    body = {"status": "success", "data": {"resultType": "matrix", "result": []}}
    answer_with(http_stub, Answer(body=json.dumps(body).encode()))

    result = prom(http_stub.url).run_query("q[1m]")

    assert result.error is not None and "matrix" in result.error


def test_unauthorized_is_an_error_with_the_status(http_stub: HttpStub) -> None:
    answer_with(http_stub, Answer(status=401, body=b"Unauthorized", content_type="text/plain"))

    result = prom(http_stub.url).run_query("q")

    assert result.error == "prometheus returned HTTP 401 (12 bytes)"  # the body is not repeated


def test_server_error_carries_prometheus_error_message(http_stub: HttpStub) -> None:
    body = {"status": "error", "errorType": "bad_data", "error": "parse error at char 3"}
    answer_with(http_stub, Answer(status=400, body=json.dumps(body).encode()))

    result = prom(http_stub.url).run_query("q{")

    assert result.error == "prometheus returned HTTP 400: bad_data: parse error at char 3"


def test_internal_error_is_an_error(http_stub: HttpStub) -> None:
    answer_with(http_stub, Answer(status=500, body=b"boom\n" * 100, content_type="text/plain"))

    result = prom(http_stub.url).run_query("q")

    assert result.error == "prometheus returned HTTP 500 (500 bytes)"


def test_error_status_in_a_200_answer(http_stub: HttpStub) -> None:
    body = {"status": "error", "errorType": "timeout", "error": "query timed out"}
    answer_with(http_stub, Answer(body=json.dumps(body).encode()))

    result = prom(http_stub.url).run_query("q")

    assert result.error == "prometheus query failed: timeout: query timed out"


def test_non_json_answer_is_an_error(http_stub: HttpStub) -> None:
    answer_with(http_stub, Answer(body=b"<html>proxy</html>", content_type="text/html"))

    result = prom(http_stub.url).run_query("q")

    assert result.error == "prometheus answered non-JSON (18 bytes)"


def test_timeout_is_an_error(http_stub: HttpStub) -> None:
    answer_with(http_stub, Answer(hold=True))

    result = prom(http_stub.url, timeout_seconds=0.3).run_query("q")

    assert result.error is not None and "unreachable" in result.error
    assert "no complete answer within 0.3s" in result.error


def test_connection_refused_is_an_error() -> None:
    with socket.socket() as sock:  # a port nobody listens on once closed
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]

    result = prom(f"http://127.0.0.1:{port}", timeout_seconds=2).run_query("q")

    assert result.error is not None and result.error.startswith("prometheus http://127.0.0.1")


def authorization(request: Received) -> str | None:
    return request.headers.get("Authorization")


def test_bearer_token_is_sent(http_stub: HttpStub) -> None:
    answer_with(http_stub, Answer(body=vector("1")))

    prom(http_stub.url, token="s3cret").run_query("q")

    assert authorization(http_stub.received[0]) == "Bearer s3cret"


def test_basic_auth_is_sent(http_stub: HttpStub) -> None:
    answer_with(http_stub, Answer(body=vector("1")))

    prom(http_stub.url, username="ann", password="pw:1").run_query("q")

    expected = "Basic " + base64.b64encode(b"ann:pw:1").decode()
    assert authorization(http_stub.received[0]) == expected


def test_no_credentials_no_header(http_stub: HttpStub) -> None:
    answer_with(http_stub, Answer(body=vector("1")))

    prom(http_stub.url).run_query("q")

    assert authorization(http_stub.received[0]) is None


def test_is_online_runs_a_trivial_query(http_stub: HttpStub) -> None:
    answer_with(http_stub, Answer(body=vector("1")))
    assert prom(http_stub.url).is_online()
    assert urllib.parse.unquote(http_stub.received[0].path).endswith("query=vector(1)")

    answer_with(http_stub, Answer(status=503, body=b"starting"))
    assert not prom(http_stub.url).is_online()


def test_registry_builds_prometheus_and_rejects_unknown_types(http_stub: HttpStub) -> None:
    answer_with(http_stub, Answer(body=vector("7")))

    policy = EgressPolicy.build([http_stub.url])
    provider = provider_for("prometheus", http_stub.url, policy=policy, token="t")
    assert provider.run_query("q") == MetricResult(value=7.0)
    assert authorization(http_stub.received[0]) == "Bearer t"

    with pytest.raises(UnknownMetricProviderError, match="'datadog'.*prometheus"):
        provider_for("datadog", http_stub.url, policy=policy)


def test_malformed_address_is_an_error() -> None:
    result = prom("prometheus:9090").run_query("q")

    assert result.error is not None and result.error.startswith("metrics server refused: URL")
