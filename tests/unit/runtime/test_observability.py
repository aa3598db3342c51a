"""/metrics text, JSON log lines, and the HTTP endpoints."""

from __future__ import annotations

import io
import json
import logging
import urllib.error
import urllib.request

import pytest

from agent import logs
from agent.http_server import AgentHTTPServer, parse_listen
from agent.telemetry import Telemetry
from kubectl_canary.api.model import CanaryStatus, MetricValue, Phase


def test_metrics_text() -> None:
    tel = Telemetry(
        lambda: {("get", "apps/deployments"): 3, ("watch", "services"): 2},
        lambda: {("list", "secrets", 403): 1},
    )
    status = CanaryStatus(
        phase=Phase.PROGRESSING,
        canary_weight=20,
        failed_checks=1,
        last_metrics=(
            MetricValue("request-success-rate", 98.5, 99, None, False, ""),
            MetricValue("request-duration", None, None, 500, False, ""),
        ),
    )
    tel.canary("app", "mhs", status)
    tel.tick(0.02, 0.3)
    tel.outcome("ok")
    tel.leader(True)
    text = tel.render()
    assert 'kubectl_canary_canary_phase{namespace="app",name="mhs",phase="Progressing"} 1' in text
    assert 'kubectl_canary_canary_weight{namespace="app",name="mhs"} 20' in text
    assert 'kubectl_canary_canary_failed_checks{namespace="app",name="mhs"} 1' in text
    assert 'metric="request-success-rate"} 98.5' in text
    assert 'metric="request-duration"} NaN' in text
    assert 'kubectl_canary_api_requests_total{verb="get",resource="apps/deployments"} 3' in text
    errors = 'kubectl_canary_api_request_errors_total{verb="list",resource="secrets",code="403"} 1'
    assert errors in text
    assert 'kubectl_canary_tick_lag_seconds_bucket{le="0.5"} 1' in text
    assert "kubectl_canary_tick_duration_seconds_count 1" in text
    assert "kubectl_canary_leader 1" in text
    tel.forget("app", "mhs")
    assert 'name="mhs"' not in tel.render()


def test_json_log_lines_carry_the_canary() -> None:
    out = io.StringIO()
    logs.setup("info", out)
    try:
        clog = logs.for_canary(logging.getLogger("agent.test"), "app/mhs")
        clog.info("Advance weight %d", 20, extra={"weight": 20})
        logging.getLogger("agent.test").debug("hidden")
    finally:
        logs.setup("warning")
    lines = [json.loads(x) for x in out.getvalue().splitlines()]
    assert len(lines) == 1
    line = lines[0]
    assert line["msg"] == "Advance weight 20" and line["level"] == "info"
    assert line["canary"] == "app/mhs" and line["weight"] == 20 and "ts" in line


def test_http_endpoints() -> None:
    ready = [False]
    server = AgentHTTPServer(
        ("127.0.0.1", 0),
        lambda: "m 1\n",
        lambda: (True, "ok"),
        lambda: (ready[0], "waiting"),
    )
    server.start()
    try:
        base = f"http://127.0.0.1:{server.port}"

        def get(path: str) -> tuple[int, str]:
            try:
                with urllib.request.urlopen(base + path, timeout=5) as r:
                    return r.status, r.read().decode()
            except urllib.error.HTTPError as e:
                return e.code, e.read().decode()

        assert get("/metrics") == (200, "m 1\n")
        assert get("/healthz")[0] == 200
        assert get("/readyz") == (503, "waiting\n")
        ready[0] = True
        assert get("/readyz")[0] == 200
        assert get("/nope")[0] == 404
    finally:
        server.stop()


@pytest.mark.parametrize(
    ("text", "expected"),
    [("0.0.0.0:8080", ("0.0.0.0", 8080)), (":9000", ("0.0.0.0", 9000)), ("[::1]:1", ("::1", 1))],
)
def test_parse_listen(text: str, expected: tuple[str, int]) -> None:
    assert parse_listen(text) == expected


def test_parse_listen_rejects_garbage() -> None:
    with pytest.raises(ValueError):
        parse_listen("8080")
