"""Defaults and the few validations a real API server applies to built-in kinds.

Only what controllers and clients visibly depend on: Deployment replicas/strategy, Service
ports and cluster IP, Namespace phase, Deployment selector/template agreement.
"""

from __future__ import annotations

import ipaddress
import itertools
from typing import Any

from .errors import Cause
from .metadata import label_causes
from .selectors import labels_match, selector_from_label_selector_object

_cluster_ips = itertools.count(10)
_SERVICE_NET = ipaddress.ip_network("10.96.0.0/16")


def _next_cluster_ip() -> str:
    return str(_SERVICE_NET[next(_cluster_ips) % (_SERVICE_NET.num_addresses - 2) + 1])


def _default_pod_spec(spec: dict[str, Any]) -> None:
    spec.setdefault("restartPolicy", "Always")
    spec.setdefault("dnsPolicy", "ClusterFirst")
    spec.setdefault("terminationGracePeriodSeconds", 30)
    spec.setdefault("schedulerName", "default-scheduler")
    spec.setdefault("securityContext", {})
    for c in (spec.get("containers") or []) + (spec.get("initContainers") or []):
        if isinstance(c, dict):
            image = str(c.get("image", ""))
            latest = ":" not in image.rsplit("/", 1)[-1] or image.endswith(":latest")
            c.setdefault("imagePullPolicy", "Always" if latest else "IfNotPresent")
            c.setdefault("terminationMessagePath", "/dev/termination-log")
            c.setdefault("terminationMessagePolicy", "File")
            c.setdefault("resources", {})
            for p in c.get("ports") or []:
                if isinstance(p, dict):
                    p.setdefault("protocol", "TCP")


def apply_defaults(
    kind_key: tuple[str, str],
    obj: dict[str, Any],
    creating: bool,
    old: dict[str, Any] | None = None,
) -> None:
    spec = obj.get("spec")
    if kind_key == ("", "Namespace"):
        meta = obj["metadata"]
        meta.setdefault("labels", {})["kubernetes.io/metadata.name"] = meta["name"]
        obj.setdefault("spec", {}).setdefault("finalizers", ["kubernetes"])
        obj.setdefault("status", {}).setdefault("phase", "Active")
    elif kind_key in (("apps", "Deployment"), ("apps", "ReplicaSet")) and isinstance(spec, dict):
        spec.setdefault("replicas", 1)
        spec.setdefault("revisionHistoryLimit", 10)
        if kind_key[1] == "Deployment":
            spec.setdefault("progressDeadlineSeconds", 600)
            strategy = spec.setdefault("strategy", {"type": "RollingUpdate"})
            if strategy.get("type", "RollingUpdate") == "RollingUpdate":
                strategy.setdefault("type", "RollingUpdate")
                ru = strategy.setdefault("rollingUpdate", {})
                ru.setdefault("maxSurge", "25%")
                ru.setdefault("maxUnavailable", "25%")
        template = spec.get("template")
        if isinstance(template, dict) and isinstance(template.get("spec"), dict):
            _default_pod_spec(template["spec"])
    elif kind_key == ("", "Pod") and isinstance(spec, dict):
        _default_pod_spec(spec)
        if creating:
            obj.setdefault("status", {}).setdefault("phase", "Pending")
    elif kind_key == ("", "Service") and isinstance(spec, dict):
        spec.setdefault("type", "ClusterIP")
        spec.setdefault("sessionAffinity", "None")
        if spec.get("type") != "ExternalName" and "clusterIP" not in spec:
            # An update that omits the cluster IP keeps the allocated one.
            previous = ((old or {}).get("spec") or {}).get("clusterIP")
            spec["clusterIP"] = previous or _next_cluster_ip()
            spec["clusterIPs"] = [spec["clusterIP"]]
        for p in spec.get("ports") or []:
            if isinstance(p, dict):
                p.setdefault("protocol", "TCP")
                if "port" in p:
                    p.setdefault("targetPort", p["port"])
    elif kind_key == ("", "Secret"):
        obj.setdefault("type", "Opaque")


def validate(kind_key: tuple[str, str], obj: dict[str, Any]) -> list[Cause]:
    causes: list[Cause] = []
    spec = obj.get("spec")
    if kind_key in (("apps", "Deployment"), ("apps", "ReplicaSet")):
        if not isinstance(spec, dict):
            return [Cause("spec", "Required value", "FieldValueRequired")]
        selector = spec.get("selector")
        if not isinstance(selector, dict) or not selector:
            causes.append(Cause("spec.selector", "Required value", "FieldValueRequired"))
        else:
            causes += label_causes("spec.selector.matchLabels", selector.get("matchLabels"))
            template_meta = (spec.get("template") or {}).get("metadata") or {}
            causes += label_causes("spec.template.metadata.labels", template_meta.get("labels"))
            template = spec.get("template") or {}
            if not labels_match(selector_from_label_selector_object(selector), template):
                causes.append(
                    Cause(
                        "spec.template.metadata.labels",
                        "Invalid value: `selector` does not match template `labels`",
                    )
                )
        replicas = spec.get("replicas")
        if isinstance(replicas, int) and replicas < 0:
            causes.append(
                Cause(
                    "spec.replicas",
                    f"Invalid value: {replicas}: must be greater than or equal to 0",
                )
            )
        containers = ((spec.get("template") or {}).get("spec") or {}).get("containers")
        if not containers:
            causes.append(
                Cause("spec.template.spec.containers", "Required value", "FieldValueRequired")
            )
    elif kind_key == ("", "Service") and isinstance(spec, dict):
        causes += label_causes("spec.selector", spec.get("selector"))
    elif kind_key == ("", "Pod") and (not isinstance(spec, dict) or not spec.get("containers")):
        causes.append(Cause("spec.containers", "Required value", "FieldValueRequired"))
    return causes


def immutable_causes(
    kind_key: tuple[str, str], old: dict[str, Any], new: dict[str, Any]
) -> list[Cause]:
    """Fields a real server refuses to change once set."""
    causes: list[Cause] = []

    def spec_of(obj: dict[str, Any]) -> dict[str, Any]:
        spec = obj.get("spec")
        return spec if isinstance(spec, dict) else {}

    if kind_key in (("apps", "Deployment"), ("apps", "ReplicaSet")):
        if spec_of(old).get("selector") != spec_of(new).get("selector"):
            causes.append(Cause("spec.selector", "Invalid value: field is immutable"))
    elif kind_key == ("", "Service"):
        before, after = spec_of(old).get("clusterIP"), spec_of(new).get("clusterIP")
        if before and after and before != after:
            causes.append(Cause("spec.clusterIPs[0]", "Invalid value: field is immutable"))
    elif kind_key in (("", "ConfigMap"), ("", "Secret")) and old.get("immutable") is True:
        for field in ("data", "binaryData"):
            if old.get(field) != new.get(field):
                causes.append(Cause(field, "Forbidden: field is immutable when `immutable` is set"))
    return causes
