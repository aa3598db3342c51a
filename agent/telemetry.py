"""The agent's own metrics, rendered in the Prometheus text format for /metrics.

A deliberately small registry (gauges per canary, two histograms, counters read from the API
adapter at scrape time) so the agent needs no metrics library.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from dataclasses import dataclass, field

from kubectl_canary.api.model import CanaryStatus

PREFIX = "kubectl_canary"
# Tick durations and lags: from a few milliseconds to minutes.
BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0)


@dataclass
class Histogram:
    counts: list[int] = field(default_factory=lambda: [0] * len(BUCKETS))
    total: float = 0.0
    n: int = 0

    def observe(self, value: float) -> None:
        for i, bound in enumerate(BUCKETS):
            if value <= bound:
                self.counts[i] += 1
        self.total += value
        self.n += 1

    def render(self, name: str) -> list[str]:
        lines = [f"# TYPE {name} histogram"]
        for bound, count in zip(BUCKETS, self.counts, strict=True):
            lines.append(f'{name}_bucket{{le="{bound}"}} {count}')
        lines += [f'{name}_bucket{{le="+Inf"}} {self.n}', f"{name}_sum {self.total}"]
        lines.append(f"{name}_count {self.n}")
        return lines


@dataclass(frozen=True)
class _CanaryView:
    phase: str
    weight: int
    failed_checks: int
    metrics: tuple[tuple[str, float | None], ...]


def _escape(value: str) -> str:
    return value.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n")


def _labels(**labels: str) -> str:
    inner = ",".join(f'{k}="{_escape(v)}"' for k, v in labels.items())
    return "{" + inner + "}"


class Telemetry:
    def __init__(
        self,
        request_counts: Callable[[], dict[tuple[str, str], int]] | None = None,
        error_counts: Callable[[], dict[tuple[str, str, int], int]] | None = None,
    ) -> None:
        self._lock = threading.Lock()
        self._canaries: dict[tuple[str, str], _CanaryView] = {}
        self._tick_duration = Histogram()
        self._tick_lag = Histogram()
        self._ticks: dict[str, int] = {}
        self._status_writes = 0
        self._events = 0
        self._leader = False
        self._request_counts = request_counts
        self._error_counts = error_counts

    def canary(self, namespace: str, name: str, status: CanaryStatus) -> None:
        view = _CanaryView(
            status.phase.value,
            status.canary_weight,
            status.failed_checks,
            tuple((m.name, m.value) for m in status.last_metrics),
        )
        with self._lock:
            self._canaries[(namespace, name)] = view

    def forget(self, namespace: str, name: str) -> None:
        with self._lock:
            self._canaries.pop((namespace, name), None)

    def tick(self, duration: float, lag: float) -> None:
        with self._lock:
            self._tick_duration.observe(duration)
            self._tick_lag.observe(lag)

    def outcome(self, outcome: str) -> None:
        with self._lock:
            self._ticks[outcome] = self._ticks.get(outcome, 0) + 1

    def status_written(self) -> None:
        with self._lock:
            self._status_writes += 1

    def event_recorded(self) -> None:
        with self._lock:
            self._events += 1

    def leader(self, is_leader: bool) -> None:
        with self._lock:
            self._leader = is_leader

    def render(self) -> str:
        with self._lock:
            lines = self._render_locked()
        return "\n".join(lines) + "\n"

    def _render_locked(self) -> list[str]:
        p = PREFIX
        lines = [f"# TYPE {p}_canary_phase gauge"]
        for (ns, name), v in sorted(self._canaries.items()):
            lines.append(f"{p}_canary_phase{_labels(namespace=ns, name=name, phase=v.phase)} 1")
        lines.append(f"# TYPE {p}_canary_weight gauge")
        for (ns, name), v in sorted(self._canaries.items()):
            lines.append(f"{p}_canary_weight{_labels(namespace=ns, name=name)} {v.weight}")
        lines.append(f"# TYPE {p}_canary_failed_checks gauge")
        for (ns, name), v in sorted(self._canaries.items()):
            lbl = _labels(namespace=ns, name=name)
            lines.append(f"{p}_canary_failed_checks{lbl} {v.failed_checks}")
        lines.append(f"# TYPE {p}_canary_metric_value gauge")
        for (ns, name), v in sorted(self._canaries.items()):
            for metric, value in v.metrics:
                lbl = _labels(namespace=ns, name=name, metric=metric)
                shown = "NaN" if value is None else repr(float(value))
                lines.append(f"{p}_canary_metric_value{lbl} {shown}")
        lines += self._tick_duration.render(f"{p}_tick_duration_seconds")
        lines += self._tick_lag.render(f"{p}_tick_lag_seconds")
        lines.append(f"# TYPE {p}_ticks_total counter")
        for outcome, n in sorted(self._ticks.items()):
            lines.append(f"{p}_ticks_total{_labels(outcome=outcome)} {n}")
        lines += [
            f"# TYPE {p}_status_writes_total counter",
            f"{p}_status_writes_total {self._status_writes}",
        ]
        lines += [f"# TYPE {p}_events_total counter", f"{p}_events_total {self._events}"]
        lines += [f"# TYPE {p}_leader gauge", f"{p}_leader {int(self._leader)}"]
        if self._request_counts is not None:
            lines.append(f"# TYPE {p}_api_requests_total counter")
            for (verb, resource), n in sorted(self._request_counts().items()):
                lbl = _labels(verb=verb, resource=resource)
                lines.append(f"{p}_api_requests_total{lbl} {n}")
        if self._error_counts is not None:
            lines.append(f"# TYPE {p}_api_request_errors_total counter")
            for (verb, resource, code), n in sorted(self._error_counts().items()):
                lbl = _labels(verb=verb, resource=resource, code=str(code))
                lines.append(f"{p}_api_request_errors_total{lbl} {n}")
        return lines
