"""Doctor's checks of each Canary: that it parses, what its status says, that the objects the
agent generated for it are there and its own, and that everything it references exists."""

from __future__ import annotations

from collections.abc import Iterator
from typing import TYPE_CHECKING

from kubectl_canary.api.model import MANAGED_BY_LABEL
from kubectl_canary.cli.doctor_checks import Check, Obj
from kubectl_canary.cli.doctor_checks.references import check_references
from kubectl_canary.cli.reads import GATEWAY_API, ISTIO_API
from kubectl_canary.kube import Kube
from kubectl_canary.resources import KubeError, ResourceTypeMissingError

if TYPE_CHECKING:
    from kubectl_canary.api.model import Canary


def check_canaries(
    kube: Kube, canaries: list[Obj], default_provider: str, agent_namespace: str
) -> Iterator[Check]:
    """Per Canary: its state and generated objects, then its references. An invalid Canary is
    one FAIL listing every problem (what it references is not known for sure then)."""
    from kubectl_canary.api.errors import InvalidResource
    from kubectl_canary.api.parse import parse_canary

    for obj in canaries:
        meta = obj["metadata"]
        ns, name = meta["namespace"], meta["name"]
        try:
            canary = parse_canary(obj, default_provider=default_provider)
        except InvalidResource as e:
            yield Check(
                f"canary {ns}/{name}",
                "fail",
                "invalid: " + "; ".join(str(p) for p in e.problems),
                f"fix the spec: kubectl -n {ns} edit canary {name}",
            )
            continue
        yield check_state(kube, canary, obj)
        yield check_references(kube, canary, agent_namespace)


def check_state(kube: Kube, canary: Canary, obj: Obj) -> Check:
    from kubectl_canary.objects.names import primary_name, service_names

    ns, name = canary.namespace, canary.name
    check = f"canary {ns}/{name}"
    status = obj.get("status") or {}
    phase = status.get("phase")
    if not phase:
        return Check(
            check,
            "warn",
            "no status: the agent has not picked it up",
            "is the agent running? (see the agent and leader checks)",
        )
    for cond in status.get("conditions") or []:
        if cond.get("status") == "False" and cond.get("type") != "Promoted":
            return Check(
                check,
                "fail",
                f"{cond.get('type')}: {cond.get('message')}",
                f"kubectl canary status {name} -n {ns}",
            )
    if phase == "Initializing":
        return Check(check, "ok", "initializing")
    svc, primary_svc, canary_svc = service_names(canary)
    generated = {primary_name(canary), primary_svc, canary_svc}
    wanted = [
        ("apps/v1", "Deployment", primary_name(canary)),
        ("v1", "Service", svc),
        ("v1", "Service", primary_svc),
        ("v1", "Service", canary_svc),
    ]
    if canary.spec.provider == "istio":
        wanted.append((ISTIO_API, "VirtualService", svc))
    elif canary.spec.provider == "gatewayapi":
        wanted.append((GATEWAY_API, "HTTPRoute", svc))
    missing = []
    for api_version, kind, obj_name in wanted:
        try:
            found = kube.get(api_version, kind, ns, obj_name)
        except ResourceTypeMissingError:
            found = None  # the mesh's CRDs are not installed: the object cannot exist
        except KubeError as e:
            return Check(check, "fail", f"cannot read {kind.lower()}/{obj_name}: {e}", "")
        if found is None:
            missing.append(f"{kind.lower()}/{obj_name}")
        elif obj_name in generated:
            owner = (found["metadata"].get("labels") or {}).get(MANAGED_BY_LABEL)
            if owner not in (None, name):
                missing.append(f"{kind.lower()}/{obj_name} (managed by canary {owner})")
    if missing:
        return Check(
            check,
            "fail",
            f"{phase}, missing or foreign: {', '.join(missing)}",
            "the agent recreates generated objects on its next tick; if not, see "
            f"`kubectl canary logs {name} -n {ns}`",
        )
    return Check(check, "ok", f"{phase}, objects consistent")
