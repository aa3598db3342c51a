"""Binds the tick's Toolkit protocol to the provider modules (the objects layer's routers,
builders and hand-back; metrics; webhooks): the one place that knows their exact function
names and signatures."""

from __future__ import annotations

import base64
from collections.abc import Callable, Mapping
from typing import Any

from agent.core.types import GateResult, MetricResult
from agent.metrics import provider_for, query_for
from agent.webhooks import call_webhook, webhook_payload
from kubectl_canary.api.model import Canary, MetricSpec, MetricTemplate, WebhookSpec
from kubectl_canary.egress.policy import AllowRule, EgressError, EgressPolicy, parse_url
from kubectl_canary.objects import apex, handback, hashes, primary
from kubectl_canary.objects.routers import Router, router_for
from kubectl_canary.resources import Obj, ResourceClient

# The annotation by which a Secret's owner lists where its credentials may be sent.
ALLOWED_ADDRESSES = "kubectl-canary.dev/allowed-addresses"
SERVICE_ACCOUNT_TOKEN = "kubernetes.io/service-account-token"


class _RouterAdapter:
    """The tick's router view. A/B match conditions come from the spec: routers read
    `analysis.match` themselves and put the weights on the matching route (every other request
    stays on the primary), so `match` is accepted and not passed on."""

    def __init__(self, router: Router) -> None:
        self._router = router

    def reconcile(self, canary: Canary) -> None:
        self._router.reconcile(canary)

    def set_routes(
        self,
        canary: Canary,
        primary: int,
        canary_weight: int,
        mirror: bool,
        match: tuple[dict[str, Any], ...],
    ) -> None:
        self._router.set_routes(canary, primary, canary_weight, mirror)

    def get_routes(self, canary: Canary) -> Any:
        return self._router.get_routes(canary)

    def finalize(self, canary: Canary) -> None:
        self._router.finalize(canary)


