"""The sandbox as a process, scraped by a real Prometheus running Flagger's built-in queries.

Needs Debian's `prometheus` binary: without it these tests fail with a clear message (they
never skip). Tolerance: the canary answers 50% errors; with >= 400 canary requests in the
window the success rate's sd is <= 2.5 points, and the check is 50 +- 15.
"""

from __future__ import annotations

import json
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest
import yaml

from kubectl_canary.sandbox.process import SandboxHandle, start_sandbox
from kubectl_canary.sandbox.prometheus import (
    PrometheusError,
    PrometheusHandle,
    start_prometheus,
    wait_for_scrape,
)

pytestmark = [pytest.mark.e2e, pytest.mark.prometheus]

SUCCESS_RATE = """
    sum(rate(istio_requests_total{reporter="destination",
        destination_workload_namespace="{ns}", destination_workload=~"{wl}",
        response_code!~"5.*"}[1m]))
    /
    sum(rate(istio_requests_total{reporter="destination",
        destination_workload_namespace="{ns}", destination_workload=~"{wl}"}[1m]))
    * 100"""


def success_rate_query(namespace: str, workload: str) -> str:
    return SUCCESS_RATE.replace("{ns}", namespace).replace("{wl}", workload)


class Api:
    """Just enough of a Kubernetes REST client to set the scene (JSON over urllib)."""

    def __init__(self, url: str) -> None:
        self.url = url

    def request(self, method: str, path: str, body: dict[str, Any] | None = None) -> Any:
        data = json.dumps(body).encode() if body is not None else None
        request = urllib.request.Request(
            self.url + path, data=data, method=method, headers={"Content-Type": "application/json"}
        )
        try:
            with urllib.request.urlopen(request, timeout=10) as response:
                return json.load(response)
        except urllib.error.HTTPError as error:
            detail = error.read().decode(errors="replace")
            raise AssertionError(f"{method} {path} -> {error.code}: {detail}") from None

    def create(self, obj: dict[str, Any]) -> Any:
        group_version = obj["apiVersion"]
        prefix = "/api/v1" if group_version == "v1" else f"/apis/{group_version}"
        plural = {
            "Namespace": "namespaces",
            "Deployment": "deployments",
            "Service": "services",
            "ConfigMap": "configmaps",
            "VirtualService": "virtualservices",
        }[obj["kind"]]
        namespace = obj["metadata"].get("namespace")
        path = f"{prefix}/namespaces/{namespace}/{plural}" if namespace else f"{prefix}/{plural}"
        return self.request("POST", path, obj)

    def get(self, path: str) -> Any:
        return self.request("GET", path)


@pytest.fixture
def sandbox(tmp_path: Path) -> Iterator[SandboxHandle]:
    handle = start_sandbox(tmp_path / "sandbox", speed=10.0, seed=3)
    try:
        yield handle
    finally:
        handle.stop()


@pytest.fixture
def prometheus(sandbox: SandboxHandle, tmp_path: Path) -> Iterator[PrometheusHandle]:
    handle = start_prometheus(f"127.0.0.1:{sandbox.port}", workdir=tmp_path / "prometheus")
    try:
        yield handle
    finally:
        handle.stop()


def value(response: dict[str, Any]) -> float:
    assert response["status"] == "success", response
    (sample,) = response["data"]["result"]
    return float(sample["value"][1])


def test_flagger_success_rate_from_real_prometheus(
    sandbox: SandboxHandle, prometheus: PrometheusHandle, h: SimpleNamespace
) -> None:
    api = Api(sandbox.url)
    api.create({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "test"}})
    api.create(h.deployment("mhs-primary", "ghcr.io/acme/mhs:1.1.2", replicas=2))
    api.create(h.deployment("mhs", "ghcr.io/acme/mhs:1.1.3", replicas=1))
    api.create(h.service("mhs", app="mhs-primary"))
    api.create(h.service("mhs-primary"))
    api.create(h.service("mhs-canary", app="mhs"))
    vs = h.virtual_service("mhs", [("mhs-primary", 90), ("mhs-canary", 10)])
    del vs["metadata"]["uid"]
    api.create(vs)
    api.create(
        {
            "apiVersion": "v1",
            "kind": "ConfigMap",
            "metadata": {"name": "sandbox-traffic", "namespace": "kube-system"},
            "data": {
                "apps": yaml.safe_dump([{"namespace": "test", "service": "mhs", "rps": 200}]),
                "profiles": yaml.safe_dump({"1.1.3": {"errorRate": 0.5}}),
            },
        }
    )
    canary_volume = (
        'sum(increase(istio_requests_total{reporter="destination",'
        'destination_workload_namespace="test",destination_workload="mhs"}[1m]))'
    )
    h.wait_for(
        lambda: value(wait_for_scrape(prometheus, canary_volume, timeout=60)) >= 400,
        timeout=90,
        what="400 canary requests scraped by Prometheus",
    )
    assert value(prometheus.query(success_rate_query("test", "mhs-primary"))) == 100.0
    canary = value(prometheus.query(success_rate_query("test", "mhs")))
    assert abs(canary - 50.0) <= 15.0

    # The sandbox's own evaluator (used without Prometheus) agrees within the same tolerance.
    query = urllib.parse.urlencode({"query": success_rate_query("test", "mhs")})
    own = api.get(f"/sandbox/prometheus/api/v1/query?{query}")
    assert abs(value(own) - 50.0) <= 15.0


def test_bad_image_reaches_progress_deadline_through_the_api(
    sandbox: SandboxHandle, h: SimpleNamespace
) -> None:
    api = Api(sandbox.url)
    api.create({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "test"}})
    # Speed 10: a 30 s progress deadline is 3 real seconds.
    api.create(h.deployment("bad", "acme/bad:2-crashloop", replicas=1, progressDeadlineSeconds=30))

    def reason() -> str | None:
        d = api.get("/apis/apps/v1/namespaces/test/deployments/bad")
        conditions = (d.get("status") or {}).get("conditions") or []
        found = [c for c in conditions if c["type"] == "Progressing"]
        return found[0]["reason"] if found and found[0]["status"] == "False" else None

    assert h.wait_for(reason, timeout=30, what="ProgressDeadlineExceeded") == (
        "ProgressDeadlineExceeded"
    )


def test_missing_binary_is_a_clear_error(tmp_path: Path) -> None:
    with pytest.raises(PrometheusError, match="not on PATH"):
        start_prometheus("127.0.0.1:1", workdir=tmp_path, binary="no-such-prometheus-binary")
