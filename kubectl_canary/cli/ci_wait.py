"""`status NAME --wait`: block until the current release ends, for CI."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import click

from kubectl_canary.cli.api_names import DEFAULT_THRESHOLD
from kubectl_canary.cli.errors import CliError, TimeoutExceeded
from kubectl_canary.cli.options import Session
from kubectl_canary.cli.reads import get_canary, parse
from kubectl_canary.cli.render import fmt_number, one_line
from kubectl_canary.cli.table_view import INVALID, NOT_SEEN, not_valid
from kubectl_canary.objects.names import primary_name

Obj = dict[str, Any]

POLL_SECONDS = 1.0


def _same_template(primary: Obj | None, target: Obj | None) -> bool:
    """The primary runs what the target declares (the release is done, not yet to start)."""
    if primary is None or target is None:
        return False
    p = primary.get("spec", {}).get("template", {}).get("spec")
    t = target.get("spec", {}).get("template", {}).get("spec")
    return bool(p == t)


def wait_for_outcome(
    session: Session, name: str, timeout: float, report: Callable[[Obj], None] | None = None
) -> Obj:
    """Block until the current release ends: Succeeded returns, Failed/timeout raise.

    A phase left over from an earlier release is not an outcome: Succeeded counts once the primary
    runs the target's template; a Failed found at the start counts once the agent has had one
    analysis interval to pick up a newer revision (it would leave Failed if there were one).
    """
    from kubectl_canary.api.model import Phase

    kube, ns, runtime = session.kube, session.namespace, session.runtime
    start = runtime.monotonic()
    first = get_canary(kube, ns, name)
    stale_failed_until = start + parse(first).spec.analysis.interval_seconds + 5
    seen_active = False
    obj = first
    while True:
        if report is not None:
            report(obj)
        phase = (obj.get("status") or {}).get("phase", "")
        target_name = obj.get("spec", {}).get("targetRef", {}).get("name", name)
        if phase == Phase.SUCCEEDED.value:
            primary = kube.get("apps/v1", "Deployment", ns, primary_name(parse(obj)))
            target = kube.get("apps/v1", "Deployment", ns, target_name)
            if _same_template(primary, target):
                return obj
        elif phase == Phase.FAILED.value:
            if seen_active or runtime.monotonic() >= stale_failed_until:
                raise CliError(f"canary {name} failed: {failure(obj)}")
        elif phase:
            seen_active = True
        if runtime.monotonic() - start >= timeout:
            raise TimeoutExceeded(
                f"timed out after {timeout:g}s waiting for canary {name} "
                f"(phase {phase or 'unknown'})"
            )
        runtime.sleep(POLL_SECONDS)
        obj = get_canary(kube, ns, name)


def last_message(obj: Obj) -> str:
    history = (obj.get("status") or {}).get("history") or []
    return one_line(history[-1].get("message", "")) if history else "no history"


class Progress:
    """One timestamped line on stderr per phase change, step (weight or iteration) and failed
    check, so a CI log shows the release moving; stdout keeps only the outcome."""

    def __init__(self, session: Session, name: str) -> None:
        self.session, self.name = session, name
        self.last: tuple[Any, ...] | None = None

    def __call__(self, obj: Obj) -> None:
        status = obj.get("status") or {}
        iterations = ((obj.get("spec") or {}).get("analysis") or {}).get("iterations") or 0
        invalid = not_valid(obj)
        state = (
            INVALID if invalid else status.get("phase") or NOT_SEEN,
            status.get("canaryWeight", 0),
            status.get("iterations", 0),
            status.get("failedChecks", 0),
        )
        if state == self.last:
            return
        failed_more = self.last is not None and state[3] > self.last[3]
        self.last = state
        phase, weight, done, failed = state
        step = f"iteration {done}/{iterations}" if iterations else f"canary weight {weight}%"
        line = f"{phase}, {step}, failed checks {failed}/{_threshold(obj)}"
        if invalid is not None:  # the wait ends at --timeout unless the spec is fixed: say why
            line += f": {one_line(str(invalid.get('message', '')))}"
        elif failed_more:
            line += f": {last_message(obj)}"
        stamp = self.session.now().strftime("%Y-%m-%dT%H:%M:%SZ")
        click.echo(f"{stamp}  {self.name}  {line}", err=True)


def _threshold(obj: Obj) -> int:
    value = ((obj.get("spec") or {}).get("analysis") or {}).get("threshold", DEFAULT_THRESHOLD)
    return value if isinstance(value, int) else DEFAULT_THRESHOLD


def _units(obj: Obj) -> dict[str, str]:
    """The built-in metrics' units (a MetricTemplate's query may measure anything)."""
    metrics = ((obj.get("spec") or {}).get("analysis") or {}).get("metrics") or []
    builtin = {"request-success-rate": "%", "request-duration": "ms"}
    return {
        m["name"]: builtin[m["name"]]
        for m in metrics
        if isinstance(m, dict) and m.get("name") in builtin and not m.get("templateRef")
    }


def _breach(metric: Obj, unit: str) -> str:
    """'request-success-rate 57.14% < 99%': the value the agent recorded and the limit broken."""
    value, low, high = metric.get("value"), metric.get("min"), metric.get("max")
    name = metric.get("name", "?")
    if value is None:
        return f"{name} no data"
    if low is not None and value < low:
        return f"{name} {fmt_number(value)}{unit} < {fmt_number(low)}{unit}"
    if high is not None and value > high:
        return f"{name} {fmt_number(value)}{unit} > {fmt_number(high)}{unit}"
    return f"{name} {fmt_number(value)}{unit}"


def failure(obj: Obj) -> str:
    """Why the release failed, from what the agent recorded: the failing checks with their value
    and threshold when the analysis failed, else the reason it rolled back (a deadline, a
    webhook)."""
    status = obj.get("status") or {}
    history = [h for h in status.get("history") or [] if isinstance(h, dict)]
    rollbacks = [h for h in history if str(h.get("message", "")).startswith("Rolling back")]
    reason = one_line(str(rollbacks[-1].get("message", ""))) if rollbacks else last_message(obj)
    if rollbacks and "failed checks threshold reached" not in reason:
        return reason
    count = f"({status.get('failedChecks', 0)} of {_threshold(obj)} failed checks)"
    units = _units(obj)
    failing = [
        _breach(m, units.get(m.get("name", ""), ""))
        for m in status.get("lastMetrics") or []
        if isinstance(m, dict) and not m.get("passed", True)
    ]
    if failing:
        return f"{', '.join(failing)} {count}"
    # No metric failed on the last check: a webhook or a query did; the agent said which.
    halts = [
        one_line(str(h.get("message", "")))
        for h in history
        if str(h.get("message", "")).startswith(("Halt", "Metric query failed"))
    ]
    return f"{halts[-1]} {count}" if halts else reason
