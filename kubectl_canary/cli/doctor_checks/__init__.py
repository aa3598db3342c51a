"""The checks `kubectl canary doctor` runs, one module per area: the installation (CRDs, agent,
RBAC, mesh CRDs), the metrics servers, and each Canary (its state, the objects the agent
generated, the objects it references). Every check is a read; none writes."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

Obj = dict[str, Any]


@dataclass(frozen=True)
class Check:
    name: str
    result: str  # "ok" | "warn" | "fail"
    detail: str
    hint: str = ""
