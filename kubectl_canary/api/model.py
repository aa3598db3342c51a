"""Typed, defaulted view of the Canary and MetricTemplate resources.

These dataclasses are the one shape the rest of the product sees: `parse.py` builds them from
the dicts the API server returns (applying defaults), `validate.py` checks them, and
`render.py` turns a `CanaryStatus` back into the dict the agent writes to `status`.
They hold plain data only, so the pure core (`agent/core`) can use them without I/O.

Field names follow Flagger's `flagger.app/v1beta1` Canary (camelCase in YAML, snake_case here).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any

GROUP = "kubectl-canary.dev"
VERSION = "v1alpha1"
API_VERSION = f"{GROUP}/{VERSION}"
CANARY_PLURAL = "canaries"
METRIC_TEMPLATE_PLURAL = "metrictemplates"

# The plugin expresses intent through these annotations; the agent alone writes status and
# acknowledges each request by copying its id into `status.lastRequest.id` (one writer per field).
REQUEST_ANNOTATION = f"{GROUP}/request"
# Finalizer the agent holds on every Canary it manages (whatever `revertOnDeletion` says), so
# a deletion always hands the app back before garbage collection removes the primary.
FINALIZER = f"{GROUP}/revert"
# Label put on every object the agent generates, with the Canary's name as value.
MANAGED_BY_LABEL = f"{GROUP}/canary"
# Pod label the agent puts on both the primary's and the target's pods (the app's selector value),
# so the kubernetes provider can select both pod sets at once.
SHARED_POD_LABEL = f"{GROUP}/app"
# Annotation on a taken-over routing object holding its original spec (JSON).
ORIGINAL_SPEC_ANNOTATION = f"{GROUP}/original-spec"

PROVIDERS = ("istio", "gatewayapi", "kubernetes")
# Namespaced templates serve Canaries of their own namespace; cluster-scoped ones are the
# platform team's, shared by every namespace (docs/security.md, "Credentials").
TEMPLATE_KINDS = ("MetricTemplate", "ClusterMetricTemplate")
CLUSTER_TEMPLATE_KIND = "ClusterMetricTemplate"
WEBHOOK_TYPES = (
    "confirm-rollout",
    "pre-rollout",
    "rollout",
    "confirm-traffic-increase",
    "confirm-promotion",
    "post-rollout",
    "rollback",
    "event",
)
BUILTIN_METRICS = ("request-success-rate", "request-duration")
HISTORY_LIMIT = 50


class Phase(StrEnum):
    INITIALIZING = "Initializing"
    INITIALIZED = "Initialized"
    WAITING = "Waiting"
    PROGRESSING = "Progressing"
    WAITING_PROMOTION = "WaitingPromotion"
    PROMOTING = "Promoting"
    FINALISING = "Finalising"
    SUCCEEDED = "Succeeded"
    FAILED = "Failed"
    TERMINATING = "Terminating"


class RequestAction(StrEnum):
    """What the plugin can ask of the agent (DESIGN §4 'Beyond Flagger')."""

    ABORT = "abort"
    PROMOTE = "promote"  # skip_analysis=True: promote now, skipping the remaining steps
    PAUSE = "pause"
    RESUME = "resume"
    RETRY = "retry"


@dataclass(frozen=True)
class TargetRef:
    name: str
    kind: str = "Deployment"
    api_version: str = "apps/v1"


@dataclass(frozen=True)
class ObjectMetadata:
    """Labels and annotations to put on a generated object (service.apex/primary/canary)."""

    labels: dict[str, str] = field(default_factory=dict)
    annotations: dict[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class GatewayRef:
    name: str
    namespace: str | None = None
    section_name: str | None = None


@dataclass(frozen=True)
class ServiceSpec:
    port: int
    name: str | None = None  # apex Service name; defaults to targetRef.name
    port_name: str = "http"
    target_port: int | str | None = None  # defaults to port
    port_discovery: bool = False
    app_protocol: str | None = None
    gateways: tuple[str, ...] = ()
    hosts: tuple[str, ...] = ()
    gateway_refs: tuple[GatewayRef, ...] = ()
    retries: dict[str, Any] | None = None
    timeout: str | None = None
    headers: dict[str, Any] | None = None
    match: tuple[dict[str, Any], ...] = ()
    traffic_policy: dict[str, Any] | None = None
    apex: ObjectMetadata = field(default_factory=ObjectMetadata)
    primary: ObjectMetadata = field(default_factory=ObjectMetadata)
    canary: ObjectMetadata = field(default_factory=ObjectMetadata)


@dataclass(frozen=True)
class ThresholdRange:
    min: float | None = None
    max: float | None = None


@dataclass(frozen=True)
class TemplateRef:
    name: str
    namespace: str | None = None  # defaults to the Canary's namespace; must be it
    kind: str = "MetricTemplate"  # or "ClusterMetricTemplate" (cluster-scoped, no namespace)


@dataclass(frozen=True)
class MetricSpec:
    name: str
    interval_seconds: float = 60.0  # the PromQL range; defaults to 1m like Flagger
    threshold_range: ThresholdRange = field(default_factory=ThresholdRange)
    template_ref: TemplateRef | None = None  # None: a built-in metric named by `name`
    template_variables: dict[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class WebhookSpec:
    name: str
    url: str
    type: str = "rollout"
    timeout_seconds: float = 10.0
    metadata: dict[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class AnalysisSpec:
    interval_seconds: float = 60.0
    threshold: int = 5
    max_weight: int = 50
    step_weight: int = 10
    step_weights: tuple[int, ...] = ()
    step_weight_promotion: int = 0  # 0: route everything back to the primary at once
    iterations: int = 0  # > 0: blue/green, or A/B when `match` is set
    match: tuple[dict[str, Any], ...] = ()
    mirror: bool = False
    mirror_weight: int = 0
    primary_ready_threshold: int = 100
    canary_ready_threshold: int = 100
    metrics: tuple[MetricSpec, ...] = ()
    webhooks: tuple[WebhookSpec, ...] = ()

    @property
    def strategy(self) -> str:
        """'canary' (weights), 'blue-green' (iterations) or 'ab' (iterations + match)."""
        if self.iterations > 0:
            return "ab" if self.match else "blue-green"
        return "canary"


@dataclass(frozen=True)
class CanarySpec:
    target_ref: TargetRef
    service: ServiceSpec
    analysis: AnalysisSpec = field(default_factory=AnalysisSpec)
    autoscaler_ref: TargetRef | None = None
    provider: str = "kubernetes"
    metrics_server: str | None = None  # None: the agent's --metrics-server
    progress_deadline_seconds: int = 600
    skip_analysis: bool = False
    suspend: bool = False
    revert_on_deletion: bool = False


@dataclass(frozen=True)
class HistoryEntry:
    """One event of a release, kept in status so nothing is lost to event expiry."""

    time: str  # RFC 3339, UTC
    type: str  # "Normal" | "Warning"
    reason: str
    message: str


@dataclass(frozen=True)
class Condition:
    type: str
    status: str  # "True" | "False" | "Unknown"
    reason: str
    message: str
    last_transition_time: str
    last_update_time: str


@dataclass(frozen=True)
class MetricValue:
    """The last value of one analysis metric, shown by `kubectl canary status`."""

    name: str
    value: float | None  # None: no data
    min: float | None
    max: float | None
    passed: bool
    time: str


@dataclass(frozen=True)
class Request:
    """A request from the plugin, read from REQUEST_ANNOTATION (JSON)."""

    id: str
    action: RequestAction
    skip_analysis: bool = False  # promote only


@dataclass(frozen=True)
class RequestAck:
    """The agent's answer to a Request: accepted or refused, and why."""

    id: str
    action: str
    accepted: bool
    message: str
    time: str


