"""Shared pieces of the release-scenario e2e tests (strategies, gates, restarts).

Builds on agent_harness: a `Stack` is the sandbox plus a real Prometheus scraping it, ready for
an app; readers turn the Canary's status, Events and routing objects into plain values; a
`GateServer` is a local webhook whose answer a test can switch while the agent asks it.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from contextlib import AbstractContextManager, contextmanager
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

from kubectl_canary.sandbox.prometheus import PrometheusHandle, start_prometheus

from .agent_harness import (
    IMAGE_PREFIX,
    AgentProcess,
    Cluster,
    deployment,
    namespace,
    require_binary,
    running_agent,
    sample,
    sandbox,
)

ISTIO = "networking.istio.io/v1beta1"
# Metric windows of the scenarios. Short enough that a window never reaches back into a
# previous release's traffic on the same Deployment, long enough for several 1 s scrapes.
METRIC_WINDOW = "10s"
INTERVAL = "2s"


@dataclass
class Stack:
    """The sandbox (its cluster view) and a Prometheus scraping its simulated mesh."""

    cluster: Cluster
    prometheus: PrometheusHandle
    workdir: Path

    def agent(
        self, log_name: str = "agent.log", *extra: str, provider: str = "istio"
    ) -> AbstractContextManager[AgentProcess]:
        """A running agent (context manager) logging to `workdir/log_name`."""
        manager: AbstractContextManager[AgentProcess] = running_agent(
            self.cluster.sandbox.kubeconfig,
            self.workdir / log_name,
            "--lease-duration",
            "2s",
            *extra,
            metrics_server=self.prometheus.url,
            provider=provider,
        )
        return manager


@contextmanager
def release_stack(workdir: Path, speed: float = 5) -> Iterator[Stack]:
    """Sandbox + Prometheus with the agent's namespace created; both stopped on exit."""
    require_binary("prometheus")
    with sandbox(workdir / "sandbox", speed=speed) as sb:
        prom = start_prometheus(f"127.0.0.1:{sb.port}", workdir=workdir / "prometheus")
        try:
            cluster = Cluster(sb)
            cluster.apply(namespace("kubectl-canary"))
            yield Stack(cluster, prom, workdir)
        finally:
            prom.stop()


def install_app(c: Cluster, ns: str, name: str, replicas: int = 2) -> None:
    """Namespace and Deployment `name` running 1.1.1."""
    c.apply(namespace(ns))
    c.apply(deployment(ns, name, IMAGE_PREFIX + "1.1.1", replicas=replicas))


def compressed_sample(file: str, ns: str, name: str) -> dict[str, Any]:
    """A shipped sample renamed to `ns/name`, with the scenario interval and metric windows."""
    canary: dict[str, Any] = sample(file)
    canary["metadata"] = {"name": name, "namespace": ns}
    canary["spec"]["targetRef"]["name"] = name
    if "hosts" in canary["spec"]["service"]:
        canary["spec"]["service"]["hosts"] = [f"{name}.example.com"]
    analysis = canary["spec"]["analysis"]
    analysis["interval"] = INTERVAL
    for metric in analysis.get("metrics", []):
        metric["interval"] = METRIC_WINDOW
    return canary


def provider_canary(provider: str, ns: str, name: str, threshold: int) -> dict[str, Any]:
    """The provider's shipped sample for `ns/name`, time-compressed, judged on the success
    rate only (a 10 s window) with `threshold` failed checks to roll back."""
    file = "canary-gatewayapi.yaml" if provider == "gatewayapi" else "canary-kubernetes.yaml"
    canary = compressed_sample(file, ns, name)
    spec = canary["spec"]
    assert spec["provider"] == provider, f"sample {file} no longer sets provider {provider}"
    # The kubernetes sample's HPA and smoke-test webhook need things no test bed has.
    spec.pop("autoscalerRef", None)
    spec["analysis"].pop("webhooks", None)
    if provider == "kubernetes":
        spec["service"] = {"port": 9898, "targetPort": 9898, "portName": "http"}
    spec["analysis"]["threshold"] = threshold
    spec["analysis"]["metrics"] = [
        {"name": "request-success-rate", "thresholdRange": {"min": 99}, "interval": METRIC_WINDOW}
    ]
    return canary


def history(c: Cluster, ns: str, name: str) -> list[str]:
    return [h["message"] for h in c.status(ns, name).get("history", [])]


def event_messages(c: Cluster, ns: str, name: str) -> list[str]:
    # The agent names each Event `<canary>.<hex nanoseconds><random>`: name order is creation
    # order, even within one second.
    events = sorted(c.events(ns, name), key=lambda e: e["metadata"]["name"])
    return [e["message"] for e in events]


def advanced_weights(messages: list[str], ns: str, name: str) -> list[int]:
    prefix = f"Advance {name}.{ns} canary weight "
    return [int(m[len(prefix) :]) for m in messages if m.startswith(prefix)]


def replicas(c: Cluster, ns: str, name: str) -> int:
    dep = c.get("apps/v1", "Deployment", ns, name)
    assert dep is not None, f"Deployment {ns}/{name} missing"
    return int(dep["spec"].get("replicas", 0))


def image(c: Cluster, ns: str, name: str) -> str:
    dep = c.get("apps/v1", "Deployment", ns, name)
    assert dep is not None, f"Deployment {ns}/{name} missing"
    return str(dep["spec"]["template"]["spec"]["containers"][0]["image"])


def http_routes(c: Cluster, ns: str, name: str) -> list[dict[str, Any]]:
    vs = c.get(ISTIO, "VirtualService", ns, name)
    assert vs is not None, f"VirtualService {ns}/{name} missing"
    return list(vs["spec"]["http"])


def route_weights(route: dict[str, Any]) -> dict[str, int]:
    """host -> weight of one VirtualService http route (a lone destination takes 100)."""
    destinations = route["route"]
    default = 100 if len(destinations) == 1 else 0
    return {d["destination"]["host"]: int(d.get("weight", default)) for d in destinations}


def requests_served(prom: PrometheusHandle, ns: str, workload: str, window: str = "5s") -> float:
    """Requests per second `workload` answered over the last `window`, per Prometheus."""
    body = prom.query(
        f'sum(rate(istio_requests_total{{reporter="destination",'
        f'destination_workload_namespace="{ns}",destination_workload="{workload}"}}[{window}]))'
    )
    result = body.get("data", {}).get("result", [])
    return float(result[0]["value"][1]) if result else 0.0


class GateServer:
    """A webhook on 127.0.0.1 answering every POST with `status` (switchable), counting calls."""

    def __init__(self, status: int) -> None:
        self.status = status
        self._calls = 0
        self._lock = threading.Lock()
        gate = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:  # noqa: N802 (http.server's naming)
                length = int(self.headers.get("Content-Length") or 0)
                self.rfile.read(length)
                with gate._lock:
                    gate._calls += 1
                    answer = gate.status
                body = b"approved" if answer < 300 else b"closed"
                self.send_response(answer)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, *_: Any) -> None:
                pass  # keep the test output to what the test says

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self._server.server_address[1]}/"

    @property
    def calls(self) -> int:
        with self._lock:
            return self._calls

    def __enter__(self) -> GateServer:
        self._thread.start()
        return self

    def __exit__(self, *_: object) -> None:
        self._server.shutdown()
        self._server.server_close()
        self._thread.join(timeout=10)
