"""Doctor's check that every object a Canary names exists: its target, its autoscaler, the
metric templates of its analysis and the Secrets their providers use, its Istio gateways and
Gateway API parents. The agent reports a missing one only when a tick needs it (a release may
be days away), so doctor is where a typo in a name shows up first.

A Secret is only checked for existence, and reading one may be forbidden to the person running
doctor: that is "cannot check", a warning, not a missing reference.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from typing import TYPE_CHECKING

from kubectl_canary.cli.api_names import CANARY_API_VERSION
from kubectl_canary.cli.doctor_checks import Check, Obj
from kubectl_canary.cli.reads import GATEWAY_API, ISTIO_API
from kubectl_canary.kube import Kube
from kubectl_canary.resources import ForbiddenError, KubeError, ResourceTypeMissingError

if TYPE_CHECKING:
    from kubectl_canary.api.model import Canary

# Istio's name for the sidecars of the mesh: a gateway every VirtualService may use, no object.
ISTIO_MESH_GATEWAY = "mesh"


@dataclass(frozen=True)
class Reference:
    """One object a Canary depends on, and the field that names it."""

    field: str
    api_version: str
    kind: str
    namespace: str  # "" for a cluster-scoped kind
    name: str

    def shown(self, home: str, with_field: bool = True) -> str:
        """`deployment/mhs (spec.targetRef)`, with the namespace when it is not the Canary's
        (`home`)."""
        where = f"{self.namespace}/" if self.namespace and self.namespace != home else ""
        field = f" ({self.field})" if with_field else ""
        return f"{self.kind.lower()}/{where}{self.name}{field}"


def direct_references(canary: Canary) -> Iterator[Reference]:
    """The objects the Canary's spec names itself (the templates' Secrets come from the
    templates)."""
    ns, spec = canary.namespace, canary.spec
    target = spec.target_ref
    yield Reference("spec.targetRef", target.api_version, target.kind, ns, target.name)
    if spec.autoscaler_ref is not None:
        hpa = spec.autoscaler_ref
        yield Reference("spec.autoscalerRef", hpa.api_version, hpa.kind, ns, hpa.name)
    for i, metric in enumerate(spec.analysis.metrics):
        ref = metric.template_ref
        if ref is None:
            continue
        cluster_scoped = ref.kind == "ClusterMetricTemplate"
        yield Reference(
            f"spec.analysis.metrics[{i}].templateRef",
            CANARY_API_VERSION,
            ref.kind,
            "" if cluster_scoped else ref.namespace or ns,
            ref.name,
        )
    for i, gateway in enumerate(spec.service.gateways):
        if gateway == ISTIO_MESH_GATEWAY:
            continue
        gw_ns, _, gw_name = gateway.rpartition("/")
        yield Reference(f"spec.service.gateways[{i}]", ISTIO_API, "Gateway", gw_ns or ns, gw_name)
    for i, parent in enumerate(spec.service.gateway_refs):
        yield Reference(
            f"spec.service.gatewayRefs[{i}]",
            GATEWAY_API,
            "Gateway",
            parent.namespace or ns,
            parent.name,
        )


def secret_reference(template: Obj, field: str, agent_namespace: str) -> Reference | None:
    """The Secret a metric template's provider reads, if it names one. A ClusterMetricTemplate's
    Secret lives in the agent's namespace (docs/security.md, "Credentials")."""
    provider = (template.get("spec") or {}).get("provider") or {}
    secret = (provider.get("secretRef") or {}).get("name")
    if not isinstance(secret, str) or not secret:
        return None
    ns = (template.get("metadata") or {}).get("namespace") or agent_namespace
    return Reference(f"{field} provider.secretRef", "v1", "Secret", ns, secret)


@dataclass
class _Findings:
    present: list[str]
    missing: list[str]
    unchecked: list[str]


def _look_up(kube: Kube, ref: Reference, home: str, found: _Findings) -> Obj | None:
    try:
        obj = kube.get(ref.api_version, ref.kind, ref.namespace, ref.name)
    except ResourceTypeMissingError:
        found.missing.append(f"{ref.shown(home)}: the server does not serve {ref.kind}")
        return None
    except ForbiddenError:
        found.unchecked.append(f"{ref.shown(home)}: cannot check (forbidden)")
        return None
    except KubeError as e:
        found.unchecked.append(f"{ref.shown(home)}: cannot check ({e})")
        return None
    if obj is None:
        found.missing.append(ref.shown(home))
    else:
        found.present.append(ref.shown(home, with_field=False))
    return obj


def check_references(kube: Kube, canary: Canary, agent_namespace: str) -> Check:
    ns, name = canary.namespace, canary.name
    found = _Findings([], [], [])
    for ref in direct_references(canary):
        obj = _look_up(kube, ref, ns, found)
        if obj is not None and ref.kind.endswith("MetricTemplate"):
            secret = secret_reference(obj, ref.field, agent_namespace)
            if secret is not None:
                _look_up(kube, secret, ns, found)
    check = f"canary {ns}/{name} references"
    if found.missing:
        return Check(
            check,
            "fail",
            "missing: " + "; ".join(found.missing + found.unchecked),
            f"create them, or fix the names: kubectl -n {ns} edit canary {name}",
        )
    if found.unchecked:
        return Check(
            check,
            "warn",
            "; ".join(found.unchecked),
            f"someone who may read them can check: kubectl -n {ns} get canary {name} -o yaml",
        )
    return Check(check, "ok", "present: " + ", ".join(found.present))
