"""What the decision core sees (observations) and what it asks for (actions).

The contract between the pure core and the agent's runtime:

    decision = decide(canary, observations, now)

`decide` is pure. When it needs metric or webhook results it has not been given
(`observations.metrics is None` / `observations.gates is None`), it returns a decision whose only
actions are `QueryMetrics` / `RunGates` and whose status is unchanged; the runtime performs them
and calls `decide` again with the results, at the same `now`. All other actions are executed by
the runtime in the order given, then the new status is written once.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from kubectl_canary.api.model import CanaryStatus, MetricSpec, Request, WebhookSpec

# Shared with the routers (kubectl_canary/objects/routers/) and `kubectl canary status`.
from kubectl_canary.objects.routes import Routes as Routes


@dataclass(frozen=True)
class WorkloadObservation:
    """A Deployment as read from the cache. `exists=False` means it was not found."""

    exists: bool
    replicas: int = 0  # spec.replicas
    ready_replicas: int = 0
    updated_replicas: int = 0
    available_replicas: int = 0
    template_hash: str = ""  # checksum of the pod template (+ tracked configs for the target)
    images: tuple[str, ...] = ()
    # True when the Deployment controller reported ProgressDeadlineExceeded.
    deadline_exceeded: bool = False
    # True when it has a deletionTimestamp (e.g. its namespace is being deleted).
    deleting: bool = False

    def ready_percent(self) -> int:
        if self.replicas <= 0:
            return 0
        return min(100, self.ready_replicas * 100 // self.replicas)


@dataclass(frozen=True)
class MetricResult:
    """A metric provider's answer. Exactly one of value / no_data / error applies."""

    value: float | None = None
    no_data: bool = False
    error: str | None = None


@dataclass(frozen=True)
class GateResult:
    """A webhook's answer: ok is a 2xx status."""

    ok: bool
    message: str = ""


@dataclass(frozen=True)
class Observations:
    target: WorkloadObservation
    primary: WorkloadObservation
    routes: Routes | None  # None: routing object missing
    hpa_present: bool = False
    request: Request | None = None  # the pending plugin request, if not acknowledged yet
    deleting: bool = False  # the Canary has a deletionTimestamp
    spec_error: str | None = None  # validation problems found by the runtime (bad spec)
    metrics: Mapping[str, MetricResult] | None = None  # by metric name; None: not queried
    gates: Mapping[str, GateResult] | None = None  # by webhook name; None: not called
    # Only while the Canary is being deleted (None: not observed): True when the apex Service's
    # ready Endpoints are all pods of the target (at least one), i.e. the endpoints controller
    # has caught up with `Revert`, so the routing object may go and the primary be collected.
    apex_on_target: bool | None = None
    # Initializing only (None: not observed, counts as not yet): whether the ready Endpoints of
    # the primary Service `<svc>-primary` (what a routing object sends traffic to) and of the
    # apex Service are all pods of the primary, at least one.
    primary_service_on_primary: bool | None = None
    apex_on_primary: bool | None = None


# ----- actions, executed by the runtime in order -----


@dataclass(frozen=True)
class Initialize:
    """Create/update the primary Deployment, the Services and the routing object (100/0).

    `routing=False`: all but the apex Service and the routing object, which users call and
    which may be theirs to take over; while the primary is not serving they are left as they
    are (a user's keeps sending traffic to the target's pods)."""

    routing: bool = True


@dataclass(frozen=True)
class ScaleTarget:
    """Scale the target (canary) Deployment."""

    replicas: int


@dataclass(frozen=True)
class SetRoutes:
    primary: int
    canary: int
    mirror: bool = False
    # A/B testing: requests matching any of these conditions (Flagger's `analysis.match`) go to
    # the canary; all other requests follow the weights above (100/0 during A/B iterations).
    match: tuple[dict[str, Any], ...] = ()


@dataclass(frozen=True)
class PromoteTemplate:
    """Copy the target's pod template to the primary, and its replicas `with_replicas`:
    without an HPA (with one, the primary's own HPA sets them)."""

    with_replicas: bool


@dataclass(frozen=True)
class QueryMetrics:
    metrics: tuple[MetricSpec, ...]


@dataclass(frozen=True)
class RunGates:
    """Call gating webhooks (confirm-*, pre-rollout, rollout) and report each result."""

    webhooks: tuple[WebhookSpec, ...]
    phase: str


@dataclass(frozen=True)
class Notify:
    """Fire-and-forget webhooks (post-rollout, rollback, event); failures only logged."""

    webhooks: tuple[WebhookSpec, ...]
    phase: str
    message: str = ""


@dataclass(frozen=True)
class EmitEvent:
    """A Kubernetes Event on the Canary; the same entry is already in status.history."""

    type: str  # "Normal" | "Warning"
    reason: str
    message: str


@dataclass(frozen=True)
class AddFinalizer:
    pass


@dataclass(frozen=True)
class RestoreTargetTemplate:
    """Copy the primary's pod template (the last promoted revision) back onto the target, so a
    revert never hands all traffic to a revision that was never promoted."""


@dataclass(frozen=True)
class Revert:
    """The hand-back on deletion, first step: give the target its replicas back and point the
    apex Service at its pods (handing the Service over). Idempotent: repeated while waiting
    for `Observations.apex_on_target`."""


@dataclass(frozen=True)
class RevertRouting:
    """The hand-back on deletion, second step, once the apex Service's endpoints are the
    target's pods: restore a taken-over routing object, or delete the ones we created."""


@dataclass(frozen=True)
class RemoveFinalizer:
    pass


@dataclass(frozen=True)
class RequeueAfter:
    seconds: float


Action = (
    Initialize
    | ScaleTarget
    | SetRoutes
    | PromoteTemplate
    | QueryMetrics
    | RunGates
    | Notify
    | EmitEvent
    | AddFinalizer
    | RestoreTargetTemplate
    | Revert
    | RevertRouting
    | RemoveFinalizer
    | RequeueAfter
)


@dataclass(frozen=True)
class Decision:
    status: CanaryStatus
    actions: tuple[Action, ...] = field(default_factory=tuple)
