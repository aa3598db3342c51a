"""Observations built from cached Deployments and the request annotation."""

from __future__ import annotations

import json

from agent.observe import pending_request, workload
from kubectl_canary.api.model import (
    REQUEST_ANNOTATION,
    Canary,
    CanarySpec,
    CanaryStatus,
    RequestAck,
    RequestAction,
    ServiceSpec,
    TargetRef,
)


def dep(gen: int = 2, observed: int = 2, replicas: int = 3, ready: int = 3, updated: int = 3):
    return {
        "metadata": {"name": "mhs", "generation": gen},
        "spec": {
            "replicas": replicas,
            "template": {"spec": {"containers": [{"name": "app", "image": "mhs:1.1.2"}]}},
        },
        "status": {
            "observedGeneration": observed,
            "readyReplicas": ready,
            "updatedReplicas": updated,
            "availableReplicas": ready,
        },
    }


def test_missing_deployment() -> None:
    assert workload(None).exists is False


def test_ready_deployment() -> None:
    w = workload(dep(), "h1")
    assert (w.exists, w.replicas, w.ready_replicas, w.template_hash) == (True, 3, 3, "h1")
    assert w.images == ("mhs:1.1.2",)
    assert w.ready_percent() == 100


def test_unobserved_generation_counts_nothing_ready() -> None:
    w = workload(dep(gen=3, observed=2))
    assert (w.ready_replicas, w.updated_replicas) == (0, 0)


def test_only_updated_pods_count_as_ready() -> None:
    w = workload(dep(ready=3, updated=1))
    assert w.ready_replicas == 1


def test_progress_deadline_condition() -> None:
    d = dep()
    d["status"]["conditions"] = [{"type": "Progressing", "reason": "ProgressDeadlineExceeded"}]
    assert workload(d).deadline_exceeded


def make_canary(annotations: dict[str, str], ack: RequestAck | None = None) -> Canary:
    spec = CanarySpec(target_ref=TargetRef("mhs"), service=ServiceSpec(port=80))
    return Canary(
        "test", "mhs", spec, status=CanaryStatus(last_request=ack), annotations=annotations
    )


def test_pending_request_is_passed_until_acknowledged() -> None:
    ann = {REQUEST_ANNOTATION: json.dumps({"id": "r1", "action": "abort"})}
    req = pending_request(make_canary(ann), lambda m: None)
    assert req is not None and req.id == "r1" and req.action is RequestAction.ABORT
    ack = RequestAck("r1", "abort", True, "", "")
    assert pending_request(make_canary(ann, ack), lambda m: None) is None
    ack_other = RequestAck("r0", "abort", True, "", "")
    assert pending_request(make_canary(ann, ack_other), lambda m: None) is not None


def test_malformed_request_is_reported_and_ignored() -> None:
    warnings: list[str] = []
    canary = make_canary({REQUEST_ANNOTATION: "{not json"})
    assert pending_request(canary, warnings.append) is None
    assert len(warnings) == 1 and "request" in warnings[0]
