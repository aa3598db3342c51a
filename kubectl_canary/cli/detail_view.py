"""What `kubectl canary status NAME` prints: one canary in detail, and what happens next.

Pure functions of the typed Canary, the Deployments and routing read for it, and `now`, so
golden tests pin the output exactly.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from kubectl_canary.api.durations import format_duration
from kubectl_canary.api.model import AnalysisSpec, Canary, MetricValue, Phase
from kubectl_canary.cli.render import age, fmt_number, human_duration, parse_time, table

Obj = dict[str, Any]

# ----- the detail view -----


@dataclass(frozen=True)
class Workload:
    """A Deployment as the detail view shows it (absent: `exists=False`)."""

    name: str
    exists: bool
    images: tuple[str, ...] = ()
    replicas: int = 0
    ready: int = 0

    @classmethod
    def from_obj(cls, name: str, obj: Obj | None) -> Workload:
        if obj is None:
            return cls(name=name, exists=False)
        containers = obj.get("spec", {}).get("template", {}).get("spec", {}).get("containers", [])
        return cls(
            name=name,
            exists=True,
            images=tuple(c.get("image", "") for c in containers),
            replicas=int(obj.get("spec", {}).get("replicas", 1) or 0),
            ready=int(obj.get("status", {}).get("readyReplicas", 0) or 0),
        )


@dataclass(frozen=True)
class RouteView:
    """The routing actually configured: object name and (destination, weight) pairs."""

    source: str  # e.g. "VirtualService mhs"
    weights: tuple[tuple[str, int], ...] = ()
    problem: str = ""  # why the routes could not be read


def threshold_text(m: MetricValue) -> str:
    if m.min is not None and m.max is not None:
        return f"{fmt_number(m.min)}..{fmt_number(m.max)}"
    if m.min is not None:
        return f">= {fmt_number(m.min)}"
    if m.max is not None:
        return f"<= {fmt_number(m.max)}"
    return "-"


def _weight_schedule(a: AnalysisSpec) -> list[int]:
    """The canary weights a weighted analysis steps through, last one = maxWeight."""
    if a.step_weights:
        return [w for w in a.step_weights if w <= 100]
    if a.step_weight <= 0:
        return [a.max_weight]
    steps = list(range(a.step_weight, a.max_weight, a.step_weight))
    return [*steps, min(a.max_weight, 100)]


def _last_check_time(c: Canary) -> datetime | None:
    times = [parse_time(m.time) for m in c.status.last_metrics]
    times += [parse_time(h.time) for h in c.status.history[-1:]]
    known = [t for t in times if t is not None]
    return max(known) if known else None


def next_step(c: Canary, now: datetime) -> str:
    """What the agent will do next and a rough time left, from spec + status alone."""
    s, a = c.status, c.spec.analysis
    interval = a.interval_seconds
    if c.deletion_timestamp:
        return "being deleted: the agent is reverting the target before letting go"
    if c.spec.suspend:
        return "suspended (spec.suspend): the agent does nothing until it is unset"
    if s.paused:
        return f"paused: run `kubectl canary resume {c.name}` to continue"
    phase = s.phase
    if phase in (Phase.INITIALIZED, Phase.SUCCEEDED):
        return f"waiting for a new revision of Deployment/{c.spec.target_ref.name}"
    if phase is Phase.FAILED:
        return (
            f"waiting for a new revision of Deployment/{c.spec.target_ref.name} "
            f"(or `kubectl canary retry {c.name}` to analyse this one again)"
        )
    if phase is Phase.INITIALIZING:
        if not s.last_transition_time and not s.history:
            return "the agent has not picked this canary up yet (see `kubectl canary doctor`)"
        return "creating the primary Deployment, Services and routing"
    if phase is Phase.WAITING:
        return "waiting for the confirm-rollout webhook to approve the rollout"
    if phase is Phase.WAITING_PROMOTION:
        return "waiting for the confirm-promotion webhook to approve the promotion"
    if phase is Phase.PROMOTING:
        return "copying the canary's template to the primary, then routing all traffic to it"
    if phase is Phase.FINALISING:
        return "routing all traffic to the primary and scaling the canary down"
    if phase is Phase.TERMINATING:
        return "reverting the target before the Canary is deleted"
    # Progressing: count the remaining checks.
    last = _last_check_time(c)
    since = (now - last).total_seconds() if last else 0.0
    next_in = max(0.0, interval - since)
    if a.iterations > 0:
        remaining = max(0, a.iterations - s.iterations)
        step = f"iteration {s.iterations}/{a.iterations}"
    else:
        schedule = _weight_schedule(a)
        ahead = [w for w in schedule if w > s.canary_weight]
        remaining = len(ahead) + 1  # the last check happens at maxWeight, then promotion
        step = f"weight {ahead[0]}%" if ahead else "promotion"
    left = next_in + max(0, remaining - 1) * interval
    text = f"next check in ~{human_duration(next_in)}"
    text += f" -> {step}" if a.iterations == 0 else f" ({step})"
    if s.failed_checks:
        text += f"; {a.threshold - s.failed_checks} more failed check(s) roll back"
    return f"{text}; ~{human_duration(left)} to promotion if all checks pass"


def detail(
    c: Canary,
    now: datetime,
    primary: Workload,
    canary: Workload,
    routes: RouteView,
) -> str:
    s, spec, a = c.status, c.spec, c.spec.analysis
    out: list[str] = []

    def field(label: str, value: Any) -> None:
        out.append(f"{label + ':':<15}{value}")

    field("Name", c.name)
    field("Namespace", c.namespace)
    field("Target", f"{spec.target_ref.kind}/{spec.target_ref.name}")
    field("Provider", spec.provider)
    if a.iterations > 0:
        strategy = f"{a.strategy}, {a.iterations} iterations"
    elif a.step_weights:
        strategy = f"canary, weights {','.join(str(w) for w in a.step_weights)}"
    else:
        strategy = f"canary, step {a.step_weight}% up to {a.max_weight}%"
    field("Strategy", f"{strategy}, every {format_duration(a.interval_seconds)}")
    phase = s.phase.value + (" (paused)" if s.paused else "")
    field("Phase", f"{phase} since {age(s.last_transition_time, now)}")
    field("Weight", f"primary {s.primary_weight}% / canary {s.canary_weight}%")
    field("Failed checks", f"{s.failed_checks}/{a.threshold}")
    if a.iterations > 0:
        field("Iterations", f"{s.iterations}/{a.iterations}")
    field("Next", next_step(c, now))
    if s.last_request is not None:
        r = s.last_request
        verdict = "accepted" if r.accepted else "refused"
        msg = f": {r.message}" if r.message else ""
        field("Last request", f"{r.action} {verdict} {age(r.time, now)} ago{msg}")

    out.append("")
    out.append("Workloads:")
    rows = []
    for role, w in (("primary", primary), ("canary", canary)):
        if w.exists:
            rows.append([role, w.name, ",".join(w.images), f"{w.ready}/{w.replicas}"])
        else:
            rows.append([role, w.name, "<missing>", "-"])
    out.append(_indent(table(["role", "deployment", "image", "ready"], rows)))

    out.append("")
    if routes.problem:
        out.append(f"Routes: {routes.source}: {routes.problem}")
    else:
        out.append(f"Routes ({routes.source}):")
        out.append(_indent(table(["destination", "weight"], [[d, w] for d, w in routes.weights])))

    out.append("")
    if s.last_metrics:
        out.append("Metrics (last check):")
        rows = [
            [
                m.name,
                fmt_number(m.value),
                threshold_text(m),
                "ok" if m.passed else "FAILED",
                age(m.time, now),
            ]
            for m in s.last_metrics
        ]
        out.append(_indent(table(["metric", "value", "threshold", "result", "age"], rows)))
    elif a.metrics:
        names = ", ".join(m.name for m in a.metrics)
        out.append(f"Metrics: not checked yet ({names})")
    else:
        out.append("Metrics: none configured")

    out.append("")
    if s.history:
        out.append("History:")
        rows = [[h.time, h.type, h.reason, h.message] for h in s.history]
        out.append(_indent(table(["time", "type", "reason", "message"], rows)))
    else:
        out.append("History: none yet")
    return "\n".join(out)


def _indent(text: str) -> str:
    return "\n".join("  " + line if line else line for line in text.splitlines())
