"""Small helpers over API objects as plain dicts: identity, ownership, selectors, times."""

from __future__ import annotations

import time
from typing import Any

Obj = dict[str, Any]
KindKey = tuple[str, str]  # (group, kind)

DEPLOYMENT: KindKey = ("apps", "Deployment")
REPLICASET: KindKey = ("apps", "ReplicaSet")
POD: KindKey = ("", "Pod")
SERVICE: KindKey = ("", "Service")
ENDPOINTS: KindKey = ("", "Endpoints")
ENDPOINT_SLICE: KindKey = ("discovery.k8s.io", "EndpointSlice")
CONFIG_MAP: KindKey = ("", "ConfigMap")
VIRTUAL_SERVICE: KindKey = ("networking.istio.io", "VirtualService")
HTTP_ROUTE: KindKey = ("gateway.networking.k8s.io", "HTTPRoute")

API_VERSIONS: dict[KindKey, tuple[str, ...]] = {
    DEPLOYMENT: ("apps/v1",),
    REPLICASET: ("apps/v1",),
    POD: ("v1",),
    SERVICE: ("v1",),
    ENDPOINTS: ("v1",),
    ENDPOINT_SLICE: ("discovery.k8s.io/v1",),
    CONFIG_MAP: ("v1",),
    # CRDs: whichever served version the installed manifest offers.
    VIRTUAL_SERVICE: (
        "networking.istio.io/v1",
        "networking.istio.io/v1beta1",
        "networking.istio.io/v1alpha3",
    ),
    HTTP_ROUTE: ("gateway.networking.k8s.io/v1", "gateway.networking.k8s.io/v1beta1"),
}


def kind_key(obj: Obj) -> KindKey:
    api_version = str(obj.get("apiVersion", ""))
    group = api_version.rsplit("/", 1)[0] if "/" in api_version else ""
    return group, str(obj.get("kind", ""))


def meta(obj: Obj) -> dict[str, Any]:
    value = obj.get("metadata")
    return value if isinstance(value, dict) else {}


def name_of(obj: Obj) -> str:
    return str(meta(obj).get("name", ""))


def namespace_of(obj: Obj) -> str:
    return str(meta(obj).get("namespace", ""))


def uid_of(obj: Obj) -> str:
    return str(meta(obj).get("uid", ""))


def labels_of(obj: Obj) -> dict[str, str]:
    return meta(obj).get("labels") or {}


def resource_version(obj: Obj) -> int:
    try:
        return int(meta(obj).get("resourceVersion", 0))
    except (TypeError, ValueError):
        return 0


def is_terminating(obj: Obj) -> bool:
    return bool(meta(obj).get("deletionTimestamp"))


def controller_ref(obj: Obj) -> dict[str, Any] | None:
    refs: list[dict[str, Any]] = meta(obj).get("ownerReferences") or []
    return next((ref for ref in refs if ref.get("controller")), None)


def owner_reference(owner: Obj) -> dict[str, Any]:
    return {
        "apiVersion": owner.get("apiVersion", ""),
        "kind": owner.get("kind", ""),
        "name": name_of(owner),
        "uid": uid_of(owner),
        "controller": True,
        "blockOwnerDeletion": True,
    }


def condition(status: dict[str, Any] | None, kind: str) -> dict[str, Any] | None:
    conditions: list[dict[str, Any]] = (status or {}).get("conditions") or []
    return next((item for item in conditions if item.get("type") == kind), None)


def is_pod_ready(pod: Obj) -> bool:
    ready = condition(pod.get("status"), "Ready")
    return ready is not None and ready.get("status") == "True" and not is_terminating(pod)


def rfc3339(epoch_seconds: float | None = None) -> str:
    return time.strftime(
        "%Y-%m-%dT%H:%M:%SZ", time.gmtime(time.time() if epoch_seconds is None else epoch_seconds)
    )