class ProviderToolkit:
    def __init__(
        self,
        secrets: Callable[[str, str], Obj | None],
        metrics_timeout: float = 10.0,
        no_copy: tuple[str, ...] = (),
        egress: EgressPolicy | None = None,
        agent_namespace: str = "kubectl-canary",
    ) -> None:
        # Reads one Secret (namespace, name) by a GET: MetricTemplate credentials.
        self._secrets = secrets
        self._metrics_timeout = metrics_timeout
        self._egress = egress or EgressPolicy()
        # Where a ClusterMetricTemplate's Secret lives: the platform's, out of tenants' reach.
        self._agent_namespace = agent_namespace
        # Label/annotation keys (or prefixes ending in '/') never copied from the target, on
        # top of the GitOps tracking ones (kubectl_canary/objects/gitops.py).
        self._no_copy = no_copy

    def router(self, canary: Canary, client: ResourceClient) -> _RouterAdapter:
        return _RouterAdapter(router_for(canary.spec.provider, client))

    def tracked_config_refs(self, deployment: Obj) -> list[tuple[str, str]]:
        return hashes.tracked_config_refs(deployment)

    def template_hash(self, deployment: Obj, configs: Mapping[tuple[str, str], Obj | None]) -> str:
        config_hashes = {
            hashes.config_key(kind, name): (
                hashes.config_hash(obj) if obj is not None else "missing"
            )
            for (kind, name), obj in configs.items()
        }
        return hashes.template_hash(deployment, config_hashes)

    def initialize(
        self, canary: Canary, client: ResourceClient, target: Obj, routing: bool
    ) -> None:
        primary.initialize(client, canary, target, routing, self._no_copy)

    def promote(
        self, canary: Canary, client: ResourceClient, target: Obj, with_replicas: bool
    ) -> None:
        primary.promote(client, canary, target, with_replicas=with_replicas, no_copy=self._no_copy)

    def restore_target(self, canary: Canary, client: ResourceClient) -> None:
        primary.apply_target_restore(client, canary)

    def revert(self, canary: Canary, client: ResourceClient) -> None:
        """Give the app back to its own Deployment (objects/handback.py, shared with
        offboard): the target gets the primary's replica count if it has none, the apex
        Service points at its pods, and our ownerReference (if any) leaves the target. Run
        again on every tick that waits for the endpoints; once handed over, the Service is no
        longer ours and is left alone.

        With the kubernetes provider the apex Service is also the routing object: handing it
        over here is what moves traffic, and the router's `finalize` then finds nothing left."""
        target = handback.restore_replicas(client, canary)
        if target is None:
            return
        apex.release_apex_service(client, canary, target)
        handback.release_target(client, canary)

    def query_metric(
        self, canary: Canary, metric: MetricSpec, template: MetricTemplate | None, server: str
    ) -> MetricResult:
        try:
            query = query_for(canary, metric, template)
        except ValueError as exc:
            return MetricResult(error=str(exc))
        provider_type = template.provider_type if template is not None else "prometheus"
        address = (template.provider_address if template is not None else None) or server
        if not address:
            return MetricResult(
                error="no metrics server: set spec.metricsServer or --metrics-server"
            )
        creds: dict[str, str] = {}
        if template is not None and template.secret_ref:
            try:
                creds = self._credentials(template, address)
            except CredentialsError as exc:
                return MetricResult(error=str(exc))
        try:
            provider = provider_for(
                provider_type,
                address,
                policy=self._egress,
                timeout_seconds=self._metrics_timeout,
                token=creds.get("token"),
                username=creds.get("username"),
                password=creds.get("password"),
            )
        except ValueError as exc:
            return MetricResult(error=str(exc))
        return provider.run_query(query)

    def _credentials(self, template: MetricTemplate, address: str) -> dict[str, str]:
        """The strings of the template's Secret, once the Secret's owner has said they may go
        to `address` (docs/security.md, "Credentials")."""
        ns = template.namespace or self._agent_namespace
        shown = f"Secret {ns}/{template.secret_ref}"
        secret = self._secrets(ns, template.secret_ref or "")
        if secret is None:
            raise CredentialsError(f"{shown} not found")
        if secret.get("type") == SERVICE_ACCOUNT_TOKEN:
            raise CredentialsError(
                f"{shown} is a service-account token; it is never sent to a metrics server"
            )
        annotations = (secret.get("metadata") or {}).get("annotations") or {}
        if not secret_allows(annotations.get(ALLOWED_ADDRESSES, ""), address):
            raise CredentialsError(
                f"{shown} is not marked for this address: its owner lists the addresses it "
                f"may be sent to in annotation {ALLOWED_ADDRESSES}"
            )
        return _secret_strings(secret)

    def webhook_payload(self, canary: Canary, webhook: WebhookSpec, phase: str) -> dict[str, Any]:
        return webhook_payload(canary, webhook, phase)

    def call_webhook(self, webhook: WebhookSpec, payload: dict[str, Any]) -> GateResult:
        return call_webhook(webhook, payload, self._egress)


class CredentialsError(ValueError):
    pass


def secret_allows(annotation: str, address: str) -> bool:
    """Whether a Secret's allowed-addresses annotation (comma-separated URL prefixes, each
    scheme://host[:port][/path]) admits `address`."""
    try:
        target = parse_url(address, allow_query=False)
    except EgressError:
        return False
    for entry in annotation.split(","):
        entry = entry.strip()
        if not entry:
            continue
        try:
            rule = AllowRule.parse(entry)
        except EgressError:
            continue  # a malformed entry admits nothing
        if rule.admits(target):
            return True
    return False


def _secret_strings(secret: Obj) -> dict[str, str]:
    out: dict[str, str] = {}
    for key, value in (secret.get("data") or {}).items():
        try:
            out[key] = base64.b64decode(value).decode()
        except (ValueError, UnicodeDecodeError):
            continue
    for key, value in (secret.get("stringData") or {}).items():
        out[key] = str(value)
    return out
