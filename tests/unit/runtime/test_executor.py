"""The action executor against the fake cluster: finalizers guarded, scaling skipped when done."""

from __future__ import annotations

import logging

import pytest

from agent.core.types import (
    AddFinalizer,
    GateResult,
    Notify,
    PromoteTemplate,
    RemoveFinalizer,
    Revert,
    RevertRouting,
    ScaleTarget,
)
from agent.executor import Executor
from kubectl_canary.api.model import FINALIZER, WebhookSpec
from kubectl_canary.api.parse import parse_canary
from kubectl_canary.resources import ApiError
from tests.store_client import StoreClient

from .test_reconcile import FakeToolkit, canary_obj, deployment

log = logging.getLogger("test")


def setup() -> tuple[StoreClient, FakeToolkit, Executor, dict]:
    k = StoreClient(namespace="test")
    obj = k.add(canary_obj())
    k.add(deployment())
    kit = FakeToolkit()
    return k, kit, Executor(k, kit, log), obj


def test_finalizer_added_once_and_removed() -> None:
    k, _, ex, obj = setup()
    canary = parse_canary(obj)
    out = ex.run(canary, obj, None, (AddFinalizer(), AddFinalizer()))
    assert k.find("Canary", "mhs", "test")["metadata"]["finalizers"] == [FINALIZER]
    assert (
        out.canary_obj["metadata"]["resourceVersion"]
        == k.find("Canary", "mhs", "test")["metadata"]["resourceVersion"]
    )
    assert [v for v, _, _ in k.requests] == ["patch"]
    k.edit("Canary", "mhs", lambda c: c["metadata"].update(finalizers=["other", FINALIZER]))
    out = ex.run(canary, k.find("Canary", "mhs", "test"), None, (RemoveFinalizer(),))
    assert k.find("Canary", "mhs", "test")["metadata"]["finalizers"] == ["other"]


def test_add_finalizer_on_a_stale_version_fails() -> None:
    k, _, ex, obj = setup()
    k.edit("Canary", "mhs", lambda c: c["metadata"].update(labels={"a": "b"}))
    with pytest.raises(ApiError) as refused:  # a stale finalizer patch must not apply
        ex.run(parse_canary(obj), obj, None, (AddFinalizer(),))
    assert refused.value.status == 422  # its test of the resourceVersion failed
    assert not k.find("Canary", "mhs", "test")["metadata"].get("finalizers")


def test_scale_is_skipped_when_already_at_the_count() -> None:
    k, _, ex, obj = setup()
    target = k.find("Deployment", "mhs", "test")
    ex.run(parse_canary(obj), obj, target, (ScaleTarget(2),))
    assert k.requests == []
    ex.run(parse_canary(obj), obj, target, (ScaleTarget(0),))
    assert k.find("Deployment", "mhs", "test")["spec"]["replicas"] == 0


def test_revert_hands_the_service_back_and_routing_is_a_separate_step() -> None:
    _, kit, ex, obj = setup()
    ex.run(parse_canary(obj), obj, None, (Revert(),))
    assert kit.calls == ["revert"]
    ex.run(parse_canary(obj), obj, None, (RevertRouting(),))
    assert kit.calls == ["revert", "finalize"]


def test_notify_sends_the_message_and_survives_failures() -> None:
    _, kit, ex, obj = setup()
    sent: list[dict] = []

    def failing_hook(hook: WebhookSpec, payload: dict) -> GateResult:
        sent.append(payload)
        return GateResult(ok=False, message="503")

    kit.call_webhook = failing_hook  # type: ignore[method-assign]
    hook = WebhookSpec(name="slack", url="http://hook", type="event")
    ex.run(parse_canary(obj), obj, None, (Notify((hook,), "Progressing", "Advance weight 10"),))
    assert sent[0]["metadata"]["eventMessage"] == "Advance weight 10"


def test_promotion_copies_replicas_as_the_core_chose() -> None:
    """Whether replicas follow the template is the core's choice (an HPA exists or not): the
    executor carries it out as given."""
    _, kit, ex, obj = setup()
    seen: list[bool] = []
    kit.promote = lambda canary, client, target, with_replicas: seen.append(with_replicas)  # type: ignore[method-assign]
    target = deployment()
    ex.run(parse_canary(obj), obj, target, (PromoteTemplate(with_replicas=False),))
    ex.run(parse_canary(obj), obj, target, (PromoteTemplate(with_replicas=True),))
    assert seen == [False, True]
