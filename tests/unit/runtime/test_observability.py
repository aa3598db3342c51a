"""/metrics text, JSON log lines, and the HTTP endpoints."""

from __future__ import annotations

import io
import json
import logging
import math
import urllib.error
import urllib.request

import pytest
from prometheus_client.parser import text_string_to_metric_families

from agent import logs
from agent.http_server import AgentHTTPServer, parse_listen
from agent.telemetry import Telemetry
from kubectl_canary import __version__
from kubectl_canary.api.model import (
    Canary,
    CanarySpec,
    CanaryStatus,
    MetricValue,
    Phase,
    ServiceSpec,
    TargetRef,
)


def _canary(name: str = "mhs", target: str = "podinfo", skip: bool = False) -> Canary:
    return Canary(
        name=name,
        namespace="app",
        spec=CanarySpec(
            target_ref=TargetRef(name=target),
            service=ServiceSpec(port=9898),
            skip_analysis=skip,
        ),
    )


def _samples(text: str) -> dict[tuple[str, frozenset[tuple[str, str]]], float]:
    """Every sample of an exposition, parsed by prometheus_client's own parser."""
    return {
        (s.name, frozenset(s.labels.items())): s.value
        for family in text_string_to_metric_families(text)
        for s in family.samples
    }


Samples = dict[tuple[str, frozenset[tuple[str, str]]], float]


def _value(samples: Samples, series: str, /, **labels: str) -> float | None:
    return samples.get((series, frozenset(labels.items())))


def test_metrics_text() -> None:
    tel = Telemetry(
        lambda: {("get", "apps/deployments"): 3, ("watch", "services"): 2},
        lambda: {("list", "secrets", 403): 1},
        provider="istio",
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
    tel.canary(_canary(), status)
    tel.tick("app/mhs", 0.02, 0.3)
    tel.outcome("ok")
    tel.leader(True)
    text = tel.render()
    got = _samples(text)
    ours = {"namespace": "app", "name": "mhs"}
    p = "kubectl_canary"
    assert _value(got, f"{p}_canary_phase", **ours, phase="Progressing") == 1
    assert _value(got, f"{p}_canary_weight", **ours) == 20
    assert _value(got, f"{p}_canary_failed_checks", **ours) == 1
    assert _value(got, f"{p}_canary_metric_value", **ours, metric="request-success-rate") == 98.5
    assert math.isnan(_value(got, f"{p}_canary_metric_value", **ours, metric="request-duration"))
    requests = _value(got, f"{p}_api_requests_total", verb="get", resource="apps/deployments")
    assert requests == 3
    refused = _value(
        got, f"{p}_api_request_errors_total", verb="list", resource="secrets", code="403"
    )
    assert refused == 1
    assert _value(got, f"{p}_tick_lag_seconds_bucket", le="0.5") == 1
    assert _value(got, f"{p}_tick_duration_seconds_count") == 1
    assert _value(got, f"{p}_ticks_total", outcome="ok") == 1
    assert _value(got, f"{p}_leader") == 1
    assert "_created" not in text
    # Flagger's series, with Flagger's labels: `name` is the target, weights per workload.
    assert _value(got, "flagger_info", version=__version__, mesh_provider="istio") == 1
    assert _value(got, "flagger_canary_total", namespace="app") == 1
    flagger = {"name": "podinfo", "namespace": "app"}
    assert _value(got, "flagger_canary_status", **flagger) == 0
    assert _value(got, "flagger_canary_weight", workload="podinfo-primary", namespace="app") == 80
    assert _value(got, "flagger_canary_weight", workload="podinfo", namespace="app") == 20
    analysis = "flagger_canary_metric_analysis"
    assert _value(got, analysis, **flagger, metric="request-success-rate") == 98.5
    assert _value(got, analysis, **flagger, metric="request-duration") is None  # no data
    assert _value(got, "flagger_canary_duration_seconds_count", **flagger) == 1
    tel.forget("app", "mhs")
    after = tel.render()
    assert 'name="mhs"' not in after and 'name="podinfo"' not in after


def test_flagger_release_counters_count_each_end_once() -> None:
    tel = Telemetry()
    canary = _canary()
    for phase in (Phase.SUCCEEDED, Phase.PROGRESSING, Phase.PROGRESSING, Phase.FAILED):
        tel.canary(canary, CanaryStatus(phase=phase))
    tel.canary(canary, CanaryStatus(phase=Phase.FAILED))  # no new end
    labels = {"name": "podinfo", "namespace": "app", "deployment_strategy": "canary"}
    successes, failures = "flagger_canary_successes_total", "flagger_canary_failures_total"
    got = _samples(tel.render())
    # The first status after a start is not an end seen happening (no double count on restart).
    assert _value(got, successes, **labels, analysis_status="completed") is None
    assert _value(got, failures, **labels, analysis_status="completed") == 1
    tel.canary(canary, CanaryStatus(phase=Phase.PROGRESSING))
    tel.canary(canary, CanaryStatus(phase=Phase.SUCCEEDED))
    got = _samples(tel.render())
    assert _value(got, successes, **labels, analysis_status="completed") == 1
    skipped = Telemetry()
    fast = _canary(skip=True)
    skipped.canary(fast, CanaryStatus(phase=Phase.PROMOTING))
    skipped.canary(fast, CanaryStatus(phase=Phase.SUCCEEDED))
    got = _samples(skipped.render())
    assert _value(got, successes, **labels, analysis_status="skipped") == 1
    assert _value(got, "flagger_canary_status", name="podinfo", namespace="app") == 1


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
