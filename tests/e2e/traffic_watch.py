"""What the callers of a Service live through while its app changes hands (offboard, revert).

Two independent measurements, so a zero-downtime claim is checked from both sides:
- the simulated mesh's own counters (`GET /sandbox/metrics`): a request routed to a Service
  without a ready endpoint is a 503 with `response_flags="UH"`, reported by the source
  (docs/sandbox-simulation.md); the count must not grow while the app changes hands;
- an `EndpointsSampler` reading the Service's Endpoints every ~50 ms and watching it, so a
  moment with zero ready addresses is caught even between two traffic ticks (250 ms apart).
"""

from __future__ import annotations

import re
import threading
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path
from types import TracebackType
from typing import Any

from kubectl_canary import kube
from kubectl_canary.resources import GoneError, KubeError

from .agent_harness import wait_for

SAMPLE_SECONDS = 0.05
WATCH_SECONDS = 2
_SAMPLE = re.compile(r"^istio_requests_total\{(?P<labels>[^}]*)\} (?P<value>\S+)$")
_LABEL = re.compile(r'(\w+)="((?:[^"\\]|\\.)*)"')


@dataclass(frozen=True)
class App:
    """An app released under simulated traffic before it changes hands."""

    namespace: str
    name: str
    provider: str
    replicas: int
    new_tag: str
    outcome: str  # the phase the release of new_tag ends in


def app_canary(app: App, **spec: Any) -> dict[str, Any]:
    """The Canary releasing `app` in 2 s steps of 25 up to 50, with `spec` added; a release
    meant to fail is judged on the canary's own traffic (a 10 s window keeps the check on this
    release)."""
    analysis: dict[str, Any] = {"interval": "2s", "threshold": 2, "stepWeight": 25, "maxWeight": 50}
    if app.outcome == "Failed":
        analysis["metrics"] = [
            {"name": "request-success-rate", "thresholdRange": {"min": 99}, "interval": "10s"}
        ]
    return {
        "apiVersion": "kubectl-canary.dev/v1alpha1",
        "kind": "Canary",
        "metadata": {"name": app.name, "namespace": app.namespace},
        "spec": {
            "provider": app.provider,
            "targetRef": {"apiVersion": "apps/v1", "kind": "Deployment", "name": app.name},
            "progressDeadlineSeconds": 60,
            "service": {"port": 9898, "targetPort": 9898},
            "analysis": analysis,
            **spec,
        },
    }


@dataclass(frozen=True)
class MeshCounts:
    """Requests for the Services of one namespace, from the simulated mesh's counters."""

    no_upstream: int  # 503 UH: routed to a destination with no ready endpoint
    by_workload: dict[str, int]  # requests a pod answered, by the Deployment owning the pod

    @property
    def total(self) -> int:
        return self.no_upstream + sum(self.by_workload.values())


def sandbox_mesh(sandbox_url: str) -> str:
    """The sandbox's simulated-mesh metrics page (the real-cluster bed has its own)."""
    return f"{sandbox_url}/sandbox/metrics"


def mesh_counts(metrics_url: str, namespace: str) -> MeshCounts:
    """Read `istio_requests_total` from a mesh metrics page (the sandbox's or the real-cluster
    bed's traffic simulator) for requests to Services in `namespace`."""
    with urllib.request.urlopen(metrics_url, timeout=10) as resp:
        text = resp.read().decode()
    no_upstream = 0
    by_workload: dict[str, int] = {}
    for line in text.splitlines():
        m = _SAMPLE.match(line)
        if m is None:
            continue
        labels = dict(_LABEL.findall(m.group("labels")))
        if labels.get("destination_service_namespace") != namespace:
            continue
        count = int(float(m.group("value")))
        if labels.get("response_flags") == "UH":
            no_upstream += count
        elif labels.get("reporter") == "destination":
            workload = labels.get("destination_workload", "")
            by_workload[workload] = by_workload.get(workload, 0) + count
    return MeshCounts(no_upstream, by_workload)


def ready_addresses(endpoints: dict[str, Any] | None) -> list[dict[str, Any]]:
    """The ready addresses of an Endpoints object (none when it is missing)."""
    subsets = (endpoints or {}).get("subsets") or []
    return [a for s in subsets for a in s.get("addresses") or []]


