"""The objects generated for a Canary, as pure functions of the target and the Canary
(DESIGN §4 Initialise / Promote): the primary Deployment, its ConfigMap/Secret copies, the
three Services, the primary's HPA copy; and the templates moved between target and primary.
Routing objects are built by their routers (`routers/`)."""

from __future__ import annotations

import copy
from collections.abc import Collection, Mapping

from kubectl_canary.api.config_refs import handed_back_template, to_primary_copies
from kubectl_canary.api.model import (
    API_VERSION,
    GROUP,
    MANAGED_BY_LABEL,
    SHARED_POD_LABEL,
    Canary,
    ObjectMetadata,
)
from kubectl_canary.objects.gitops import untracked
from kubectl_canary.objects.hashes import DATA_FIELDS
from kubectl_canary.objects.metadata import generated_metadata
from kubectl_canary.objects.names import (
    config_copy_name,
    primary_hpa_name,
    primary_label_value,
    primary_name,
    service_name,
    service_names,
)
from kubectl_canary.objects.selectors import primary_selector, selector_label, target_selector
from kubectl_canary.resources import Obj

HPA_API = "autoscaling/v2"
_COPIED_ANNOTATIONS_SKIP = (
    "deployment.kubernetes.io/revision",
    "kubectl.kubernetes.io/last-applied-configuration",
)


# ----- the primary Deployment -----


def _primary_template(template: Obj, target: Obj) -> Obj:
    """The target's pod template with the selector label rewritten to the primary's value and
    its ConfigMap/Secret references pointing at the primary's copies."""
    key, value = selector_label(target)
    result = to_primary_copies(template)
    labels = result.setdefault("metadata", {}).setdefault("labels", {})
    labels[key] = primary_label_value(value)
    labels[SHARED_POD_LABEL] = value
    return result


def primary_deployment(
    target: Obj,
    canary: Canary,
    replicas: int | None = None,
    no_copy: Collection[str] = (),
) -> Obj:
    """A copy of the target Deployment named `names.primary_name`, selecting its own pods.

    `replicas` overrides the count (the HPA's minimum when there is one); otherwise the target's,
    or 1 when the target is scaled to zero, as Flagger does (never create an empty primary).
    Write it with `ensure(client, obj, create_only=("replicas",))`: once created, the primary's
    replica count belongs to its HPA or to promotion, not to every tick. The target's labels
    and annotations are copied except GitOps/Helm tracking keys (and `no_copy`), so no such
    tool takes the primary for its own and prunes it.
    """
    spec = copy.deepcopy(target["spec"])
    spec["selector"] = {"matchLabels": primary_selector(target)}
    spec["template"] = _primary_template(target["spec"]["template"], target)
    target_replicas = int(target["spec"].get("replicas") or 0)
    spec["replicas"] = replicas if replicas is not None else max(target_replicas, 1)
    source = target.get("metadata", {})
    labels = untracked(source.get("labels") or {}, no_copy)
    meta = generated_metadata(canary, primary_name(canary), labels=labels)
    annotations = {
        k: v
        for k, v in untracked(source.get("annotations") or {}, no_copy).items()
        if k not in _COPIED_ANNOTATIONS_SKIP and not k.startswith(GROUP + "/")
    }
    if annotations:
        meta["annotations"] = annotations
    return {"apiVersion": "apps/v1", "kind": "Deployment", "metadata": meta, "spec": spec}


def promote_template(primary: Obj, target: Obj, with_replicas: bool) -> Obj:
    """The live primary with the target's pod template (and rollout settings) copied in.

    Replicas are copied only `with_replicas` (no HPA) and when the target has some: an HPA, or
    the primary's own count, decides otherwise. The result keeps the primary's
    resourceVersion, so `client.replace` of it is guarded; see `primary.apply_promotion`.
    """
    result = copy.deepcopy(primary)
    spec = result["spec"]
    source = target["spec"]
    spec["template"] = _primary_template(source["template"], target)
    for key in ("strategy", "minReadySeconds", "revisionHistoryLimit", "progressDeadlineSeconds"):
        if key in source:
            spec[key] = copy.deepcopy(source[key])
    if with_replicas and int(source.get("replicas") or 0) > 0:
        spec["replicas"] = int(source["replicas"])
    return result


