"""Calling a Canary's webhooks: POST a JSON payload, success is any 2xx status.

The payload keeps Flagger's shape (`name`, `namespace`, `phase`, `checksum`, `metadata`) so
existing gates (load testers, approval services) work unchanged. The call never raises: what
went wrong is in GateResult.message, which the core puts in events and status.
"""

from __future__ import annotations

import http.client
import json
import urllib.error
import urllib.request
from typing import Any

from agent.core.types import GateResult
from kubectl_canary.api.model import Canary, WebhookSpec

_EXCERPT = 200


def webhook_payload(canary: Canary, spec: WebhookSpec, phase: str) -> dict[str, Any]:
    """The JSON body for `spec` at `phase`; checksum is the revision under analysis."""
    return {
        "name": canary.name,
        "namespace": canary.namespace,
        "phase": phase,
        "checksum": canary.status.last_applied_spec,
        "metadata": dict(spec.metadata),
    }


def _excerpt(raw: bytes) -> str:
    text = raw.decode(errors="replace").strip().replace("\n", " ")
    return text[:_EXCERPT] + ("…" if len(text) > _EXCERPT else "")


def call_webhook(spec: WebhookSpec, payload: dict[str, Any]) -> GateResult:
    body = json.dumps(payload).encode()
    try:
        request = urllib.request.Request(
            spec.url, data=body, method="POST", headers={"Content-Type": "application/json"}
        )
        with urllib.request.urlopen(request, timeout=spec.timeout_seconds) as response:
            status, raw = response.status, response.read()
    except urllib.error.HTTPError as error:
        detail = _excerpt(error.read() or b"")
        message = f"webhook {spec.name} returned HTTP {error.code}"
        return GateResult(ok=False, message=f"{message}: {detail}" if detail else message)
    except (urllib.error.URLError, http.client.HTTPException, OSError, ValueError) as error:
        # ValueError: a malformed URL; OSError covers timeouts and refused connections.
        reason = getattr(error, "reason", error)
        return GateResult(ok=False, message=f"webhook {spec.name} failed: {reason}")
    if 200 <= status < 300:
        return GateResult(ok=True, message=f"webhook {spec.name} returned HTTP {status}")
    # urllib raises for >= 400 only; a 1xx/3xx that reaches us is not a success either.
    detail = _excerpt(raw)
    message = f"webhook {spec.name} returned HTTP {status}"
    return GateResult(ok=False, message=f"{message}: {detail}" if detail else message)
