"""The built-in queries against a real Prometheus (Debian's `prometheus`) scraping a tiny
exporter of Istio-standard metrics served by this test: the PromQL we ship must give the
success rate and latency the counters imply, and no_data where there is no traffic."""

from __future__ import annotations

import shutil
import socket
import subprocess
import threading
import time
import urllib.request
from collections.abc import Callable, Iterator
from dataclasses import replace
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

from agent.core.types import MetricResult
from agent.metrics import provider_for, query_for
from agent.metrics.base import MetricProvider
from kubectl_canary.api.model import Canary, CanarySpec, MetricSpec, ServiceSpec, TargetRef
from kubectl_canary.egress.policy import EgressPolicy

pytestmark = pytest.mark.prometheus

NAMESPACE = "test"
START = time.monotonic()

# (labels, requests per second): counters grow linearly, so rate() ratios are exact.
_DEST = f'reporter="destination",destination_workload_namespace="{NAMESPACE}"'
REQUEST_SERIES = [
    (f'{_DEST},destination_workload="podinfo",response_code="200"', 9.0),
    (f'{_DEST},destination_workload="podinfo",response_code="503"', 1.0),
    # Counted by the client's proxy: must not count twice.
    (
        f'reporter="source",destination_workload_namespace="{NAMESPACE}",'
        'destination_workload="podinfo",response_code="503"',
        50.0,
    ),
    # The primary is another workload: `=~"podinfo"` is anchored and must not match it.
    (f'{_DEST},destination_workload="podinfo-primary",response_code="500"', 5.0),
    # A workload whose series exist but see no requests: 0/0 is NaN.
    (f'{_DEST},destination_workload="idle",response_code="200"', 0.0),
]
# Latency histogram of the canary: half the requests under 10 ms, all under 100 ms.
BUCKETS = [("10", 5.0), ("100", 10.0), ("+Inf", 10.0)]
EXPECTED_P99 = 10 + 90 * (0.99 * 10 - 5) / (10 - 5)  # linear interpolation in (10, 100]


def exposition() -> bytes:
    elapsed = time.monotonic() - START
    lines = ["# TYPE istio_requests_total counter"]
    for labels, rate in REQUEST_SERIES:
        lines.append(f"istio_requests_total{{{labels}}} {rate * elapsed}")
    lines.append("# TYPE istio_request_duration_milliseconds histogram")
    for le, rate in BUCKETS:
        lines.append(
            "istio_request_duration_milliseconds_bucket"
            f'{{{_DEST},destination_workload="podinfo",le="{le}"}} {rate * elapsed}'
        )
    lines.append(
        f'istio_request_duration_milliseconds_count{{{_DEST},destination_workload="podinfo"}} '
        f"{10.0 * elapsed}"
    )
    lines.append(
        f'istio_request_duration_milliseconds_sum{{{_DEST},destination_workload="podinfo"}} '
        f"{300.0 * elapsed}"
    )
    return ("\n".join(lines) + "\n").encode()


@pytest.fixture(scope="module")
def exporter() -> Iterator[str]:
    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            body = exposition()
            self.send_response(200)
            self.send_header("Content-Type", "text/plain; version=0.0.4")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, format: str, *args: object) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, args=(0.05,), daemon=True)
    thread.start()
    try:
        yield f"127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=5)


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def wait_until(condition: Callable[[], bool], timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if condition():
            return
        time.sleep(0.2)  # polling interval, not a wait for green: bounded by `timeout`
    pytest.fail(f"timed out after {timeout}s waiting for {what}")


@pytest.fixture(scope="module")
def prometheus(exporter: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    binary = shutil.which("prometheus")
    if binary is None:
        pytest.fail("the `prometheus` binary is not on PATH: apt-get install prometheus")
    workdir: Path = tmp_path_factory.mktemp("prometheus")
    config = workdir / "prometheus.yml"
    config.write_text(
        "global:\n  scrape_interval: 1s\n  evaluation_interval: 1s\n"
        "scrape_configs:\n  - job_name: mesh\n    static_configs:\n"
        f"      - targets: ['{exporter}']\n"
    )
    address = f"127.0.0.1:{free_port()}"
    log = (workdir / "prometheus.log").open("wb")
    process = subprocess.Popen(
        [
            binary,
            f"--config.file={config}",
            f"--storage.tsdb.path={workdir / 'data'}",
            f"--web.listen-address={address}",
            "--log.level=warn",
        ],
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    url = f"http://{address}"

    def ready() -> bool:
        if process.poll() is not None:
            pytest.fail(f"prometheus exited: {(workdir / 'prometheus.log').read_text()[-2000:]}")
        try:
            with urllib.request.urlopen(url + "/-/ready", timeout=2) as response:
                return bool(response.status == 200)
        except OSError:
            return False

    try:
        wait_until(ready, 60, "prometheus to be ready")
        yield url
    finally:
        process.terminate()
        try:
            process.wait(timeout=15)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(timeout=5)
        log.close()


def canary(target: str) -> Canary:
    return Canary(
        namespace=NAMESPACE,
        name=target,
        spec=CanarySpec(target_ref=TargetRef(target), service=ServiceSpec(port=9898)),
    )


def settled(provider: MetricProvider, query: str) -> MetricResult:
    """Poll until the rate window holds enough samples for a value (bounded)."""
    results: list[MetricResult] = []

    def has_value() -> bool:
        results.append(provider.run_query(query))
        return results[-1].value is not None

    wait_until(has_value, 60, f"a value for {query} (last: {results[-1:]})")
    return results[-1]


@pytest.mark.parametrize("provider_name", ["istio", "gatewayapi", "kubernetes"])
def test_builtin_queries_measure_the_canary(prometheus: str, provider_name: str) -> None:
    provider = provider_for(
        "prometheus", prometheus, policy=EgressPolicy.build([prometheus]), timeout_seconds=10
    )
    assert provider.is_online()
    base = canary("podinfo")
    podinfo = replace(base, spec=replace(base.spec, provider=provider_name))

    success = settled(provider, query_for(podinfo, MetricSpec(name="request-success-rate"), None))
    duration = settled(provider, query_for(podinfo, MetricSpec(name="request-duration"), None))

    assert success.value == pytest.approx(90.0, abs=0.01)
    assert duration.value == pytest.approx(EXPECTED_P99, abs=0.01)


def test_no_traffic_is_no_data(prometheus: str) -> None:
    provider = provider_for(
        "prometheus", prometheus, policy=EgressPolicy.build([prometheus]), timeout_seconds=10
    )
    settled(provider, query_for(canary("podinfo"), MetricSpec(name="request-success-rate"), None))
    success_rate = MetricSpec(name="request-success-rate")

    # Series exist but carry no requests: 0/0 is NaN.
    assert provider.run_query(query_for(canary("idle"), success_rate, None)) == MetricResult(
        no_data=True
    )
    # No series at all.
    assert provider.run_query(query_for(canary("absent"), success_rate, None)) == MetricResult(
        no_data=True
    )


def test_prometheus_errors_are_reported(prometheus: str) -> None:
    provider = provider_for(
        "prometheus", prometheus, policy=EgressPolicy.build([prometheus]), timeout_seconds=10
    )

    bad = provider.run_query("sum(rate(istio_requests_total[1m])")
    several = provider.run_query('istio_requests_total{destination_workload="podinfo"}')

    assert bad.error is not None and bad.error.startswith("prometheus returned HTTP 400: bad_data")
    assert several.error is not None and "series, expected 1" in several.error
