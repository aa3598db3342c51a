"""What a tick needs from the providers, as one small protocol.

The tick and the action executor call routers, workload builders, metric providers and
webhooks only through this, so they can be tested with fakes and the binding to the provider
modules lives in one place (`agent/wiring.py`).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Protocol

from agent.core.types import GateResult, MetricResult, Routes
from kubectl_canary.api.model import Canary, MetricSpec, MetricTemplate, WebhookSpec
from kubectl_canary.resources import Obj, ResourceClient


class Router(Protocol):
    def reconcile(self, canary: Canary) -> None: ...

    def set_routes(
        self,
        canary: Canary,
        primary: int,
        canary_weight: int,
        mirror: bool,
        match: tuple[dict[str, Any], ...],
    ) -> None: ...

    def get_routes(self, canary: Canary) -> Routes | None: ...

    def finalize(self, canary: Canary) -> None: ...


class Toolkit(Protocol):
    def router(self, canary: Canary, client: ResourceClient) -> Router: ...

    def tracked_config_refs(self, deployment: Obj) -> list[tuple[str, str]]:
        """(kind, name) of the ConfigMaps/Secrets the Deployment's pods reference."""

    def template_hash(self, deployment: Obj, configs: Mapping[tuple[str, str], Obj | None]) -> str:
        """Checksum of the pod template plus the given tracked configs' data."""

    def initialize(
        self, canary: Canary, client: ResourceClient, target: Obj, routing: bool
    ) -> None:
        """Create/update the primary Deployment and the Services (not the routing object);
        the apex Service only with `routing` (see `Initialize`)."""

    def promote(
        self, canary: Canary, client: ResourceClient, target: Obj, with_replicas: bool
    ) -> None:
        """Copy the target's template (and its replicas, `with_replicas`) to the primary."""

    def restore_target(self, canary: Canary, client: ResourceClient) -> None:
        """Copy the primary's (last promoted) template back onto the target."""

    def revert(self, canary: Canary, client: ResourceClient) -> None:
        """Deletion: restore the target and hand the apex Service back (idempotent;
        the routing object is the router's `finalize`, a later step)."""

    def query_metric(
        self, canary: Canary, metric: MetricSpec, template: MetricTemplate | None, server: str
    ) -> MetricResult: ...

    def webhook_payload(self, canary: Canary, webhook: WebhookSpec, phase: str) -> dict[str, Any]:
        """Flagger's body: {name, namespace, phase, checksum, metadata}."""

    def call_webhook(self, webhook: WebhookSpec, payload: dict[str, Any]) -> GateResult: ...
