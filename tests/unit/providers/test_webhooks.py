"""call_webhook against a local HTTP server: payload, 2xx success, failures with reasons."""

from __future__ import annotations

import json
import socket

from agent.core.types import GateResult
from agent.webhooks import call_webhook, webhook_payload
from kubectl_canary.api.model import (
    Canary,
    CanarySpec,
    CanaryStatus,
    ServiceSpec,
    TargetRef,
    WebhookSpec,
)
from kubectl_canary.egress.policy import EgressPolicy

from .conftest import Answer, HttpStub


def hook(url: str, timeout: float = 5.0) -> WebhookSpec:
    return WebhookSpec(
        name="load-test",
        url=url,
        type="pre-rollout",
        timeout_seconds=timeout,
        metadata={"cmd": "hey -z 1m http://podinfo-canary:9898/"},
    )


# The stubs listen on loopback, which the default policy refuses: these tests allow it.
LOOPBACK = EgressPolicy.build(["http://127.0.0.1"])


def call(spec: WebhookSpec, payload: dict[str, object]) -> GateResult:
    """call_webhook with an egress policy admitting the loopback stubs."""
    stub_policy = EgressPolicy.build([spec.url]) if spec.url.startswith("http") else LOOPBACK
    return call_webhook(spec, payload, stub_policy)


def test_payload_has_flagger_shape() -> None:
    canary = Canary(
        namespace="test",
        name="podinfo",
        spec=CanarySpec(target_ref=TargetRef("podinfo"), service=ServiceSpec(port=9898)),
        status=CanaryStatus(last_applied_spec="abc123"),
    )

    payload = webhook_payload(canary, hook("http://x"), "Progressing")

    assert payload == {
        "name": "podinfo",
        "namespace": "test",
        "phase": "Progressing",
        "checksum": "abc123",
        "metadata": {"cmd": "hey -z 1m http://podinfo-canary:9898/"},
    }


def test_2xx_is_ok_and_the_payload_is_posted_as_json(http_stub: HttpStub) -> None:
    http_stub.respond = lambda _: Answer(status=202, body=b"accepted")
    payload = {
        "name": "podinfo",
        "namespace": "test",
        "phase": "Progressing",
        "checksum": "c",
        "metadata": {},
    }

    result = call(hook(http_stub.url + "/gate/check"), payload)

    assert result == GateResult(ok=True, message="webhook load-test returned HTTP 202")
    request = http_stub.received[0]
    assert (request.method, request.path) == ("POST", "/gate/check")
    assert request.headers["Content-Type"] == "application/json"
    assert json.loads(request.body) == payload


def test_non_2xx_is_not_ok_with_status_and_body_excerpt(http_stub: HttpStub) -> None:
    http_stub.respond = lambda _: Answer(status=403, body=b"approval pending\n" + b"x" * 1000)

    result = call(hook(http_stub.url), {})

    # The status and the size, never the body: the URL is the tenant's, its page is not.
    assert result == GateResult(
        ok=False, message="webhook load-test returned HTTP 403 (1017 bytes)"
    )


def test_server_error_without_body(http_stub: HttpStub) -> None:
    http_stub.respond = lambda _: Answer(status=500)

    assert call(hook(http_stub.url), {}) == GateResult(
        ok=False, message="webhook load-test returned HTTP 500 (0 bytes)"
    )


def test_timeout_is_not_ok(http_stub: HttpStub) -> None:
    http_stub.respond = lambda _: Answer(hold=True)

    result = call(hook(http_stub.url, timeout=0.3), {})

    assert not result.ok and result.message.startswith("webhook load-test failed:")
    assert "no complete answer within 0.3s" in result.message


def test_connection_refused_is_not_ok() -> None:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]

    result = call(hook(f"http://127.0.0.1:{port}/"), {})

    assert not result.ok and result.message.startswith("webhook load-test failed:")


def test_malformed_url_is_not_ok() -> None:
    result = call(hook("not a url"), {})

    assert not result.ok and result.message.startswith("webhook load-test refused:")
