"""The Router protocol every traffic provider implements, and what they share.

Four operations, like Flagger's router interface: make the routing object exist (`reconcile`),
move traffic (`set_routes`), read where traffic goes (`get_routes`), give everything back
(`finalize`). Routers read and write through `agent.resources.ResourceClient` only, and write
with `agent.workloads.ensure` (full replace guarded by resourceVersion; CRDs reject strategic
merge and a merge patch would replace whole route lists).
"""

from __future__ import annotations

import copy
from typing import Any, Protocol

from agent.core.types import Routes
from kubectl_canary.api.model import Canary


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
        """Restore a taken-over routing object, or remove the ones we created."""


def check_weights(primary: int, canary_weight: int) -> None:
    if not (0 <= primary <= 100 and 0 <= canary_weight <= 100):
        raise ValueError(f"weights must be within 0..100, got {primary}/{canary_weight}")
    if primary + canary_weight != 100:
        raise ValueError(f"weights must sum to 100, got {primary}+{canary_weight}")


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
