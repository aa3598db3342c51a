"""Istio-standard request metrics of the simulated mesh, and their recent history.

Series are exported with Istio's names, labels and default duration buckets, so Flagger-style
built-in queries work unchanged against a Prometheus that scrapes /sandbox/metrics. A short
history of snapshots lets the sandbox itself answer `rate(...[1m])` queries when no Prometheus
runs (see promql.py).
"""

from __future__ import annotations

import threading
import time
from collections import deque
from collections.abc import Callable, Sequence
from dataclasses import dataclass

REQUESTS_TOTAL = "istio_requests_total"
DURATION = "istio_request_duration_milliseconds"
# Istio's default buckets for request duration, in milliseconds (+Inf is implied).
DURATION_BUCKETS_MS: tuple[float, ...] = (
    0.5, 1, 5, 10, 25, 50, 100, 250, 500, 1000, 2500, 5000, 10000, 30000, 60000, 300000,
    600000, 1800000, 3600000,
)  # fmt: skip
# The label set of every series, in this order (a subset of Istio's standard labels).
LABEL_NAMES: tuple[str, ...] = (
    "reporter",
    "source_workload",
    "source_workload_namespace",
    "source_app",
    "destination_workload",
    "destination_workload_namespace",
    "destination_app",
    "destination_version",
    "destination_service",
    "destination_service_name",
    "destination_service_namespace",
    "request_protocol",
    "response_code",
    "response_flags",
    "connection_security_policy",
)

SeriesKey = tuple[str, ...]  # label values in LABEL_NAMES order


@dataclass(frozen=True)
class Sample:
    """Cumulative totals of one series: requests, summed latency, per-bucket (not cumulative)."""

    count: int
    total_ms: float
    buckets: tuple[int, ...]  # len(DURATION_BUCKETS_MS) + 1; the last slot is +Inf only


Snapshot = dict[SeriesKey, Sample]


def format_le(bound: float) -> str:
    return str(int(bound)) if float(bound).is_integer() else repr(float(bound))


_LE_VALUES = tuple(format_le(b) for b in DURATION_BUCKETS_MS) + ("+Inf",)


def _escape(value: str) -> str:
    return value.replace("\\", "\\\\").replace("\n", "\\n").replace('"', '\\"')


class MetricsRegistry:
    """Counters updated by the traffic generator, read by scrapes and by the query evaluator.

    Samples are immutable and replaced on update, so a snapshot is a shallow dict copy: cheap
    to take every second even with thousands of series.
    """

    def __init__(
        self,
        clock: Callable[[], float] = time.time,
        history_seconds: float = 600.0,
        snapshot_every_seconds: float = 1.0,
    ) -> None:
        self._clock = clock
        self._lock = threading.Lock()
        self._current: Snapshot = {}
        self._label_text: dict[SeriesKey, str] = {}
        self._history: deque[tuple[float, Snapshot]] = deque()
        self._history_seconds = history_seconds
        self._snapshot_every = snapshot_every_seconds
        self._rendered: str | None = None

    def record(
        self, key: SeriesKey, count: int, total_ms: float, per_bucket: Sequence[int]
    ) -> None:
        if count <= 0:
            return
        with self._lock:
            previous = self._current.get(key)
            if previous is None:
                pairs = zip(LABEL_NAMES, key, strict=True)
                self._label_text[key] = ",".join(f'{n}="{_escape(v)}"' for n, v in pairs)
                buckets = tuple(per_bucket)
                self._current[key] = Sample(count, total_ms, buckets)
            else:
                buckets = tuple(a + b for a, b in zip(previous.buckets, per_bucket, strict=True))
                self._current[key] = Sample(
                    previous.count + count, previous.total_ms + total_ms, buckets
                )
            self._rendered = None

    def snapshot(self) -> tuple[float, Snapshot]:
        """Now and a copy of the current totals; also keeps it in the history when one is due."""
        with self._lock:
            now = self._clock()
            current = dict(self._current)
            if not self._history or now - self._history[-1][0] >= self._snapshot_every:
                self._history.append((now, current))
                while self._history and now - self._history[0][0] > self._history_seconds:
                    self._history.popleft()
            return now, current

    def view(self) -> MetricsView:
        """A consistent picture for one query: every rate() in it sees the same instant."""
        now, current = self.snapshot()
        with self._lock:
            history = tuple(self._history)
        return MetricsView(now, current, history)

    def render(self) -> str:
        """Prometheus text exposition (0.0.4) of all series; cached until the next update."""
        with self._lock:
            if self._rendered is not None:
                return self._rendered
            items = sorted(self._current.items())
            labels = self._label_text
            lines = [
                f"# HELP {REQUESTS_TOTAL} Total requests handled by the simulated mesh.",
                f"# TYPE {REQUESTS_TOTAL} counter",
            ]
            lines.extend(f"{REQUESTS_TOTAL}{{{labels[k]}}} {s.count}" for k, s in items)
            lines.append(f"# HELP {DURATION} Request duration in the simulated mesh.")
            lines.append(f"# TYPE {DURATION} histogram")
            for key, sample in items:
                text = labels[key]
                cumulative = 0
                for le, in_bucket in zip(_LE_VALUES, sample.buckets, strict=True):
                    cumulative += in_bucket
                    lines.append(f'{DURATION}_bucket{{{text},le="{le}"}} {cumulative}')
                lines.append(f"{DURATION}_sum{{{text}}} {sample.total_ms!r}")
                lines.append(f"{DURATION}_count{{{text}}} {sample.count}")
            self._rendered = "\n".join(lines) + "\n"
            return self._rendered


@dataclass(frozen=True)
class MetricsView:
    now: float
    current: Snapshot
    history: tuple[tuple[float, Snapshot], ...]

    def window(self, seconds: float) -> tuple[float, Snapshot]:
        """(elapsed, totals at the window's start) for a rate over the last `seconds`.

        The start is the newest snapshot at or before now-seconds, else the oldest one kept
        (a window longer than the history covers what there is).
        """
        start_time, start = self.now, self.current
        for taken_at, snapshot in reversed(self.history):
            start_time, start = taken_at, snapshot
            if taken_at <= self.now - seconds:
                break
        return self.now - start_time, start


def expand_series(snapshot: Snapshot, metric: str) -> list[tuple[dict[str, str], float]]:
    """The exported series called `metric` in a snapshot, each as (labels, value)."""
    result: list[tuple[dict[str, str], float]] = []
    for key, sample in snapshot.items():
        labels = dict(zip(LABEL_NAMES, key, strict=True))
        if metric in (REQUESTS_TOTAL, f"{DURATION}_count"):
            result.append((labels, float(sample.count)))
        elif metric == f"{DURATION}_sum":
            result.append((labels, sample.total_ms))
        elif metric == f"{DURATION}_bucket":
            cumulative = 0
            for le, in_bucket in zip(_LE_VALUES, sample.buckets, strict=True):
                cumulative += in_bucket
                result.append(({**labels, "le": le}, float(cumulative)))
    return result
