"""Decode a Canary / MetricTemplate document into the typed model, collecting shape problems.

This is the schema half of validation (types, ranges, enums, patterns, required and unknown
fields), mirroring the CRD in manifests/crds; `validate.py` adds the cross-field rules a schema
cannot say. Defaults here are the CRD's defaults plus the ones that depend on other fields
(e.g. `maxWeight` is the last of `stepWeights`), so an object parses the same whether or not an
API server defaulted it first.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from kubectl_canary.api.errors import MISSING
from kubectl_canary.api.model import (
    API_VERSION,
    CLUSTER_TEMPLATE_KIND,
    PROVIDERS,
    TEMPLATE_KINDS,
    WEBHOOK_TYPES,
    AnalysisSpec,
    Canary,
    CanarySpec,
    GatewayRef,
    MetricSpec,
    MetricTemplate,
    ObjectMetadata,
    ServiceSpec,
    TargetRef,
    TemplateRef,
    ThresholdRange,
    WebhookSpec,
)
from kubectl_canary.api.reader import Node, Problems, is_int
from kubectl_canary.egress.policy import EgressError, parse_url
from kubectl_canary.objects.names import SERVICE_NAME_MAX, TARGET_NAME_MAX

# Patterns shared with the CRD (a test checks they are the same strings).
DNS1123_SUBDOMAIN = r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$"
DNS1123_LABEL = r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$"
DNS1035_LABEL = r"^[a-z]([-a-z0-9]*[a-z0-9])?$"
HTTP_URL = r"^https?://[^\s]+$"
LABEL_VALUE_MAX = 63
METRIC_PROVIDER_TYPES = ("prometheus",)
# A webhook's timeout bounds one whole call; longer gates poll (confirm-* types) instead.
WEBHOOK_TIMEOUT_MAX = 60.0

DEFAULT_NAMESPACE = "default"

_FLAGGER_ONLY = "a Flagger field kubectl-canary does not support; see `kubectl canary convert`"
_FLAGGER_FIELDS = {
    "spec": ("ingressRef", "routeRef", "upstreamRef"),
    "spec.service": (
        "trafficDistribution",
        "headless",
        "backendTimeout",
        "meshName",
        "backends",
        "delegation",
        "rewrite",
        "mirror",
        "corsPolicy",
        "unmanagedMetadata",
    ),
    "spec.analysis": ("alerts", "sessionAffinity"),
}


# The fields we accept under spec.service and spec.analysis (convert.py carries exactly these
# over from a Flagger Canary).
SERVICE_FIELDS = (
    "name",
    "port",
    "portName",
    "targetPort",
    "portDiscovery",
    "appProtocol",
    "gateways",
    "hosts",
    "gatewayRefs",
    "retries",
    "timeout",
    "headers",
    "match",
    "trafficPolicy",
    "apex",
    "primary",
    "canary",
)
ANALYSIS_FIELDS = (
    "interval",
    "threshold",
    "maxWeight",
    "stepWeight",
    "stepWeights",
    "stepWeightPromotion",
    "iterations",
    "match",
    "mirror",
    "mirrorWeight",
    "primaryReadyThreshold",
    "canaryReadyThreshold",
    "metrics",
    "webhooks",
)


def _hints(path: str) -> dict[str, str]:
    return {key: _FLAGGER_ONLY for key in _FLAGGER_FIELDS.get(path, ())}


def decode_canary(obj: Mapping[str, Any], problems: Problems, default_provider: str) -> Canary:
    """The typed Canary for `obj`; every problem found goes to `problems`."""
    root = Node(problems, obj, "")
    root.only(("apiVersion", "kind", "metadata", "spec", "status"))
    _check_type_meta(root, "Canary")
    # A Canary's name labels every object it generates (MANAGED_BY_LABEL): a label's limit.
    name, namespace, annotations = _metadata(root, name_max=LABEL_VALUE_MAX)
    spec_node = root.child("spec", required=True)
    spec = _spec(spec_node, default_provider) if spec_node else _placeholder_spec()
    # Server-set metadata is trusted as the API server wrote it; it is never user input.
    meta = obj.get("metadata")
    meta = meta if isinstance(meta, Mapping) else {}
    generation = meta.get("generation")
    return Canary(
        namespace=namespace,
        name=name,
        spec=spec,
        uid=str(meta.get("uid") or ""),
        generation=int(generation) if generation is not None and is_int(generation) else 0,
        resource_version=str(meta.get("resourceVersion") or ""),
        annotations=annotations,
        finalizers=tuple(str(f) for f in meta.get("finalizers") or ()),
        deletion_timestamp=str(meta["deletionTimestamp"])
        if meta.get("deletionTimestamp")
        else None,
    )


def decode_metric_template(obj: Mapping[str, Any], problems: Problems) -> MetricTemplate:
    root = Node(problems, obj, "")
    root.only(("apiVersion", "kind", "metadata", "spec", "status"))
    kind = obj.get("kind") if obj.get("kind") in TEMPLATE_KINDS else "MetricTemplate"
    _check_type_meta(root, str(kind))
    name, namespace, _ = _metadata(root)
    if kind == CLUSTER_TEMPLATE_KIND:
        namespace = ""
    spec = root.child("spec", required=True)
    provider_type, address, secret, query = "prometheus", None, None, ""
    if spec:
        spec.only(("provider", "query"))
        query = spec.string("query", required=True) or ""
        provider = spec.child("provider", required=True)
        if provider:
            provider.only(("type", "address", "secretRef"))
            provider_type = (
                provider.string("type", required=True, enum=METRIC_PROVIDER_TYPES) or "prometheus"
            )
            address = _url(provider, "address", allow_query=False)
            secret_ref = provider.child("secretRef")
            if secret_ref:
                secret_ref.only(("name",))
                secret = secret_ref.string("name", required=True)
                if provider.raw("address") in (MISSING, None, ""):
                    # Credentials go only to the address their template names: without one
                    # they would go to whatever metricsServer the Canary using it sets.
                    provider.add(
                        "secretRef",
                        "needs provider.address in the same template: credentials are only "
                        "sent to the address set beside them, never to a Canary's metricsServer",
                    )
    return MetricTemplate(
        namespace=namespace,
        name=name,
        provider_type=provider_type,
        query=query,
        provider_address=address,
        secret_ref=secret,
        kind=str(kind),
    )


def _check_type_meta(root: Node, kind: str) -> None:
    # Absent apiVersion/kind is accepted (a bare spec in a test or a tool); wrong ones are not.
    api_version = root.raw("apiVersion")
    if isinstance(api_version, str) and api_version.startswith("flagger.app/"):
        root.add(
            "apiVersion",
            f"must be {API_VERSION} (convert a Flagger {kind} with `kubectl canary convert`)",
            api_version,
        )
    else:
        root.string("apiVersion", enum=(API_VERSION,))
    root.string("kind", enum=(kind,))


def _metadata(root: Node, name_max: int | None = None) -> tuple[str, str, dict[str, str]]:
    meta = root.child("metadata", required=True)
    if meta is None:
        return "", DEFAULT_NAMESPACE, {}
    name = meta.string(
        "name", required=True, pattern=DNS1123_SUBDOMAIN, explain="a DNS name", max_length=name_max
    )
    namespace = meta.string("namespace", pattern=DNS1123_LABEL, explain="a DNS label")
    return name or "", namespace or DEFAULT_NAMESPACE, meta.string_map("annotations")


def _placeholder_spec() -> CanarySpec:
    # Only ever returned together with a "spec: required" problem.
    return CanarySpec(target_ref=TargetRef(name=""), service=ServiceSpec(port=0))


def _spec(node: Node, default_provider: str) -> CanarySpec:
    node.only(
        (
            "targetRef",
            "autoscalerRef",
            "service",
            "provider",
            "metricsServer",
            "progressDeadlineSeconds",
            "skipAnalysis",
            "suspend",
            "revertOnDeletion",
            "analysis",
        ),
        _hints("spec"),
    )
    target = node.child("targetRef", required=True)
    autoscaler = node.child("autoscalerRef")
    service = node.child("service", required=True)
    analysis = node.child("analysis")
    return CanarySpec(
        target_ref=_target_ref(target) if target else TargetRef(name=""),
        service=_service(service) if service else ServiceSpec(port=0),
        analysis=_analysis(analysis) if analysis else AnalysisSpec(),
        autoscaler_ref=_autoscaler_ref(autoscaler) if autoscaler else None,
        provider=node.string("provider", enum=PROVIDERS) or default_provider,
        metrics_server=_url(node, "metricsServer", allow_query=False),
        progress_deadline_seconds=node.integer("progressDeadlineSeconds", 600, lo=1),
        skip_analysis=node.boolean("skipAnalysis"),
        suspend=node.boolean("suspend"),
        revert_on_deletion=node.boolean("revertOnDeletion"),
    )


def _target_ref(node: Node) -> TargetRef:
    node.only(("apiVersion", "kind", "name"))
    name = node.string(
        "name",
        required=True,
        pattern=DNS1123_SUBDOMAIN,
        explain="a DNS name",
        max_length=TARGET_NAME_MAX,
    )
    return TargetRef(
        name=name or "",
        kind=node.string("kind", enum=("Deployment",)) or "Deployment",
        api_version=node.string("apiVersion", enum=("apps/v1",)) or "apps/v1",
    )


def _autoscaler_ref(node: Node) -> TargetRef:
    node.only(("apiVersion", "kind", "name"))
    name = node.string("name", required=True, pattern=DNS1123_SUBDOMAIN, explain="a DNS name")
    kind = node.string("kind", enum=("HorizontalPodAutoscaler",))
    api_version = node.string("apiVersion", enum=("autoscaling/v2",))
    return TargetRef(
        name=name or "",
        kind=kind or "HorizontalPodAutoscaler",
        api_version=api_version or "autoscaling/v2",
    )


def _service(node: Node) -> ServiceSpec:
    node.only(SERVICE_FIELDS, _hints("spec.service"))
    name = node.string(
        "name",
        pattern=DNS1035_LABEL,
        explain="a DNS-1035 label (lower case letters, digits, '-')",
        max_length=SERVICE_NAME_MAX,
    )
    return ServiceSpec(
        port=node.integer("port", 0, lo=1, hi=65535, required=True),
        name=name,
        port_name=node.string("portName", pattern=DNS1123_LABEL, explain="a port name") or "http",
        target_port=node.int_or_string("targetPort", lo=1, hi=65535),
        port_discovery=node.boolean("portDiscovery"),
        app_protocol=node.string("appProtocol"),
        gateways=node.string_list("gateways"),
        hosts=node.string_list("hosts"),
        gateway_refs=tuple(_gateway_ref(ref) for ref in node.children("gatewayRefs")),
        retries=node.free_object("retries"),
        timeout=_duration_string(node, "timeout"),
        headers=node.free_object("headers"),
        match=node.free_objects("match"),
        traffic_policy=node.free_object("trafficPolicy"),
        apex=_object_metadata(node.child("apex")),
        primary=_object_metadata(node.child("primary")),
        canary=_object_metadata(node.child("canary")),
    )


def _duration_string(node: Node, key: str) -> str | None:
    """A duration kept as written (it is passed on to the routing object)."""
    if node.has(key) and node.duration(key, 0.0) > 0:
        value = node.raw(key)
        assert isinstance(value, str)
        return value
    return None


def _gateway_ref(node: Node) -> GatewayRef:
    node.only(("name", "namespace", "sectionName"))
    return GatewayRef(
        name=node.string("name", required=True) or "",
        namespace=node.string("namespace", pattern=DNS1123_LABEL, explain="a DNS label"),
        section_name=node.string("sectionName"),
    )


def _object_metadata(node: Node | None) -> ObjectMetadata:
    if node is None:
        return ObjectMetadata()
    node.only(("labels", "annotations"))
    return ObjectMetadata(
        labels=node.string_map("labels"), annotations=node.string_map("annotations")
    )


def _analysis(node: Node) -> AnalysisSpec:
    node.only(ANALYSIS_FIELDS, _hints("spec.analysis"))
    step_weights = node.int_list("stepWeights", lo=1, hi=100)
    # With stepWeights the last step is the maximum (Flagger's rule); validate.py rejects an
    # explicit maxWeight that says otherwise.
    default_max = step_weights[-1] if step_weights else 50
    return AnalysisSpec(
        interval_seconds=node.duration("interval", 60.0),
        threshold=node.integer("threshold", 5, lo=1),
        max_weight=node.integer("maxWeight", default_max, lo=1, hi=100),
        step_weight=node.integer("stepWeight", 10, lo=1, hi=100),
        step_weights=step_weights,
        step_weight_promotion=node.integer("stepWeightPromotion", 0, lo=0, hi=100),
        iterations=node.integer("iterations", 0, lo=0),
        match=node.free_objects("match"),
        mirror=node.boolean("mirror"),
        mirror_weight=node.integer("mirrorWeight", 0, lo=0, hi=100),
        primary_ready_threshold=node.integer("primaryReadyThreshold", 100, lo=0, hi=100),
        canary_ready_threshold=node.integer("canaryReadyThreshold", 100, lo=0, hi=100),
        metrics=tuple(_metric(metric) for metric in node.children("metrics")),
        webhooks=tuple(_webhook(hook) for hook in node.children("webhooks")),
    )


def _metric(node: Node) -> MetricSpec:
    node.only(
        ("name", "interval", "thresholdRange", "templateRef", "templateVariables"),
        {
            "threshold": "deprecated in Flagger; use thresholdRange",
            "query": "use a MetricTemplate and templateRef",
        },
    )
    bounds = node.child("thresholdRange")
    threshold_range = ThresholdRange()
    if bounds:
        bounds.only(("min", "max"))
        threshold_range = ThresholdRange(min=bounds.number("min"), max=bounds.number("max"))
    template = node.child("templateRef")
    template_ref = None
    if template:
        template.only(("name", "namespace", "kind"))
        template_ref = TemplateRef(
            name=template.string("name", required=True) or "",
            namespace=template.string("namespace", pattern=DNS1123_LABEL, explain="a DNS label"),
            kind=template.string("kind", enum=TEMPLATE_KINDS) or "MetricTemplate",
        )
    return MetricSpec(
        name=node.string("name", required=True) or "",
        interval_seconds=node.duration("interval", 60.0),
        threshold_range=threshold_range,
        template_ref=template_ref,
        template_variables=node.string_map("templateVariables"),
    )


def _url(node: Node, key: str, *, required: bool = False, allow_query: bool = True) -> str | None:
    """An http(s) URL in the strict form every outbound call needs (no userinfo, no fragment;
    with allow_query=False no query string either): see kubectl_canary/egress/policy.py."""
    value = node.string(key, required=required, pattern=HTTP_URL, explain="an http(s) URL")
    if value is None:
        return None
    try:
        parse_url(value, allow_query=allow_query)
    except EgressError as exc:
        node.add(key, str(exc), value)
        return None
    return value


def _webhook(node: Node) -> WebhookSpec:
    node.only(
        ("name", "type", "url", "timeout", "metadata"),
        {key: _FLAGGER_ONLY for key in ("muteAlert", "retries", "disableTLS")},
    )
    return WebhookSpec(
        name=node.string("name", required=True) or "",
        url=_url(node, "url", required=True) or "",
        type=node.string("type", enum=WEBHOOK_TYPES) or "rollout",
        timeout_seconds=node.duration("timeout", 10.0, maximum=WEBHOOK_TIMEOUT_MAX),
        metadata=node.string_map("metadata"),
    )
