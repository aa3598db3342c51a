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


def pytest_itemcollected(item: pytest.Item) -> None:
    # As each test is collected: before any pytest_collection_modifyitems, so pytest-xdist's
    # (which turns the group into the node id) always sees the mark, whatever the hook order.
    if any(item.get_closest_marker(m) for m in _SERIAL_MARKERS):
        item.add_marker(pytest.mark.xdist_group("serial"))


_outcomes: dict[str, str] = {}
_seconds = 0.0
_skip_reasons: set[str] = set()
_serial_workers: set[str] = set()
# Lines a test leaves in its user_properties for the summary (tests/e2e/test_crash_points.py:
# the boundaries each crash scenario covered); they travel with the report from xdist workers.
_SUMMARY_PROPERTY = "crash points"
_summary_lines: list[str] = []


def pytest_runtest_logreport(report: pytest.TestReport) -> None:
    global _seconds
    if report.when == "call":
        _summary_lines.extend(str(v) for k, v in report.user_properties if k == _SUMMARY_PROPERTY)
    if any(m in report.keywords for m in _SERIAL_MARKERS):
        _serial_workers.add(str(getattr(report, "worker_id", "main")))
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


def pytest_sessionfinish(session: pytest.Session, exitstatus: int) -> None:
    # The grouping is what keeps the timing-sensitive tests honest: if it silently stopped
    # working (pytest 9.2 breaks pytest-xdist 3.8's loadgroup: seen here), fail the run.
    if len(_serial_workers) > 1 and exitstatus == 0:
        session.exitstatus = pytest.ExitCode.TESTS_FAILED


def pytest_terminal_summary(terminalreporter: Any) -> None:
    for line in sorted(_summary_lines):
        terminalreporter.write_line(line)
    if len(_serial_workers) > 1:
        terminalreporter.write_sep(
            "!",
            f"the serial group ran on {len(_serial_workers)} workers at once "
            f"({', '.join(sorted(_serial_workers))}): pytest-xdist's loadgroup did not apply",
            red=True,
        )
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
