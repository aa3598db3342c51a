"""The Router protocol every traffic provider implements, and what they share.

Four operations, like Flagger's router interface: make the routing object exist (`reconcile`),
move traffic (`set_routes`), read where traffic goes (`get_routes`), give everything back
(`finalize`). Routers read and write through the shared `ResourceClient` only, and write
with `writer.ensure` (full replace guarded by resourceVersion; CRDs reject strategic
merge and a merge patch would replace whole route lists).
"""

from __future__ import annotations

import copy
from typing import Any, Protocol

from kubectl_canary.api.model import Canary
from kubectl_canary.objects.metadata import managed_by
from kubectl_canary.objects.names import service_name
from kubectl_canary.objects.routes import Routes
from kubectl_canary.objects.writer import ensure, release
from kubectl_canary.resources import Obj, ResourceClient


class RouterError(RuntimeError):
    """The routing object cannot be built or steered as asked (bad spec, missing object)."""


class Router(Protocol):
    name: str
    # False when the router can only approximate weights (it reports what it achieved).
    exact_weights: bool

    def reconcile(self, canary: Canary) -> None:
        """Create or update the routing object at its current weights (100/0 when new)."""

    def set_routes(
        self, canary: Canary, primary: int, canary_weight: int, mirror: bool = False
    ) -> int:
        """Route `primary`% / `canary_weight`% (summing to 100); return the canary weight
        actually achieved."""

    def get_routes(self, canary: Canary) -> Routes | None:
        """Current weights; None when the routing object is missing or not ours to read."""

    def finalize(self, canary: Canary) -> None:
        """Give the routing back (docs/release-semantics.md): restore a taken-over routing
        object; hand over, sending everything to the apex Service, one we created that serves
        an ingress gateway; delete the others we created."""


def check_weights(primary: int, canary_weight: int) -> None:
    if not (0 <= primary <= 100 and 0 <= canary_weight <= 100):
        raise ValueError(f"weights must be within 0..100, got {primary}/{canary_weight}")
    if primary + canary_weight != 100:
        raise ValueError(f"weights must sum to 100, got {primary}+{canary_weight}")


def routes_in_percent(primary: int, canary: int, mirror: bool = False) -> Routes | None:
    """Weights in any proportion as percentages (canary rounded, primary the rest); None when
    both are zero: nothing is routed."""
    total = primary + canary
    if total <= 0:
        return None
    canary_share = round(100 * canary / total)
    return Routes(primary=100 - canary_share, canary=canary_share, mirror=mirror)


def ab_matches(canary: Canary) -> list[dict[str, Any]]:
    """The A/B route's Istio-style match list: each analysis.match condition ANDed with each
    service.match condition (request headers merged, analysis wins on the same key)."""
    analysis = [dict(m) for m in canary.spec.analysis.match]
    service = [dict(m) for m in canary.spec.service.match]
    if not service:
        return copy.deepcopy(analysis)
    merged: list[dict[str, Any]] = []
    for a in analysis:
        for s in service:
            item = copy.deepcopy(s)
            for key, value in a.items():
                if isinstance(value, dict) and isinstance(item.get(key), dict):
                    item[key] = {**item[key], **copy.deepcopy(value)}
                else:
                    item[key] = copy.deepcopy(value)
            merged.append(item)
    return merged


class RouteObjectRouter:
    """A router steering one routing object named like the apex Service (a VirtualService, an
    HTTPRoute): what Istio and Gateway API share. Subclasses say which kind, how to build it at
    given weights and how to read weights back; they may add companion objects."""

    name = ""
    exact_weights = True
    api_version = ""
    kind = ""

    def __init__(self, client: ResourceClient) -> None:
        self._client = client

    def build(self, canary: Canary, routes: Routes) -> Obj:
        raise NotImplementedError

    def read(self, live: Obj, canary: Canary) -> Routes | None:
        raise NotImplementedError

    def reconcile_companions(self, canary: Canary) -> None:
        """Objects the routing object relies on (e.g. Istio DestinationRules)."""

    def finalize_companions(self, canary: Canary) -> None:
        """Give back what reconcile_companions made."""

    def handed_over_spec(self, canary: Canary, live: Obj) -> Obj | None:
        """The spec a routing object we created keeps when handed over, sending everything to
        the apex Service: for one that serves an ingress gateway, which would stop serving
        if it were deleted. None: delete it (callers reach the apex Service directly)."""
        return None

    def _live(self, canary: Canary) -> Obj | None:
        return self._client.get(self.api_version, self.kind, canary.namespace, service_name(canary))

    def reconcile(self, canary: Canary) -> None:
        self.reconcile_companions(canary)
        live = self._live(canary)
        current = self.read(live, canary) if live and managed_by(live) == canary.name else None
        # Keep the weights in force: reconcile repairs drift, it never moves traffic.
        # The routing object users' requests go through: an existing one is taken over.
        ensure(
            self._client,
            self.build(canary, current or Routes(100, 0)),
            detect_drift=True,
            adopt=True,
        )

    def set_routes(
        self, canary: Canary, primary: int, canary_weight: int, mirror: bool = False
    ) -> int:
        check_weights(primary, canary_weight)
        if managed_by(self._live(canary)) != canary.name:
            raise RouterError(
                f"{self.kind} {canary.namespace}/{service_name(canary)} is missing or not "
                f"managed by Canary {canary.name}; reconcile first"
            )
        routes = Routes(primary=primary, canary=canary_weight, mirror=mirror)
        ensure(self._client, self.build(canary, routes), detect_drift=True, adopt=True)
        return canary_weight

    def get_routes(self, canary: Canary) -> Routes | None:
        live = self._live(canary)
        if live is None or managed_by(live) != canary.name:
            return None
        return self.read(live, canary)

    def finalize(self, canary: Canary) -> None:
        """docs/release-semantics.md: a taken-over routing object gets its original spec
        back; one we created is rewritten to the apex Service and handed over when it serves
        a gateway (`handed_over_spec`), else deleted; anything not ours is left alone."""
        name = service_name(canary)
        live = self._client.get_live(self.api_version, self.kind, canary.namespace, name)
        if live is not None:
            keep = self.handed_over_spec(canary, live)
            release(
                self._client, self.api_version, self.kind, canary.namespace, name, canary, keep=keep
            )
        self.finalize_companions(canary)
