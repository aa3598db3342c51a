"""Reading a Canary and the objects it owns, as the plugin's commands need them: one clear error
line for a missing or invalid Canary, None for a missing object."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from kubectl_canary.cli.api_names import CANARY_API_VERSION as API_VERSION
from kubectl_canary.cli.errors import CliError
from kubectl_canary.kube import Kube

if TYPE_CHECKING:  # the typed model loads only when a command parses a Canary
    from kubectl_canary.api.model import Canary

Obj = dict[str, Any]

ISTIO_API = "networking.istio.io/v1beta1"
GATEWAY_API = "gateway.networking.k8s.io/v1"


def get_canary(kube: Kube, namespace: str, name: str) -> Obj:
    obj = kube.get(API_VERSION, "Canary", namespace, name)
    if obj is None:
        raise CliError(f'canary "{name}" not found in namespace "{namespace}"')
    return obj


def parse(obj: Obj) -> Canary:
    """The typed Canary; an invalid spec is a one-line error naming the first problem."""
    from kubectl_canary.api.errors import InvalidResource
    from kubectl_canary.api.parse import parse_canary

    try:
        return parse_canary(obj)
    except InvalidResource as e:
        first = e.problems[0] if e.problems else "invalid"
        more = f" (and {len(e.problems) - 1} more)" if len(e.problems) > 1 else ""
        name = obj.get("metadata", {}).get("name", "?")
        raise CliError(f"canary {name} is invalid: {first}{more}") from None
