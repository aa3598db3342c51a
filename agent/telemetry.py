"""The agent's /metrics, through prometheus_client: our own series and Flagger's.

Flagger's series (`flagger_info`, `flagger_canary_total`, `flagger_canary_status`,
`flagger_canary_weight`, `flagger_canary_metric_analysis`, `flagger_canary_duration_seconds`,
`flagger_canary_successes_total`, `flagger_canary_failures_total`) carry the same names, labels
and values as Flagger's recorder, so its Grafana dashboards and alerts work unchanged; like
Flagger, their `name` label is the target's name. Ours (`kubectl_canary_*`) are keyed by the
Canary's own name and add what Flagger lacks: the phase, failed checks, tick timings, and the
API requests the agent made (read from the API adapter at scrape time).

Per-canary gauges come from one collector over the last status of each Canary, so a deleted
Canary's series vanish with it (`forget`) instead of lingering as labelled children.
"""

from __future__ import annotations

import contextlib
import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass

from prometheus_client import (
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    disable_created_metrics,
    generate_latest,
)
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.exposition import CONTENT_TYPE_PLAIN_0_0_4

from kubectl_canary import __version__
from kubectl_canary.api.model import Canary, CanaryStatus, Phase
from kubectl_canary.objects.names import primary_name

PREFIX = "kubectl_canary"
# The text format every Prometheus 2.x scrapes; the 1.0.0 format adds nothing we use.
CONTENT_TYPE = CONTENT_TYPE_PLAIN_0_0_4
# Tick durations and lags: from a few milliseconds to minutes.
BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0)
# Flagger's deployment_strategy label values.
_STRATEGY_LABEL = {"canary": "canary", "blue-green": "blue-green", "ab": "ab-testing"}

# A `_created` sample per counter doubles the series for no use of ours (Flagger has none).
disable_created_metrics()  # type: ignore[no-untyped-call]


@dataclass(frozen=True)
class _CanaryView:
    target: str
    primary: str
    phase: Phase
    weight: int
    failed_checks: int
    metrics: tuple[tuple[str, float | None], ...]


def _flagger_status(phase: Phase) -> int:
    """Flagger's canary_status: 0 running, 2 failed, 1 otherwise (succeeded, initialised...)."""
    if phase == Phase.PROGRESSING:
        return 0
    return 2 if phase == Phase.FAILED else 1


class _CanaryCollector:
    """Gauges over the last status of every Canary, built at scrape time."""

    def __init__(self, telemetry: Telemetry) -> None:
        self._telemetry = telemetry

    def collect(self) -> Iterator[Metric]:
        canaries = self._telemetry.snapshot()
        p = PREFIX
        phase = GaugeMetricFamily(
            f"{p}_canary_phase",
            "The Canary's phase (1 for its phase)",
            labels=["namespace", "name", "phase"],
        )
        weight = GaugeMetricFamily(
            f"{p}_canary_weight",
            "Traffic weight of the canary (percent)",
            labels=["namespace", "name"],
        )
        failed = GaugeMetricFamily(
            f"{p}_canary_failed_checks",
            "Failed checks in this analysis",
            labels=["namespace", "name"],
        )
        value = GaugeMetricFamily(
            f"{p}_canary_metric_value",
            "Last value of each metric check (NaN: no data)",
            labels=["namespace", "name", "metric"],
        )
        total = GaugeMetricFamily(
            "flagger_canary_total", "Total number of canary object", labels=["namespace"]
        )
        status = GaugeMetricFamily(
            "flagger_canary_status",
            "Last canary analysis result (0 running, 1 successful, 2 failed)",
            labels=["name", "namespace"],
        )
        fweight = GaugeMetricFamily(
            "flagger_canary_weight",
            "The virtual service destination weight current value",
            labels=["workload", "namespace"],
        )
        analysis = GaugeMetricFamily(
            "flagger_canary_metric_analysis",
            "Last canary analysis result per metric",
            labels=["name", "namespace", "metric"],
        )
        per_namespace: dict[str, int] = {}
        for (ns, name), v in sorted(canaries.items()):
            per_namespace[ns] = per_namespace.get(ns, 0) + 1
            phase.add_metric([ns, name, v.phase.value], 1)
            weight.add_metric([ns, name], v.weight)
            failed.add_metric([ns, name], v.failed_checks)
            status.add_metric([v.target, ns], _flagger_status(v.phase))
            fweight.add_metric([v.primary, ns], 100 - v.weight)
            fweight.add_metric([v.target, ns], v.weight)
            for metric, shown in v.metrics:
                value.add_metric([ns, name, metric], float("nan") if shown is None else shown)
                if shown is not None:
                    analysis.add_metric([v.target, ns, metric], shown)
        for ns, n in sorted(per_namespace.items()):
            total.add_metric([ns], n)
        yield from (phase, weight, failed, value, total, status, fweight, analysis)