@dataclass(frozen=True)
class CanaryStatus:
    phase: Phase = Phase.INITIALIZING
    canary_weight: int = 0
    failed_checks: int = 0
    iterations: int = 0
    paused: bool = False
    # Checksum of the target's pod template (+ tracked configs) last analysed / last promoted.
    last_applied_spec: str = ""
    last_promoted_spec: str = ""
    # A failed revision is never analysed again unless retried; this records which one failed.
    last_failed_spec: str = ""
    tracked_configs: dict[str, str] = field(default_factory=dict)
    last_transition_time: str = ""
    # When the current wait (canary not ready, gate closed) started, for the progress deadline.
    waiting_since: str = ""
    # When the core last took an analysis step (checks, weight/iteration step, promotion step).
    # The runtime may tick a canary early (on watch events); steps still happen at most once
    # per `analysis.interval` because the core compares `now` with this time.
    last_analysis_time: str = ""
    observed_generation: int = 0
    conditions: tuple[Condition, ...] = ()
    history: tuple[HistoryEntry, ...] = ()
    last_metrics: tuple[MetricValue, ...] = ()
    last_request: RequestAck | None = None
    # Routing actually achieved (the kubernetes provider approximates weights by replicas).
    primary_weight: int = 100


@dataclass(frozen=True)
class Canary:
    namespace: str
    name: str
    spec: CanarySpec
    status: CanaryStatus = field(default_factory=CanaryStatus)
    uid: str = ""
    generation: int = 0
    resource_version: str = ""
    annotations: dict[str, str] = field(default_factory=dict)
    finalizers: tuple[str, ...] = ()
    deletion_timestamp: str | None = None

    @property
    def key(self) -> str:
        return f"{self.namespace}/{self.name}"

    @property
    def display(self) -> str:
        """Flagger's `<name>.<namespace>` form used in event messages."""
        return f"{self.name}.{self.namespace}"


@dataclass(frozen=True)
class MetricTemplate:
    namespace: str  # "" for a ClusterMetricTemplate
    name: str
    provider_type: str  # "prometheus"
    query: str
    provider_address: str | None = None
    secret_ref: str | None = None  # Secret with `token` or `username`/`password`
    kind: str = "MetricTemplate"  # or "ClusterMetricTemplate"
