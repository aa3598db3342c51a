"""Objects as the agent leaves them mid-release, for CLI view tests."""

from __future__ import annotations

import copy
from typing import Any

Obj = dict[str, Any]


def canary(
    name: str = "mhs",
    namespace: str = "test",
    phase: str = "Progressing",
    weight: int = 20,
    failed: int = 1,
    provider: str = "istio",
    **status: Any,
) -> Obj:
    obj: Obj = {
        "apiVersion": "kubectl-canary.dev/v1alpha1",
        "kind": "Canary",
        "metadata": {"name": name, "namespace": namespace},
        "spec": {
            "provider": provider,
            "targetRef": {"apiVersion": "apps/v1", "kind": "Deployment", "name": name},
            "service": {"port": 9898},
            "analysis": {
                "interval": "1m",
                "threshold": 5,
                "maxWeight": 50,
                "stepWeight": 10,
                "metrics": [
                    {
                        "name": "request-success-rate",
                        "thresholdRange": {"min": 99},
                        "interval": "1m",
                    },
                    {"name": "request-duration", "thresholdRange": {"max": 500}, "interval": "1m"},
                ],
            },
        },
        "status": {
            "phase": phase,
            "canaryWeight": weight,
            "failedChecks": failed,
            "primaryWeight": 100 - weight,
            "lastTransitionTime": "2026-11-27T09:57:00Z",
            "history": [
                {
                    "time": "2026-11-27T09:40:00Z",
                    "type": "Normal",
                    "reason": "Synced",
                    "message": f"Initialization done! {name}.{namespace}",
                },
                {
                    "time": "2026-11-27T09:57:00Z",
                    "type": "Normal",
                    "reason": "Synced",
                    "message": f"New revision detected! Scaling up {name}.{namespace}",
                },
                {
                    "time": "2026-11-27T09:58:00Z",
                    "type": "Normal",
                    "reason": "Synced",
                    "message": f"Advance {name}.{namespace} canary weight 10",
                },
                {
                    "time": "2026-11-27T09:59:00Z",
                    "type": "Normal",
                    "reason": "Synced",
                    "message": f"Advance {name}.{namespace} canary weight 20",
                },
                {
                    "time": "2026-11-27T09:59:40Z",
                    "type": "Warning",
                    "reason": "Synced",
                    "message": f"Halt {name}.{namespace} advancement success rate 57.14% < 99%",
                },
            ],
            "lastMetrics": [
                {
                    "name": "request-success-rate",
                    "value": 57.142857,
                    "min": 99,
                    "passed": False,
                    "time": "2026-11-27T09:59:40Z",
                },
                {
                    "name": "request-duration",
                    "value": 120.0,
                    "max": 500,
                    "passed": True,
                    "time": "2026-11-27T09:59:40Z",
                },
            ],
        },
    }
    obj["status"].update(status)
    return obj


def entry(time: str, message: str, type_: str = "Normal", reason: str = "Synced") -> Obj:
    """One status.history entry, as the agent appends them."""
    return {"time": time, "type": type_, "reason": reason, "message": message}


def deployment(
    name: str,
    image: str,
    replicas: int = 2,
    ready: int = 2,
    namespace: str = "test",
    app: str | None = None,
) -> Obj:
    label = app or name
    return {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {"name": name, "namespace": namespace},
        "spec": {
            "replicas": replicas,
            "selector": {"matchLabels": {"app": label}},
            "template": {
                "metadata": {"labels": {"app": label}},
                "spec": {"containers": [{"name": "app", "image": image}]},
            },
        },
        "status": {
            "replicas": replicas,
            "readyReplicas": ready,
            "updatedReplicas": replicas,
            "availableReplicas": ready,
        },
    }


def virtual_service(name: str, primary: int, namespace: str = "test") -> Obj:
    return {
        "apiVersion": "networking.istio.io/v1beta1",
        "kind": "VirtualService",
        "metadata": {"name": name, "namespace": namespace},
        "spec": {
            "hosts": [name],
            "http": [
                {
                    "route": [
                        {"destination": {"host": f"{name}-primary"}, "weight": primary},
                        {"destination": {"host": f"{name}-canary"}, "weight": 100 - primary},
                    ]
                }
            ],
        },
    }


def release(fake: Any, name: str = "mhs", **kw: Any) -> Obj:
    """A canary mid-release with its Deployments and VirtualService, stored in `fake`."""
    c = canary(name, **kw)
    fake.add(copy.deepcopy(c))
    fake.add(deployment(f"{name}-primary", "ghcr.io/acme/mhs:1.1.2", app=f"{name}-primary"))
    fake.add(deployment(name, "ghcr.io/acme/mhs:1.1.3", ready=1))
    fake.add(virtual_service(name, 100 - c["status"]["canaryWeight"]))
    return c


def owner(fake: Any, name: str = "mhs", namespace: str = "test") -> list[Obj]:
    """ownerReferences naming the stored Canary `name`: its uid is the one the store gave it,
    as on a real API server (which also garbage-collects dependents of an unknown uid)."""
    stored = fake.find("Canary", name, namespace)
    assert stored is not None, f"add Canary {name} before objects it owns"
    return [
        {
            "apiVersion": "kubectl-canary.dev/v1alpha1",
            "kind": "Canary",
            "name": name,
            "uid": stored["metadata"]["uid"],
            "controller": True,
        }
    ]


def metric_template(name: str, namespace: str = "test", secret: str | None = None) -> Obj:
    """A Prometheus MetricTemplate; `secret` names the Secret its provider authenticates with."""
    provider: Obj = {"type": "prometheus", "address": "http://prometheus.monitoring:9090"}
    if secret:
        provider["secretRef"] = {"name": secret}
    return {
        "apiVersion": "kubectl-canary.dev/v1alpha1",
        "kind": "MetricTemplate",
        "metadata": {"name": name, "namespace": namespace},
        "spec": {"provider": provider, "query": "sum(rate(errors[{{ interval }}]))"},
    }
