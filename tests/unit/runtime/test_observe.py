"""Observations built from cached Deployments and the request annotation."""

from __future__ import annotations

import json

import pytest

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
from kubectl_canary.objects.apex import label_selector, serves_only


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


def test_pods_of_the_old_template_are_not_counted_as_new_ready_ones() -> None:
    """Mid-rollout all three new pods exist, two old ones still run and are ready: the ready
    count (5 pods) says nothing of the new pods until the old ones are gone."""
    rolling = dep(ready=4, updated=3)
    rolling["status"]["replicas"] = 5
    assert workload(rolling).ready_replicas == 2
    done = dep(ready=3, updated=3)
    done["status"]["replicas"] = 3
    assert workload(done).ready_replicas == 3


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


def pod(name: str) -> dict:
    return {"kind": "Pod", "metadata": {"name": name, "namespace": "test"}}


def endpoints(ready: list[str], unready: tuple[str, ...] = (), by_hand: int = 0) -> dict:
    def address(i: int, name: str | None) -> dict:
        entry: dict = {"ip": f"10.0.0.{i}"}
        if name is not None:
            entry["targetRef"] = {"kind": "Pod", "name": name, "namespace": "test"}
        return entry

    names: list[str | None] = [*ready, *([None] * by_hand)]
    subset: dict = {"ports": [{"port": 9898}]}
    if names:
        subset["addresses"] = [address(i, n) for i, n in enumerate(names)]
    if unready:
        subset["notReadyAddresses"] = [address(100 + i, n) for i, n in enumerate(unready)]
    return {"kind": "Endpoints", "metadata": {"name": "mhs"}, "subsets": [subset]}


TARGET_PODS = [pod("mhs-6d9f-aaaaa"), pod("mhs-6d9f-bbbbb")]


@pytest.mark.parametrize(
    ("eps", "expected"),
    [
        # Just after the selector moved: the endpoints controller has not caught up.
        (endpoints(["mhs-primary-7c4-xxxxx", "mhs-primary-7c4-yyyyy"]), False),
        # Half way through its update.
        (endpoints(["mhs-primary-7c4-xxxxx", "mhs-6d9f-aaaaa"]), False),
        (endpoints(["mhs-6d9f-aaaaa", "mhs-6d9f-bbbbb"]), True),
        # One ready target pod is enough; unready addresses take no traffic.
        (endpoints(["mhs-6d9f-aaaaa"], unready=("mhs-primary-7c4-xxxxx",)), True),
        # Nothing ready behind the Service: never let go of the primary then.
        (endpoints([], unready=("mhs-6d9f-aaaaa",)), False),
        ({"kind": "Endpoints", "metadata": {"name": "mhs"}}, False),
        (None, False),
        # Addresses maintained by hand name no pod: nothing to compare with.
        (endpoints([], by_hand=2), True),
    ],
    ids=[
        "stale",
        "mixed",
        "switched",
        "one-ready",
        "none-ready",
        "no-subsets",
        "missing",
        "manual",
    ],
)
def test_serves_only_compares_ready_endpoints_with_the_pods(
    eps: dict | None, expected: bool
) -> None:
    assert serves_only(eps, TARGET_PODS) is expected


def test_serves_only_without_pods() -> None:
    assert serves_only(endpoints(["mhs-6d9f-aaaaa"]), []) is False


def test_label_selector_renders_labels_and_expressions() -> None:
    selector = {
        "matchLabels": {"app": "mhs", "tier": "web"},
        "matchExpressions": [
            {"key": "track", "operator": "In", "values": ["stable", "beta"]},
            {"key": "env", "operator": "NotIn", "values": ["dev"]},
            {"key": "team", "operator": "Exists"},
            {"key": "legacy", "operator": "DoesNotExist"},
        ],
    }
    assert label_selector(selector) == (
        "app=mhs,tier=web,track in (stable,beta),env notin (dev),team,!legacy"
    )
    assert label_selector({}) == ""
    with pytest.raises(ValueError, match="operator"):
        label_selector({"matchExpressions": [{"key": "a", "operator": "Gt"}]})
