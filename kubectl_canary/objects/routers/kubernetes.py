"""Kubernetes (no mesh): traffic is split by which pods the apex Service selects.

A Service spreads connections evenly over its ready endpoints, so the only lever without a mesh
is the set of pods behind the apex Service `<svc>`; the share each version gets is its share of
ready pods. The router moves the apex selector between three states:

- canary weight 0:    `{<label>: <value>-primary}`   primary pods only
- canary weight 100:  `{<label>: <value>}`           target (canary) pods only (blue/green)
- anything between:   `{SHARED_POD_LABEL: <value>}`  both pod sets

where `<label>: <value>` is the target's selector label (see `selectors.selector_label`).
The primary's pods get SHARED_POD_LABEL from `builders.primary_deployment`; the target's pods
get it from `reconcile`, which adds it to the target's pod template (a label only this router
reads; `hashes.template_hash` ignores it, so it is not a new revision). Labels are used
rather than a mesh-free proxy so every transition keeps ready endpoints behind the Service:
both pod sets carry the shared label, so switching selectors never empties it.

The weight asked for is therefore not the weight achieved: `set_routes` and `get_routes`
report canary ready replicas / (canary + primary ready replicas), rounded. Choosing replica
counts that approximate a weight is the runtime's business (it scales the target). Mirroring
and request matching (A/B) cannot be done with a selector: mirroring is reported as not
achieved, and analysis.match is a RouterError.
"""

from __future__ import annotations

from kubectl_canary.api.model import SHARED_POD_LABEL, Canary
from kubectl_canary.objects.apex import release_apex_service
from kubectl_canary.objects.builders import apex_service
from kubectl_canary.objects.metadata import managed_by
from kubectl_canary.objects.names import primary_name, service_name
from kubectl_canary.objects.routers.base import RouterError, check_weights, routes_in_percent
from kubectl_canary.objects.routes import Routes
from kubectl_canary.objects.selectors import (
    primary_selector,
    selector_label,
    shared_selector,
    target_selector,
)
from kubectl_canary.objects.writer import ensure
from kubectl_canary.resources import Obj, ResourceClient


def _ready(deployment: Obj | None) -> int:
    if deployment is None:
        return 0
    return int((deployment.get("status") or {}).get("readyReplicas") or 0)


def _labelled_ready(target: Obj) -> int:
    """Ready target pods carrying SHARED_POD_LABEL. Until a rollout that added the label has
    finished, only updated pods have it: count at most those."""
    if not _has_shared_label(target):
        return 0
    status = target.get("status") or {}
    return min(_ready(target), int(status.get("updatedReplicas") or 0))


def _has_shared_label(target: Obj) -> bool:
    labels = target["spec"]["template"].get("metadata", {}).get("labels") or {}
    return labels.get(SHARED_POD_LABEL) == selector_label(target)[1]


class KubernetesRouter:
    name = "kubernetes"
    exact_weights = False

    def __init__(self, client: ResourceClient) -> None:
        self._client = client

    def _target(self, canary: Canary) -> Obj:
        target = self._client.get(
            "apps/v1", "Deployment", canary.namespace, canary.spec.target_ref.name
        )
        if target is None:
            raise RouterError(
                f"Deployment {canary.namespace}/{canary.spec.target_ref.name} not found"
            )
        return target

    def _apex(self, canary: Canary) -> Obj | None:
        return self._client.get("v1", "Service", canary.namespace, service_name(canary))

    def _selector(self, target: Obj, canary_weight: int) -> dict[str, str]:
        if canary_weight <= 0:
            return primary_selector(target)
        if canary_weight >= 100:
            return target_selector(target)
        return shared_selector(target)

    def _achieved(self, canary: Canary, target: Obj, selector: dict[str, str]) -> Routes | None:
        if selector == primary_selector(target):
            return Routes(primary=100, canary=0)
        if selector == target_selector(target):
            return Routes(primary=0, canary=100)
        if selector != shared_selector(target):
            return None  # someone else's selector: not a state this router produces
        primary = self._client.get("apps/v1", "Deployment", canary.namespace, primary_name(canary))
        canary_ready = _labelled_ready(target)
        # No ready pod on either side yet: nothing has moved off the primary.
        return routes_in_percent(_ready(primary), canary_ready) or Routes(primary=100, canary=0)

    def _label_target(self, canary: Canary) -> Obj:
        """Add SHARED_POD_LABEL to the target's pod template.

        A merge patch of one map key: it cannot clobber anything, so it needs no
        resourceVersion guard (which would lose races with every status update of a rollout).
        """
        target = self._target(canary)
        if _has_shared_label(target):
            return target
        value = selector_label(target)[1]
        patch = {"spec": {"template": {"metadata": {"labels": {SHARED_POD_LABEL: value}}}}}
        return self._client.patch_merge(
            "apps/v1", "Deployment", canary.namespace, target["metadata"]["name"], patch
        )

    def reconcile(self, canary: Canary) -> None:
        if canary.spec.analysis.match:
            raise RouterError(
                "provider kubernetes cannot route by request match (analysis.match); "
                "use istio or gatewayapi for A/B testing"
            )
        target = self._label_target(canary)
        live = self._apex(canary)
        selector = primary_selector(target)
        if live is not None and managed_by(live) == canary.name:
            current = (live.get("spec") or {}).get("selector") or {}
            if current in (target_selector(target), shared_selector(target)):
                selector = current
        ensure(self._client, apex_service(target, canary, selector), detect_drift=True, adopt=True)

    def set_routes(
        self, canary: Canary, primary: int, canary_weight: int, mirror: bool = False
    ) -> int:
        check_weights(primary, canary_weight)
        if managed_by(self._apex(canary)) != canary.name:
            raise RouterError(
                f"Service {canary.namespace}/{service_name(canary)} is missing or not managed "
                f"by Canary {canary.name}; reconcile first"
            )
        target = self._target(canary)
        selector = self._selector(target, canary_weight)
        ensure(self._client, apex_service(target, canary, selector), detect_drift=True, adopt=True)
        achieved = self._achieved(canary, target, selector)
        return achieved.canary if achieved else 0

    def get_routes(self, canary: Canary) -> Routes | None:
        live = self._apex(canary)
        if live is None or managed_by(live) != canary.name:
            return None
        target = self._target(canary)
        return self._achieved(canary, target, (live.get("spec") or {}).get("selector") or {})

    def finalize(self, canary: Canary) -> None:
        # The apex Service keeps serving after the Canary is gone: it is handed back pointing
        # at the target's pods (or restored to the user's original spec), never deleted.
        # SHARED_POD_LABEL stays on the target: removing it would roll its pods mid-revert.
        # With the target gone there is nothing to point it at: the core removes the finalizer
        # without asking for this (nothing to revert), and garbage collection takes a Service
        # we created; so Services are never deleted by the agent (no such RBAC grant).
        target = self._client.get(
            "apps/v1", "Deployment", canary.namespace, canary.spec.target_ref.name
        )
        if target is not None:
            release_apex_service(self._client, canary, target)
