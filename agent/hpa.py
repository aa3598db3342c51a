"""The primary's HorizontalPodAutoscaler: a copy of the target's HPA aimed at `<target>-primary`.

Flagger's behaviour: the user's HPA keeps scaling the canary Deployment; the agent keeps
`<hpa>-primary` in step with it (same spec, scaleTargetRef pointing at the primary), so both
sides autoscale independently.
"""

from __future__ import annotations

import copy

from agent.workloads import ensure
from kubectl_canary.api.model import API_VERSION, MANAGED_BY_LABEL, Canary
from kubectl_canary.resources import Obj, ResourceClient

HPA_API = "autoscaling/v2"


def primary_hpa(canary: Canary, hpa: Obj) -> Obj:
    meta = hpa.get("metadata") or {}
    spec = copy.deepcopy(hpa.get("spec") or {})
    ref = dict(spec.get("scaleTargetRef") or {})
    ref["name"] = f"{canary.spec.target_ref.name}-primary"
    spec["scaleTargetRef"] = ref
    return {
        "apiVersion": HPA_API,
        "kind": "HorizontalPodAutoscaler",
        "metadata": {
            "name": f"{meta.get('name', '')}-primary",
            "namespace": canary.namespace,
            "labels": {MANAGED_BY_LABEL: canary.name},
            "ownerReferences": [
                {
                    "apiVersion": API_VERSION,
                    "kind": "Canary",
                    "name": canary.name,
                    "uid": canary.uid,
                    "controller": True,
                }
            ],
        },
        "spec": spec,
    }


def ensure_primary_hpa(client: ResourceClient, canary: Canary) -> Obj | None:
    """Create or update `<hpa>-primary` from the target's HPA; None when there is no HPA."""
    ref = canary.spec.autoscaler_ref
    if ref is None:
        return None
    hpa = client.get(HPA_API, "HorizontalPodAutoscaler", canary.namespace, ref.name)
    if hpa is None:
        return None
    # Never a user's HPA that happens to have our name: ensure refuses what is not ours.
    return ensure(client, primary_hpa(canary, hpa))
