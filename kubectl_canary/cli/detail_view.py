"""What `kubectl canary status NAME` prints: one canary in detail, and what happens next.

Pure functions of the typed Canary, the Deployments and routing read for it, and `now`, so
golden tests pin the output exactly.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from kubectl_canary.api.durations import format_duration
from kubectl_canary.api.model import (
    AnalysisSpec,
    Canary,
    CanaryStatus,
    Condition,
    HistoryEntry,
    MetricValue,
    Phase,
)
from kubectl_canary.cli.colour import PLAIN, Style
from kubectl_canary.cli.render import (
    age,
    fmt_number,
    human_duration,
    one_line,
    parse_time,
    table,
)
from kubectl_canary.cli.table_view import INVALID

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


def problems(message: str) -> list[str]:
    """The problems in the agent's `Valid=False` message, one each.

    The agent writes a spec's problems one a line under a heading ("Invalid spec: invalid
    Canary:") and its policy's joined with "; "."""
    lines = [line.strip() for line in message.splitlines()]
    items = [part.strip() for line in lines if not line.endswith(":") for part in line.split("; ")]
    return [item for item in items if item] or [message.strip()]


def not_valid(c: Canary) -> Condition | None:
    for condition in c.status.conditions:
        if condition.type == "Valid":
            return condition if condition.status == "False" else None
    return None


def next_step(c: Canary, now: datetime, flags: str = "") -> str:
    """What the agent will do next and a rough time left, from spec + status alone.

    `flags` (e.g. " -n shop") goes into every command suggested, so it can be pasted as is."""
    s, a = c.status, c.spec.analysis
    interval = a.interval_seconds
    if c.deletion_timestamp:
        return "being deleted: the agent is reverting the target before letting go"
    if not_valid(c) is not None:
        return "nothing until the problems below are fixed in the spec"
    if c.spec.suspend:
        return "suspended (spec.suspend): the agent does nothing until it is unset"
    if s.paused:
        return f"paused: run `kubectl canary resume {c.name}{flags}` to continue"
    phase = s.phase
    if phase in (Phase.INITIALIZED, Phase.SUCCEEDED):
        return f"waiting for a new revision of Deployment/{c.spec.target_ref.name}"
    if phase is Phase.FAILED:
        return (
            f"waiting for a new revision of Deployment/{c.spec.target_ref.name} "
            f"(or `kubectl canary retry {c.name}{flags}` to analyse this one again)"
        )
    if phase is Phase.INITIALIZING:
        if not s.last_transition_time and not s.history:
            return (
                f"the agent has not picked this canary up yet (see `kubectl canary doctor{flags}`)"
            )
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


@dataclass(frozen=True)
class Shown:
    """How the detail view is drawn, beside what it shows."""

    style: Style = PLAIN
    flags: str = ""  # -n/--context for the commands it suggests
    provider_note: str = ""  # why the provider shown is the one used, when spec has none
    history_limit: int | None = None  # the newest entries only (`-w` on a small terminal)


def detail(
    c: Canary,
    now: datetime,
    primary: Workload,
    canary: Workload,
    routes: RouteView,
    shown: Shown = Shown(),
) -> str:
    s, spec, a, style = c.status, c.spec, c.spec.analysis, shown.style
    out: list[str] = []

    def field(label: str, value: Any) -> None:
        out.append(f"{label + ':':<15}{value}")

    field("Name", c.name)
    field("Namespace", c.namespace)
    field("Target", f"{spec.target_ref.kind}/{spec.target_ref.name}")
    field("Provider", spec.provider + (f" {shown.provider_note}" if shown.provider_note else ""))
    if a.iterations > 0:
        strategy = f"{a.strategy}, {a.iterations} iterations"
    elif a.step_weights:
        strategy = f"canary, weights {','.join(str(w) for w in a.step_weights)}"
    else:
        strategy = f"canary, step {a.step_weight}% up to {a.max_weight}%"
    field("Strategy", f"{strategy}, every {format_duration(a.interval_seconds)}")
    invalid = not_valid(c)
    if invalid is not None:
        since = age(invalid.last_transition_time, now)
        field("Phase", f"{style.phase(INVALID)} since {since} (phase {s.phase.value})")
    else:
        phase = style.phase(s.phase.value, s.paused)
        field("Phase", f"{phase} since {age(s.last_transition_time, now)}")
    field("Weight", f"primary {s.primary_weight}% / canary {s.canary_weight}%")
    field("Failed checks", f"{s.failed_checks}/{a.threshold}")
    if a.iterations > 0:
        field("Iterations", f"{s.iterations}/{a.iterations}")
    field("Next", next_step(c, now, shown.flags))
    if s.last_request is not None:
        r = s.last_request
        verdict = "accepted" if r.accepted else "refused"
        msg = f": {r.message}" if r.message else ""
        field("Last request", f"{r.action} {verdict} {age(r.time, now)} ago{msg}")
    if invalid is not None:
        out.append("")
        out.append(f"Problems ({invalid.reason}):")
        out.extend(f"  - {p}" for p in problems(invalid.message))

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
                style.result(m.passed),
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
    out.extend(history_lines(s.history, style, shown.history_limit, f"{c.name}{shown.flags}"))
    return "\n".join(out)


def history_lines(
    history: tuple[HistoryEntry, ...], style: Style, limit: int | None, name_flags: str
) -> list[str]:
    """The history table; with `limit`, its newest entries and a line saying where the rest is."""
    if not history:
        return ["History: none yet"]
    entries = history if limit is None else history[len(history) - min(limit, len(history)) :]
    # One line per entry: the agent lists an invalid spec's problems one a line.
    rows = [[h.time, style.event_type(h.type), h.reason, one_line(h.message)] for h in entries]
    lines = ["History:", _indent(table(["time", "type", "reason", "message"], rows))]
    if len(entries) < len(history):
        earlier = len(history) - len(entries)
        lines.insert(
            1, f"  … {earlier} earlier entries, `kubectl canary status {name_flags}` for all"
        )
    return lines


def _indent(text: str) -> str:
    return "\n".join("  " + line if line else line for line in text.splitlines())


def invalid_detail(
    obj: Obj, found: list[str], status: CanaryStatus, now: datetime, shown: Shown = Shown()
) -> str:
    """A Canary whose spec does not parse: what the plugin finds wrong, then what the agent said.

    The agent acts on none of it, so there are no workloads, routes or metrics to show."""
    meta, spec = obj.get("metadata") or {}, obj.get("spec") or {}
    ref = spec.get("targetRef")
    target: Obj = ref if isinstance(ref, dict) else {}
    since = age(status.last_transition_time, now)
    out = [
        f"{'Name:':<15}{meta.get('name', '')}",
        f"{'Namespace:':<15}{meta.get('namespace', '')}",
        f"{'Target:':<15}{target.get('kind', 'Deployment')}/{target.get('name', '<missing>')}",
        f"{'Phase:':<15}{shown.style.phase(INVALID)} (agent's phase {status.phase.value}"
        f" since {since})",
        f"{'Next:':<15}nothing until the problems below are fixed in the spec",
        "",
        "Problems:",
        *(f"  - {p}" for p in found),
        "",
        *history_lines(
            status.history, shown.style, shown.history_limit, f"{meta.get('name', '')}{shown.flags}"
        ),
    ]
    return "\n".join(out)