class _ApiCollector:
    """The API adapter's request and refusal counts, read at scrape time."""

    def __init__(
        self,
        requests: Callable[[], dict[tuple[str, str], int]] | None,
        errors: Callable[[], dict[tuple[str, str, int], int]] | None,
    ) -> None:
        self._requests = requests
        self._errors = errors

    def collect(self) -> Iterator[Metric]:
        if self._requests is not None:
            family = CounterMetricFamily(
                f"{PREFIX}_api_requests",
                "Kubernetes API requests by verb and resource",
                labels=["verb", "resource"],
            )
            for (verb, resource), n in sorted(self._requests().items()):
                family.add_metric([verb, resource], n)
            yield family
        if self._errors is not None:
            family = CounterMetricFamily(
                f"{PREFIX}_api_request_errors",
                "Kubernetes API requests refused, by verb, resource and status code",
                labels=["verb", "resource", "code"],
            )
            for (verb, resource, code), n in sorted(self._errors().items()):
                family.add_metric([verb, resource, str(code)], n)
            yield family


class Telemetry:
    def __init__(
        self,
        request_counts: Callable[[], dict[tuple[str, str], int]] | None = None,
        error_counts: Callable[[], dict[tuple[str, str, int], int]] | None = None,
        provider: str = "kubernetes",
    ) -> None:
        self._lock = threading.Lock()
        self._canaries: dict[tuple[str, str], _CanaryView] = {}
        self.registry = CollectorRegistry(auto_describe=False)
        r = self.registry
        p = PREFIX
        self._tick_duration = Histogram(
            f"{p}_tick_duration_seconds", "Duration of a tick", buckets=BUCKETS, registry=r
        )
        self._tick_lag = Histogram(
            f"{p}_tick_lag_seconds",
            "Start of a tick minus when it was due",
            buckets=BUCKETS,
            registry=r,
        )
        self._ticks = Counter(f"{p}_ticks", "Ticks by outcome", ["outcome"], registry=r)
        self._status_writes = Counter(f"{p}_status_writes", "Status writes", registry=r)
        self._events = Counter(f"{p}_events", "Events recorded", registry=r)
        self._leader = Gauge(f"{p}_leader", "1 while this replica leads", registry=r)
        self._shard = Gauge(
            f"{p}_shard_held",
            "1 while this replica holds the shard (--shards)",
            ["shard"],
            registry=r,
        )
        info = Gauge(
            "flagger_info",
            "Flagger version and mesh provider information",
            ["version", "mesh_provider"],
            registry=r,
        )
        info.labels(__version__, provider).set(1)
        self._duration = Histogram(
            "flagger_canary_duration_seconds",
            "Seconds spent performing canary analysis.",
            ["name", "namespace"],
            registry=r,
        )
        labels = ["name", "namespace", "deployment_strategy", "analysis_status"]
        self._successes = Counter(
            "flagger_canary_successes", "Total number of canary successes", labels, registry=r
        )
        self._failures = Counter(
            "flagger_canary_failures", "Total number of canary failures", labels, registry=r
        )
        r.register(_CanaryCollector(self))
        r.register(_ApiCollector(request_counts, error_counts))

    def snapshot(self) -> dict[tuple[str, str], _CanaryView]:
        with self._lock:
            return dict(self._canaries)

    def canary(self, canary: Canary, status: CanaryStatus) -> None:
        view = _CanaryView(
            canary.spec.target_ref.name,
            primary_name(canary),
            status.phase,
            status.canary_weight,
            status.failed_checks,
            tuple((m.name, m.value) for m in status.last_metrics),
        )
        key = (canary.namespace, canary.name)
        with self._lock:
            before = self._canaries.get(key)
            self._canaries[key] = view
        # A release's end counts once, when the phase turns; after a restart the first status
        # seen has no "before" and is not counted again.
        if before is None or before.phase == status.phase:
            return
        if status.phase in (Phase.SUCCEEDED, Phase.FAILED):
            strategy = _STRATEGY_LABEL.get(canary.spec.analysis.strategy, "canary")
            analysis = "skipped" if canary.spec.skip_analysis else "completed"
            counter = self._successes if status.phase == Phase.SUCCEEDED else self._failures
            counter.labels(view.target, canary.namespace, strategy, analysis).inc()

    def forget(self, namespace: str, name: str) -> None:
        with self._lock:
            view = self._canaries.pop((namespace, name), None)
        if view is not None:
            with contextlib.suppress(KeyError):  # never ticked
                self._duration.remove(view.target, namespace)

    def tick(self, key: str, duration: float, lag: float) -> None:
        self._tick_duration.observe(duration)
        self._tick_lag.observe(lag)
        namespace, _, name = key.partition("/")
        with self._lock:
            view = self._canaries.get((namespace, name))
        if view is not None:
            self._duration.labels(view.target, namespace).observe(duration)

    def outcome(self, outcome: str) -> None:
        self._ticks.labels(outcome).inc()

    def status_written(self) -> None:
        self._status_writes.inc()

    def event_recorded(self) -> None:
        self._events.inc()

    def leader(self, is_leader: bool) -> None:
        self._leader.set(int(is_leader))

    def shard(self, shard: int, held: bool) -> None:
        self._shard.labels(str(shard)).set(int(held))

    def render(self) -> str:
        return generate_latest(self.registry).decode()
