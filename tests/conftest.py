"""Suite-wide: which tests may run in parallel, and how many ran on a real API server.

The suite runs on pytest-xdist workers (pyproject.toml: `-n 2 --dist loadgroup`). Pure and
in-process tests spread over them; every test that starts processes and judges timing (sandbox
e2e, kubectl, Prometheus, the real-cluster tier) goes to one group, so those run one after
another on one worker, exactly as they would without xdist, and never compete for the CPU
with each other. The tier's counts come from the test reports, so they are right with and
without xdist."""

from __future__ import annotations

from typing import Any

import pytest

_TIER = "tests/realcluster/"
_SERIAL_MARKERS = ("e2e", "kubectl", "prometheus", "realcluster")


# First, so pytest-xdist's own hook (which turns the group into the node id) sees the mark.
@pytest.hookimpl(tryfirst=True)
def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    for item in items:
        if any(item.get_closest_marker(m) for m in _SERIAL_MARKERS):
            item.add_marker(pytest.mark.xdist_group("serial"))


_outcomes: dict[str, str] = {}
_seconds = 0.0
_skip_reasons: set[str] = set()


def pytest_runtest_logreport(report: pytest.TestReport) -> None:
    global _seconds
    if not report.nodeid.startswith(_TIER):
        return
    _seconds += report.duration
    if report.when == "call" or report.outcome != "passed":
        # A setup error or skip decides the test's outcome; a later teardown error too.
        previous = _outcomes.get(report.nodeid)
        if previous in (None, "passed"):
            _outcomes[report.nodeid] = report.outcome
    if report.skipped and isinstance(report.longrepr, tuple):
        _skip_reasons.add(str(report.longrepr[2]).removeprefix("Skipped: "))


def pytest_terminal_summary(terminalreporter: Any) -> None:
    if not _outcomes:
        return
    counts: dict[str, int] = {}
    for outcome in _outcomes.values():
        counts[outcome] = counts.get(outcome, 0) + 1
    ran = counts.get("passed", 0) + counts.get("failed", 0)
    parts = ", ".join(f"{n} {outcome}" for outcome, n in sorted(counts.items()))
    terminalreporter.write_sep(
        "=",
        f"real API server tier: {ran} tests ran on a real API server ({parts}) in {_seconds:.0f} s",
    )
    for reason in sorted(_skip_reasons):
        terminalreporter.write_line(f"real API server tier, not run: {reason}")
