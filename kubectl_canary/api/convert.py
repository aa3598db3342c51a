"""Convert a Flagger `flagger.app/v1beta1` Canary into a kubectl-canary Canary.

Spec field names are shared, so conversion is mostly a copy; what differs is reported, one
message per field, e.g. `spec.analysis.sessionAffinity: not supported, dropped`. The result is
a plain document for `kubectl canary convert` to print; validate it with `validate_canary`.
"""

from __future__ import annotations

import copy
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from kubectl_canary.api.decode import ANALYSIS_FIELDS, DEFAULT_NAMESPACE, SERVICE_FIELDS
from kubectl_canary.api.errors import InvalidResource, Problem, show_value
from kubectl_canary.api.model import API_VERSION, CLUSTER_TEMPLATE_KIND, PROVIDERS
from kubectl_canary.api.reader import is_int, join

FLAGGER_GROUP = "flagger.app"

# Flagger provider names we can serve, and what they become.
_PROVIDER_MAP = {
    "istio": "istio",
    "gatewayapi": "gatewayapi",
    "gatewayapi:v1": "gatewayapi",
    "gatewayapi:v1beta1": "gatewayapi",
    "kubernetes": "kubernetes",
}
# Fields copied unchanged, per object.
_SPEC_KEEP = (
    "metricsServer",
    "progressDeadlineSeconds",
    "skipAnalysis",
    "suspend",
    "revertOnDeletion",
)
# gatewayRefs, metrics and webhooks need translating; every other accepted field is copied.
_SERVICE_KEEP = tuple(f for f in SERVICE_FIELDS if f != "gatewayRefs")
_ANALYSIS_KEEP = tuple(f for f in ANALYSIS_FIELDS if f not in ("metrics", "webhooks"))
# Flagger's deprecated `metrics[].threshold` is a lower bound for success rate and an upper
# bound for duration; for any other metric it has no meaning we can carry over.
_LEGACY_THRESHOLD_BOUND = {"request-success-rate": "min", "request-duration": "max"}
# Flagger's CRD defaults these on gatewayRefs; they are what we assume, so dropping is silent.
_GATEWAY_REF_DEFAULTS = {"group": "gateway.networking.k8s.io", "kind": "Gateway"}
# Server-managed annotation describing the Flagger object, not ours.
_LAST_APPLIED = "kubectl.kubernetes.io/last-applied-configuration"


@dataclass(frozen=True)
class Conversion:
    resource: dict[str, Any]  # the kubectl-canary document
    notes: tuple[str, ...]  # one message per field dropped or changed, naming the field


def _namespace_of(obj: Mapping[str, Any]) -> str:
    meta = obj.get("metadata")
    namespace = meta.get("namespace") if isinstance(meta, Mapping) else None
    return str(namespace or DEFAULT_NAMESPACE)


def convert_flagger(obj: Any) -> Conversion:
    """Convert a Flagger Canary document; InvalidResource when `obj` is not one."""
    _check_flagger(obj, "Canary")
    return _Converter().run(obj)


def convert_flagger_metric_template(obj: Any) -> Conversion:
    """Convert a Flagger MetricTemplate (prometheus only); InvalidResource when not one."""
    _check_flagger(obj, "MetricTemplate")
    converter = _Converter()
    spec = obj["spec"]
    provider = spec.get("provider") if isinstance(spec.get("provider"), Mapping) else {}
    out_provider: dict[str, Any] = {"type": provider.get("type")}
    if provider.get("type") != "prometheus":
        converter.dropped.append(
            f"spec.provider.type: {show_value(provider.get('type'))} is not supported "
            "(only prometheus), kept: the converted MetricTemplate will not validate"
        )
    converter.copy(provider, out_provider, ("address", "secretRef"))
    converter.drop_rest(provider, "spec.provider", {"type", "address", "secretRef"})
    converter.drop_rest(spec, "spec", {"provider", "query"})
    out = {
        "apiVersion": API_VERSION,
        "kind": "MetricTemplate",
        "metadata": converter.metadata(obj.get("metadata")),
        "spec": {"provider": out_provider, "query": spec.get("query")},
    }
    return Conversion(resource=out, notes=tuple(converter.dropped))


def _check_flagger(obj: Any, kind: str) -> None:
    what = f"Flagger {kind}"
    if not isinstance(obj, Mapping):
        raise InvalidResource(what, [Problem("(document)", "must be an object", obj)])
    problems = []
    api_version = obj.get("apiVersion")
    if not (isinstance(api_version, str) and api_version.startswith(FLAGGER_GROUP + "/")):
        problems.append(Problem("apiVersion", f"must be {FLAGGER_GROUP}/v1beta1", api_version))
    if obj.get("kind") != kind:
        problems.append(Problem("kind", f"must be {kind}", obj.get("kind")))
    if not isinstance(obj.get("spec"), Mapping):
        problems.append(Problem("spec", "must be an object", obj.get("spec")))
    if problems:
        raise InvalidResource(what, problems)


