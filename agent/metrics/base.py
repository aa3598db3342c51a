"""The MetricProvider protocol: run one query, say whether the server answers.

Providers return numbers (or why there is none); judging them against thresholds is the core's
job. Two methods, like Flagger's provider interface.
"""

from __future__ import annotations

from typing import Protocol

from agent.core.types import MetricResult


class MetricProvider(Protocol):
    def run_query(self, query: str) -> MetricResult:
        """One value, `no_data`, or an `error` message; never raises for a failed query."""

    def is_online(self) -> bool:
        """True when the server answers a trivial query correctly."""
