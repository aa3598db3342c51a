"""The resource types the sandbox serves: built-in kinds plus those CRDs register.

A `ResourceType` is everything discovery, routing and the store need to know about one kind.
Objects are stored per (group, kind), so a CRD served under several versions (Istio's
VirtualService: v1, v1beta1, v1alpha3) has one set of objects, as on a real server where
versions differ only in their schema ("None" conversion strategy).
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any

ALL_VERBS = ("create", "delete", "deletecollection", "get", "list", "patch", "update", "watch")


@dataclass(frozen=True)
class ScalePaths:
    """Where a kind keeps the numbers the `scale` subresource exposes (dotted JSON paths)."""

    spec_replicas: str = "spec.replicas"
    status_replicas: str = "status.replicas"
    label_selector: str | None = "status.selector"


@dataclass(frozen=True)
class ResourceType:
    group: str
    versions: tuple[str, ...]  # served versions, preferred first
    kind: str
    plural: str
    singular: str
    namespaced: bool
    short_names: tuple[str, ...] = ()
    categories: tuple[str, ...] = ()
    has_status: bool = False
    scale: ScalePaths | None = None
    verbs: tuple[str, ...] = ALL_VERBS
    # Per version: the CRD's openAPIV3Schema (None for built-ins: no schema validation).
    schemas: dict[str, Any] = field(default_factory=dict)
    # Per version: the CRD's additionalPrinterColumns.
    printer_columns: dict[str, list[dict[str, Any]]] = field(default_factory=dict)
    crd_name: str | None = None

    @property
    def key(self) -> tuple[str, str]:
        return (self.group, self.kind)

    @property
    def storage_version(self) -> str:
        return self.versions[0]

    def api_version(self, version: str | None = None) -> str:
        v = version or self.storage_version
        return f"{self.group}/{v}" if self.group else v

    @property
    def list_kind(self) -> str:
        return f"{self.kind}List"


def split_api_version(api_version: str) -> tuple[str, str]:
    """'apps/v1' -> ('apps', 'v1'); 'v1' -> ('', 'v1')."""
    if "/" in api_version:
        group, version = api_version.split("/", 1)
        return group, version
    return "", api_version


def version_priority(version: str) -> tuple[int, int, int, str]:
    """Sort key putting GA before beta before alpha, higher numbers first (v2 > v1 > v1beta2)."""
    m = re.fullmatch(r"v(\d+)(?:(alpha|beta)(\d+))?", version)
    if m is None:
        return (3, 0, 0, version)  # non-Kubernetes-style names sort last, alphabetically
    level = {None: 0, "beta": 1, "alpha": 2}[m.group(2)]
    return (level, -int(m.group(1)), -int(m.group(3) or 0), version)


_WORKLOAD_SCALE = ScalePaths(label_selector=None)  # selector derived from spec.selector


def _t(
    group: str,
    version: str,
    kind: str,
    plural: str,
    namespaced: bool = True,
    short: tuple[str, ...] = (),
    categories: tuple[str, ...] = (),
    status: bool = False,
    scale: ScalePaths | None = None,
    verbs: tuple[str, ...] = ALL_VERBS,
) -> ResourceType:
    return ResourceType(
        group=group,
        versions=(version,),
        kind=kind,
        plural=plural,
        singular=kind.lower(),
        namespaced=namespaced,
        short_names=short,
        categories=categories,
        has_status=status,
        scale=scale,
        verbs=verbs,
    )


BUILTIN_TYPES: tuple[ResourceType, ...] = (
    _t("", "v1", "Namespace", "namespaces", False, ("ns",), status=True),
    _t("", "v1", "Pod", "pods", short=("po",), categories=("all",), status=True),
    _t("", "v1", "Service", "services", short=("svc",), categories=("all",), status=True),
    _t("", "v1", "Endpoints", "endpoints", short=("ep",)),
    _t("", "v1", "ConfigMap", "configmaps", short=("cm",)),
    _t("", "v1", "Secret", "secrets"),
    _t("", "v1", "ServiceAccount", "serviceaccounts", short=("sa",)),
    _t("", "v1", "Event", "events", short=("ev",)),
    _t("events.k8s.io", "v1", "Event", "events", short=("ev",)),
    _t(
        "apps",
        "v1",
        "Deployment",
        "deployments",
        short=("deploy",),
        categories=("all",),
        status=True,
        scale=_WORKLOAD_SCALE,
    ),
    _t(
        "apps",
        "v1",
        "ReplicaSet",
        "replicasets",
        short=("rs",),
        categories=("all",),
        status=True,
        scale=_WORKLOAD_SCALE,
    ),
    _t(
        "autoscaling",
        "v2",
        "HorizontalPodAutoscaler",
        "horizontalpodautoscalers",
        short=("hpa",),
        categories=("all",),
        status=True,
    ),
    _t("coordination.k8s.io", "v1", "Lease", "leases"),
    _t("discovery.k8s.io", "v1", "EndpointSlice", "endpointslices"),
    # Stored only (no pods are simulated against them): init applies them to the agent.
    _t("networking.k8s.io", "v1", "NetworkPolicy", "networkpolicies", short=("netpol",)),
    _t("policy", "v1", "PodDisruptionBudget", "poddisruptionbudgets", short=("pdb",), status=True),
    _t("rbac.authorization.k8s.io", "v1", "Role", "roles"),
    _t("rbac.authorization.k8s.io", "v1", "RoleBinding", "rolebindings"),
    _t("rbac.authorization.k8s.io", "v1", "ClusterRole", "clusterroles", False),
    _t("rbac.authorization.k8s.io", "v1", "ClusterRoleBinding", "clusterrolebindings", False),
    _t(
        "apiextensions.k8s.io",
        "v1",
        "CustomResourceDefinition",
        "customresourcedefinitions",
        False,
        ("crd", "crds"),
        categories=("api-extensions",),
        status=True,
    ),
    _t(
        "authorization.k8s.io",
        "v1",
        "SelfSubjectAccessReview",
        "selfsubjectaccessreviews",
        False,
        verbs=("create",),
    ),
)

# Kinds the store keeps no objects of: a create is answered and forgotten.
VIRTUAL_KINDS = {("authorization.k8s.io", "SelfSubjectAccessReview")}


def crd_to_types(crd: dict[str, Any]) -> ResourceType:
    """Build the served type of a CustomResourceDefinition (apiextensions.k8s.io/v1)."""
    spec = crd["spec"]
    names = spec["names"]
    served = [v for v in spec["versions"] if v.get("served", True)] or list(spec["versions"])
    # Preferred version first, by Kubernetes' version priority (v1 > v1beta1 > v1alpha3):
    # discovery lists versions in that order and kubectl uses the first one.
    served.sort(key=lambda v: version_priority(v["name"]))
    subresources = served[0].get("subresources") or {}
    scale_spec = subresources.get("scale")
    scale = None
    if scale_spec is not None:
        scale = ScalePaths(
            spec_replicas=scale_spec["specReplicasPath"].lstrip("."),
            status_replicas=scale_spec["statusReplicasPath"].lstrip("."),
            label_selector=(scale_spec.get("labelSelectorPath") or "").lstrip(".") or None,
        )
    return ResourceType(
        group=spec["group"],
        versions=tuple(v["name"] for v in served),
        kind=names["kind"],
        plural=names["plural"],
        singular=names.get("singular") or names["kind"].lower(),
        namespaced=spec.get("scope", "Namespaced") == "Namespaced",
        short_names=tuple(names.get("shortNames") or ()),
        categories=tuple(names.get("categories") or ()),
        has_status="status" in subresources,
        scale=scale,
        schemas={v["name"]: (v.get("schema") or {}).get("openAPIV3Schema") or {} for v in served},
        printer_columns={v["name"]: list(v.get("additionalPrinterColumns") or []) for v in served},
        crd_name=crd["metadata"]["name"],
    )