def _integer(value: Any) -> Any:
    # Flagger declares its counts as `number`; ours are integers. 10.0 becomes 10.
    return int(value) if is_int(value) else value


class _Converter:
    def __init__(self) -> None:
        self.dropped: list[str] = []

    def drop(self, path: str, why: str = "not supported") -> None:
        self.dropped.append(f"{path}: {why}, dropped")

    def copy(self, src: Mapping[str, Any], dst: dict[str, Any], keys: tuple[str, ...]) -> None:
        for key in keys:
            if key in src and src[key] is not None:
                dst[key] = _integer(copy.deepcopy(src[key]))

    def drop_rest(self, src: Mapping[str, Any], path: str, handled: set[str]) -> None:
        for key in src:
            if key not in handled:
                self.drop(join(path, key))

    def run(self, obj: Mapping[str, Any]) -> Conversion:
        out: dict[str, Any] = {
            "apiVersion": API_VERSION,
            "kind": "Canary",
            "metadata": self.metadata(obj.get("metadata")),
            "spec": self.spec(obj["spec"], _namespace_of(obj)),
        }
        return Conversion(resource=out, notes=tuple(self.dropped))

    def metadata(self, meta: Any) -> dict[str, Any]:
        # Only what a user writes; uid, resourceVersion, managedFields... belong to the
        # Flagger object and would be rejected or meaningless on a new one.
        out: dict[str, Any] = {}
        if not isinstance(meta, Mapping):
            return out
        for key in ("name", "namespace", "labels"):
            if meta.get(key):
                out[key] = copy.deepcopy(meta[key])
        annotations = {
            k: v for k, v in (meta.get("annotations") or {}).items() if k != _LAST_APPLIED
        }
        if annotations:
            out["annotations"] = annotations
        return out

    def spec(self, spec: Mapping[str, Any], namespace: str) -> dict[str, Any]:
        out: dict[str, Any] = {}
        handled = {*_SPEC_KEEP, "provider", "targetRef", "autoscalerRef", "service", "analysis"}
        self.copy(spec, out, _SPEC_KEEP)
        self.provider(spec, out)
        if isinstance(spec.get("targetRef"), Mapping):
            out["targetRef"] = self.target_ref(spec["targetRef"])
        if isinstance(spec.get("autoscalerRef"), Mapping):
            ref = self.autoscaler_ref(spec["autoscalerRef"])
            if ref is not None:
                out["autoscalerRef"] = ref
        if isinstance(spec.get("service"), Mapping):
            out["service"] = self.service(spec["service"])
        if isinstance(spec.get("analysis"), Mapping):
            out["analysis"] = self.analysis(spec["analysis"], namespace)
        self.drop_rest(spec, "spec", handled)
        return out

    def provider(self, spec: Mapping[str, Any], out: dict[str, Any]) -> None:
        name = spec.get("provider")
        if name is None or name == "":
            return  # both mean "the controller's default", as our unset provider does
        if name in _PROVIDER_MAP:
            out["provider"] = _PROVIDER_MAP[name]
            return
        self.drop(
            "spec.provider",
            f"{show_value(name)} is not supported (supported: {', '.join(PROVIDERS)}); "
            "the agent's --provider applies",
        )

    def target_ref(self, ref: Mapping[str, Any]) -> dict[str, Any]:
        kind = ref.get("kind", "Deployment")
        if kind != "Deployment":
            # Kept so the result fails validation loudly instead of releasing the wrong thing.
            self.dropped.append(
                f"spec.targetRef.kind: {show_value(kind)} is not supported (only Deployment), "
                "kept: the converted Canary will not validate"
            )
        out = {
            "apiVersion": ref.get("apiVersion", "apps/v1"),
            "kind": kind,
            "name": ref.get("name"),
        }
        self.drop_rest(ref, "spec.targetRef", {"apiVersion", "kind", "name"})
        return out

    def autoscaler_ref(self, ref: Mapping[str, Any]) -> dict[str, Any] | None:
        kind = ref.get("kind")
        if kind != "HorizontalPodAutoscaler":
            self.drop("spec.autoscalerRef", f"kind {show_value(kind)} is not supported")
            return None
        out = {"apiVersion": "autoscaling/v2", "kind": kind, "name": ref.get("name")}
        if ref.get("apiVersion") not in (None, "autoscaling/v2"):
            self.dropped.append(
                f"spec.autoscalerRef.apiVersion: {show_value(ref.get('apiVersion'))} "
                "changed to autoscaling/v2"
            )
        self.drop_rest(ref, "spec.autoscalerRef", {"apiVersion", "kind", "name"})
        return out

    def service(self, service: Mapping[str, Any]) -> dict[str, Any]:
        out: dict[str, Any] = {}
        self.copy(service, out, _SERVICE_KEEP)
        refs = service.get("gatewayRefs")
        if isinstance(refs, list):
            out["gatewayRefs"] = [
                self.gateway_ref(ref, f"spec.service.gatewayRefs[{i}]")
                for i, ref in enumerate(refs)
                if isinstance(ref, Mapping)
            ]
        self.drop_rest(service, "spec.service", {*_SERVICE_KEEP, "gatewayRefs"})
        return out

    def gateway_ref(self, ref: Mapping[str, Any], path: str) -> dict[str, Any]:
        out = {k: ref[k] for k in ("name", "namespace", "sectionName") if ref.get(k) is not None}
        for key, value in ref.items():
            if key in out:
                continue
            if _GATEWAY_REF_DEFAULTS.get(key) != value:
                self.drop(join(path, key))
        return out

    def analysis(self, analysis: Mapping[str, Any], namespace: str) -> dict[str, Any]:
        out: dict[str, Any] = {}
        self.copy(analysis, out, _ANALYSIS_KEEP)
        steps = out.get("stepWeights")
        if steps and "maxWeight" in out and out["maxWeight"] != steps[-1]:
            # Flagger ignores maxWeight when stepWeights is set; we reject the contradiction.
            self.drop("spec.analysis.maxWeight", "ignored by Flagger with stepWeights")
            del out["maxWeight"]
        if isinstance(analysis.get("metrics"), list):
            out["metrics"] = [
                self.metric(m, f"spec.analysis.metrics[{i}]", namespace)
                for i, m in enumerate(analysis["metrics"])
                if isinstance(m, Mapping)
            ]
        if isinstance(analysis.get("webhooks"), list):
            out["webhooks"] = [
                self.webhook(w, f"spec.analysis.webhooks[{i}]")
                for i, w in enumerate(analysis["webhooks"])
                if isinstance(w, Mapping)
            ]
        self.drop_rest(analysis, "spec.analysis", {*_ANALYSIS_KEEP, "metrics", "webhooks"})
        return out

    def metric(self, metric: Mapping[str, Any], path: str, namespace: str) -> dict[str, Any]:
        keep = ("name", "interval", "thresholdRange", "templateRef", "templateVariables")
        out: dict[str, Any] = {}
        self.copy(metric, out, keep)
        ref = metric.get("templateRef")
        if isinstance(ref, Mapping) and ref.get("namespace") not in (None, namespace):
            # Another namespace's template (Flagger's habit: templates in istio-system) is
            # what ClusterMetricTemplates are for; a Canary may not use one of another namespace.
            out["templateRef"] = {"name": ref.get("name"), "kind": CLUSTER_TEMPLATE_KIND}
            self.dropped.append(
                f"{path}.templateRef: MetricTemplate {ref.get('namespace')}/{ref.get('name')} "
                f"is another namespace's: now names {CLUSTER_TEMPLATE_KIND} {ref.get('name')}; "
                "convert the Flagger one, then make it one (kind: ClusterMetricTemplate, no "
                "metadata.namespace)"
            )
        elif isinstance(ref, Mapping):
            self.dropped.append(
                f"{path}.templateRef: now names a {API_VERSION} MetricTemplate; "
                "convert the Flagger one too"
            )
        legacy = metric.get("threshold")
        if legacy is not None:
            bound = _LEGACY_THRESHOLD_BOUND.get(str(metric.get("name")))
            if bound and "thresholdRange" not in out:
                out["thresholdRange"] = {bound: legacy}
                self.dropped.append(
                    f"{path}.threshold: deprecated, converted to thresholdRange.{bound}"
                )
            else:
                self.drop(f"{path}.threshold", "deprecated and not supported")
        if metric.get("query") is not None:
            self.drop(f"{path}.query", "inline queries are not supported (use a MetricTemplate)")
        self.drop_rest(metric, path, {*keep, "threshold", "query"})
        return out

    def webhook(self, hook: Mapping[str, Any], path: str) -> dict[str, Any]:
        keep = ("name", "type", "url", "timeout", "metadata")
        out: dict[str, Any] = {}
        self.copy(hook, out, keep)
        if out.get("type") == "":
            del out["type"]  # Flagger's "" means rollout, which is our default
        self.drop_rest(hook, path, set(keep))
        return out
