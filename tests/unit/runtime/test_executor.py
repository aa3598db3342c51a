"""The action executor against the fake cluster: finalizers guarded, scaling skipped when done."""

from __future__ import annotations

import logging

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

from .fakes import FakeCluster
from .test_reconcile import FakeToolkit, canary_obj, deployment

log = logging.getLogger("test")


def setup() -> tuple[FakeCluster, FakeToolkit, Executor, dict]:
    k = FakeCluster()
    obj = k.put(canary_obj())
    k.put(deployment())
    kit = FakeToolkit()
    return k, kit, Executor(k, kit, log), obj


def test_finalizer_added_once_and_removed() -> None:
    k, _, ex, obj = setup()
    canary = parse_canary(obj)
    out = ex.run(canary, obj, None, (AddFinalizer(), AddFinalizer()))
    assert k.peek("Canary", "test", "mhs")["metadata"]["finalizers"] == [FINALIZER]
    assert (
        out.canary_obj["metadata"]["resourceVersion"]
        == k.peek("Canary", "test", "mhs")["metadata"]["resourceVersion"]
    )
    assert [v for v, _, _ in k.calls] == ["patch"]
    k.objects[("Canary", "test", "mhs")]["metadata"]["finalizers"] = ["other", FINALIZER]
    out = ex.run(canary, k.peek("Canary", "test", "mhs"), None, (RemoveFinalizer(),))
    assert k.peek("Canary", "test", "mhs")["metadata"]["finalizers"] == ["other"]


def test_add_finalizer_on_a_stale_version_fails() -> None:
    k, _, ex, obj = setup()
    k.patch_merge("x", "Canary", "test", "mhs", {"metadata": {"labels": {"a": "b"}}})
    try:
        ex.run(parse_canary(obj), obj, None, (AddFinalizer(),))
    except Exception as exc:  # noqa: BLE001
        assert "test failed" in str(exc)
    else:
        raise AssertionError("a stale finalizer patch must not apply")


def test_scale_is_skipped_when_already_at_the_count() -> None:
    k, _, ex, obj = setup()
    target = k.peek("Deployment", "test", "mhs")
    ex.run(parse_canary(obj), obj, target, (ScaleTarget(2),))
    assert k.calls == []
    ex.run(parse_canary(obj), obj, target, (ScaleTarget(0),))
    assert k.peek("Deployment", "test", "mhs")["spec"]["replicas"] == 0


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