def restored_target(target: Obj, primary: Obj, scale_up: bool = False) -> Obj:
    """The live target with the primary's pod template (its last promoted revision) copied back:
    the inverse of `_primary_template`, references to the config copies included. The shared
    pod label stays only if the target carries it (the kubernetes router put it there). Keeps
    the target's resourceVersion. `scale_up`: a target at 0 replicas (parked between
    releases) gets `handed_back_replicas`."""
    result = copy.deepcopy(target)
    result["spec"]["template"] = handed_back_template(primary, target)
    if scale_up and int(target["spec"].get("replicas") or 0) == 0:
        result["spec"]["replicas"] = handed_back_replicas(primary)
    return result


def handed_back_replicas(primary: Obj | None) -> int:
    """The replicas a target parked at zero gets back: the primary's count, at least one."""
    return max(int(((primary or {}).get("spec") or {}).get("replicas") or 0), 1)


# ----- the primary's ConfigMap/Secret copies -----


def primary_config_copy(obj: Obj, canary: Canary, no_copy: Collection[str] = ()) -> Obj:
    """A copy of a ConfigMap or Secret named `names.config_copy_name`, owned by the Canary.

    The primary's pod template references these copies (`_primary_template`), so a change of
    a tracked config reaches the primary's pods only when it is promoted (as Flagger does),
    and a rollback keeps the last promoted data. Same data, binaryData, type (Secrets) and
    immutable flag; the source's labels but its GitOps/Helm tracking ones and `no_copy` (not its
    annotations: kubectl's last-applied would describe another object).
    """
    meta = obj.get("metadata", {})
    labels = untracked(meta.get("labels") or {}, no_copy)
    result: Obj = {
        "apiVersion": "v1",
        "kind": obj["kind"],
        "metadata": generated_metadata(canary, config_copy_name(meta["name"]), labels=labels),
    }
    for key in DATA_FIELDS:
        if key in obj:
            result[key] = copy.deepcopy(obj[key])
    return result


# ----- Services -----


def _service(canary: Canary, name: str, selector: Mapping[str, str], meta: ObjectMetadata) -> Obj:
    svc = canary.spec.service
    port: Obj = {
        "name": svc.port_name,
        "port": svc.port,
        "targetPort": svc.target_port if svc.target_port is not None else svc.port,
        "protocol": "TCP",
    }
    if svc.app_protocol:
        port["appProtocol"] = svc.app_protocol
    return {
        "apiVersion": "v1",
        "kind": "Service",
        "metadata": generated_metadata(canary, name, meta),
        "spec": {"type": "ClusterIP", "selector": dict(selector), "ports": [port]},
    }


def apex_service(target: Obj, canary: Canary, selector: Mapping[str, str] | None = None) -> Obj:
    """The Service clients call; selects the primary's pods unless `selector` says otherwise."""
    chosen = primary_selector(target) if selector is None else selector
    return _service(canary, service_name(canary), chosen, canary.spec.service.apex)


def primary_service(target: Obj, canary: Canary) -> Obj:
    _, name, _ = service_names(canary)
    return _service(canary, name, primary_selector(target), canary.spec.service.primary)


def canary_service(target: Obj, canary: Canary) -> Obj:
    _, _, name = service_names(canary)
    return _service(canary, name, target_selector(target), canary.spec.service.canary)


def services(target: Obj, canary: Canary) -> list[Obj]:
    """The Services to `ensure(..., detect_drift=True)` on Initialise.

    With the `kubernetes` provider the apex Service IS the routing object: its router creates
    and steers it (its selector moves with the weights), so it is not in this list.
    """
    result = [primary_service(target, canary), canary_service(target, canary)]
    if canary.spec.provider != "kubernetes":
        result.insert(0, apex_service(target, canary))
    return result


# ----- the primary's HorizontalPodAutoscaler -----


def primary_hpa(canary: Canary, hpa: Obj) -> Obj:
    """A copy of the target's HPA aimed at the primary (Flagger's behaviour: the user's HPA
    keeps scaling the target, this copy the primary, so both sides autoscale independently)."""
    meta = hpa.get("metadata") or {}
    spec = copy.deepcopy(hpa.get("spec") or {})
    ref = dict(spec.get("scaleTargetRef") or {})
    ref["name"] = primary_name(canary)
    spec["scaleTargetRef"] = ref
    return {
        "apiVersion": HPA_API,
        "kind": "HorizontalPodAutoscaler",
        "metadata": {
            "name": primary_hpa_name(meta.get("name", "")),
            "namespace": canary.namespace,
            "labels": {MANAGED_BY_LABEL: canary.name},
            "ownerReferences": [
                {
                    "apiVersion": API_VERSION,
                    "kind": "Canary",
                    "name": canary.name,
                    "uid": canary.uid,
                    "controller": True,
                }
            ],
        },
        "spec": spec,
    }