@dataclass
class EndpointsSampler:
    """Records the ready addresses of Endpoints `namespace/name` while in the `with`, twice over:
    a thread reads it every SAMPLE_SECONDS (`counts`), another watches it (`watched`: one
    entry per version the API server committed, so even a state that lasted a few
    milliseconds is seen). A missing Endpoints object counts as zero ready addresses; failed
    reads are kept apart (`errors`), since they say nothing about the Service.
    """

    kubeconfig: Path
    namespace: str
    name: str
    counts: list[int] = field(default_factory=list)
    watched: list[int] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)
    _stop: threading.Event = field(default_factory=threading.Event)
    _threads: list[threading.Thread] = field(default_factory=list)

    def __enter__(self) -> EndpointsSampler:
        for run in (self._poll, self._watch):
            # Each thread has its own client: one connection is not shared between threads.
            client = kube.connect(str(self.kubeconfig))
            thread = threading.Thread(target=run, args=(client,), daemon=True)
            thread.start()
            self._threads.append(thread)
        wait_for(
            "the first Endpoints sample and the watch",
            lambda: (self.counts and self.watched) or self.errors,
            10,
        )
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self._stop.set()
        for thread in self._threads:
            thread.join(WATCH_SECONDS + 10)

    def _poll(self, client: kube.Kube) -> None:
        while not self._stop.is_set():
            try:
                obj = client.get("v1", "Endpoints", self.namespace, self.name)
            except KubeError as exc:
                self.errors.append(f"read: {exc}")
            else:
                self.counts.append(len(ready_addresses(obj)))
            self._stop.wait(SAMPLE_SECONDS)

    def _watch(self, client: kube.Kube) -> None:
        version = self._list(client)
        while not self._stop.is_set():
            try:
                # Short server-side timeouts so the thread notices the end of the `with`.
                for kind, obj in client.watch(
                    "v1", "Endpoints", self.namespace, version, WATCH_SECONDS
                ):
                    version = obj["metadata"].get("resourceVersion", version)
                    if kind == "BOOKMARK" or obj["metadata"].get("name") != self.name:
                        continue
                    self.watched.append(0 if kind == "DELETED" else len(ready_addresses(obj)))
            except GoneError:
                # Other namespaces' changes pushed ours out of the watch window: list again
                # (the poller covers the moment in between).
                version = self._list(client)
            except KubeError as exc:
                self.errors.append(f"watch: {exc}")
                self._stop.wait(SAMPLE_SECONDS)

    def _list(self, client: kube.Kube) -> str:
        listed, version = client.list("v1", "Endpoints", self.namespace)
        mine = [i for i in listed if i["metadata"]["name"] == self.name]
        self.watched.append(len(ready_addresses(mine[0])) if mine else 0)
        return version

    @property
    def empty_samples(self) -> int:
        """Polled samples and watched versions with no ready address."""
        return sum(1 for n in self.counts + self.watched if n == 0)


def assert_nothing_lost(
    before: MeshCounts, after: MeshCounts, sampler: EndpointsSampler, during: str
) -> None:
    """No request found the Service without a ready endpoint `during` the change (e.g. "the
    offboard"), the clients kept sending, and the Endpoints were never empty."""
    assert after.no_upstream == before.no_upstream, (
        f"{after.no_upstream - before.no_upstream} requests found no ready endpoint {during}"
    )
    assert after.total - before.total >= 40, "the simulated clients kept sending throughout"
    assert not sampler.errors, sampler.errors[:3]
    assert len(sampler.counts) >= 10, f"the Endpoints sampler ran {during}"
    assert sampler.empty_samples == 0, (
        f"service {sampler.name} had no ready endpoint: polled {sampler.counts}, "
        f"watched {sampler.watched}"
    )


def served_after(metrics_url: str, namespace: str, workload: str, more: int, timeout: float) -> int:
    """Wait until `workload`'s pods answered `more` requests beyond what they had now: proof
    that the simulated clients kept sending after the change, and that counters read next
    cover it. Returns the final count."""

    def served() -> int:
        return mesh_counts(metrics_url, namespace).by_workload.get(workload, 0)

    goal = served() + more
    return int(
        wait_for(
            f"{more} more requests answered by {namespace}/{workload}",
            lambda: (n := served()) >= goal and n,
            timeout,
            interval=0.25,
        )
    )
