"""Calling a Canary's webhooks: POST a JSON payload, success is any 2xx status.

The payload keeps Flagger's shape (`name`, `namespace`, `phase`, `checksum`, `metadata`) so
existing gates (load testers, approval services) work unchanged. The call goes through the
egress policy and is bounded by the webhook's `timeout` as one deadline for the whole exchange.
It never raises: what went wrong is in GateResult.message, which the core puts in events and
status, so it names the status code and the answer's size, never the answer itself (the URL is
the tenant's choice, and so is whatever page answers it).
"""

from __future__ import annotations

import json
from typing import Any

from agent.core.types import GateResult
from kubectl_canary.api.model import Canary, WebhookSpec
from kubectl_canary.egress import bounded
from kubectl_canary.egress.policy import EgressError, EgressPolicy

# Gates answer with a status; a short JSON or text body is all they need.
MAX_ANSWER_BYTES = 64 << 10


def webhook_payload(canary: Canary, spec: WebhookSpec, phase: str) -> dict[str, Any]:
    """The JSON body for `spec` at `phase`; checksum is the revision under analysis."""
    return {
        "name": canary.name,
        "namespace": canary.namespace,
        "phase": phase,
        "checksum": canary.status.last_applied_spec,
        "metadata": dict(spec.metadata),
    }


def call_webhook(spec: WebhookSpec, payload: dict[str, Any], policy: EgressPolicy) -> GateResult:
    try:
        reply = bounded.request(
            policy,
            "POST",
            spec.url,
            deadline_seconds=spec.timeout_seconds,
            max_bytes=MAX_ANSWER_BYTES,
            body=json.dumps(payload).encode(),
            headers={"Content-Type": "application/json"},
        )
    except EgressError as exc:
        return GateResult(ok=False, message=f"webhook {spec.name} refused: {exc}")
    except bounded.CallError as exc:
        return GateResult(ok=False, message=f"webhook {spec.name} failed: {exc}")
    said = f"webhook {spec.name} returned HTTP {reply.status}"
    if 200 <= reply.status < 300:
        return GateResult(ok=True, message=said)
    # Redirects are not followed: a gate answering 3xx did not say yes.
    return GateResult(ok=False, message=f"{said} ({bounded.size_text(len(reply.body))})")
