"""Malformed Canaries: each must be rejected with a message naming the field and value."""

from __future__ import annotations

import copy
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from kubectl_canary.api.errors import InvalidResource
from kubectl_canary.api.parse import parse_canary, parse_metric_template
from kubectl_canary.api.validate import validate_canary, validate_metric_template
from tests.unit.api.crd_schema import schema_errors


def base() -> dict[str, Any]:
    return {
        "apiVersion": "kubectl-canary.dev/v1alpha1",
        "kind": "Canary",
        "metadata": {"name": "mhs", "namespace": "application"},
        "spec": {
            "provider": "istio",
            "targetRef": {"apiVersion": "apps/v1", "kind": "Deployment", "name": "mhs"},
            "service": {"port": 9898},
            "analysis": {
                "interval": "1m",
                "threshold": 5,
                "maxWeight": 50,
                "stepWeight": 10,
                "metrics": [
                    {"name": "request-success-rate", "thresholdRange": {"min": 99}},
                    {"name": "request-duration", "thresholdRange": {"max": 500}},
                ],
                "webhooks": [{"name": "gate", "type": "confirm-promotion", "url": "http://g/"}],
            },
        },
    }


def with_(path: str, value: Any) -> dict[str, Any]:
    """base() with the dotted `path` set to `value` (DELETE removes it)."""
    doc = base()
    node: Any = doc
    keys = [int(k) if k.isdigit() else k for k in path.split(".")]
    for key in keys[:-1]:
        node = node[key]
    if value is DELETE:
        del node[keys[-1]]
    else:
        node[keys[-1]] = copy.deepcopy(value)
    return doc


DELETE = object()

# (document, the exact problem expected among those reported)
CASES = [
    (with_("spec.analysis.stepWeight", 0), "spec.analysis.stepWeight: must be 1..100, got 0"),
    (with_("spec.analysis.maxWeight", 101), "spec.analysis.maxWeight: must be 1..100, got 101"),
    (
        with_("spec.analysis.stepWeight", "10"),
        "spec.analysis.stepWeight: must be an integer, got '10'",
    ),
    (with_("spec.analysis.threshold", 0), "spec.analysis.threshold: must be >= 1, got 0"),
    (with_("spec.analysis.iterations", -1), "spec.analysis.iterations: must be >= 0, got -1"),
    (
        with_("spec.analysis.interval", "1 minute"),
        "spec.analysis.interval: must be a duration like 30s, 1m, 1h30m or 500ms, got '1 minute'",
    ),
    (
        with_("spec.analysis.interval", "0s"),
        "spec.analysis.interval: must be more than zero, got '0s'",
    ),
    (with_("spec.targetRef", DELETE), "spec.targetRef: required"),
    (with_("spec.targetRef.name", DELETE), "spec.targetRef.name: required"),
    (
        with_("spec.targetRef.kind", "DaemonSet"),
        "spec.targetRef.kind: must be one of Deployment, got 'DaemonSet'",
    ),
    (with_("spec.service.port", DELETE), "spec.service.port: required"),
    (with_("spec.service.port", 70000), "spec.service.port: must be 1..65535, got 70000"),
    (
        with_("spec.provider", "linkerd"),
        "spec.provider: must be one of istio, gatewayapi, kubernetes, got 'linkerd'",
    ),
    (
        with_("spec.analysis.webhooks.0.type", "pre"),
        "spec.analysis.webhooks[0].type: must be one of confirm-rollout, pre-rollout, rollout, "
        "confirm-traffic-increase, confirm-promotion, post-rollout, rollback, event, got 'pre'",
    ),
    (with_("spec.analysis.webhooks.0.url", DELETE), "spec.analysis.webhooks[0].url: required"),
    (
        with_("spec.analysis.webhooks.0.url", "gate.ops/check"),
        "spec.analysis.webhooks[0].url: must be an http(s) URL, got 'gate.ops/check'",
    ),
    (with_("spec.analysis.metrics.0.name", DELETE), "spec.analysis.metrics[0].name: required"),
    (
        with_("spec.analysis.metrics.1.thresholdRange", {"min": 600, "max": 500}),
        "spec.analysis.metrics[1].thresholdRange.min: must be at most thresholdRange.max (500), "
        "got 600",
    ),
    (
        with_("spec.analysis.metrics.0.thresholdRange.min", 150),
        "spec.analysis.metrics[0].thresholdRange.min: must be 0..100 for request-success-rate, "
        "got 150",
    ),
    (
        with_("spec.analysis.metrics.1.thresholdRange.max", -5),
        "spec.analysis.metrics[1].thresholdRange.max: must be >= 0 for request-duration, got -5",
    ),
    (
        with_("spec.analysis.metrics.0.thresholdRange.min", "99%"),
        "spec.analysis.metrics[0].thresholdRange.min: must be a number, got '99%'",
    ),
    (
        with_("spec.analysis.metrics.1.name", "error-rate"),
        "spec.analysis.metrics[1].name: is not a built-in metric (request-success-rate, "
        "request-duration) and no templateRef names a MetricTemplate, got 'error-rate'",
    ),
    (
        with_("spec.analysis.metrics.1.name", "request-success-rate"),
        "spec.analysis.metrics[1].name: duplicate of metrics[0], got 'request-success-rate'",
    ),
    (
        with_("spec.analysis.webhooks", [{"name": "a", "url": "http://a/"}] * 2),
        "spec.analysis.webhooks[1].name: duplicate of webhooks[0], got 'a'",
    ),
    (
        with_("spec.analysis.stepWeight", 60),
        "spec.analysis.stepWeight: must be at most maxWeight (50), got 60",
    ),
    (
        with_("spec.analysis.stepWeights", [10, 30, 20]),
        "spec.analysis.stepWeights[2]: must be more than the step before it (30), got 20",
    ),
    (
        with_("spec.analysis.stepWeights", [10, 120]),
        "spec.analysis.stepWeights[1]: must be 1..100, got 120",
    ),
    (
        with_("spec.analysis.stepWeights", [10, 20, 30]),
        "spec.analysis.maxWeight: must be omitted or equal the last of stepWeights (30), got 50",
    ),
    (
        with_("spec.analysis.match", [{"headers": {"x-canary": {"exact": "1"}}}]),
        "spec.analysis.match: A/B testing needs spec.analysis.iterations > 0 (header matching "
        "runs iterations, not weights)",
    ),
    (
        {
            **with_("spec.provider", "kubernetes"),
            "spec": {
                **base()["spec"],
                "provider": "kubernetes",
                "analysis": {"iterations": 5, "match": [{"headers": {}}]},
            },
        },
        "spec.analysis.match: needs provider istio or gatewayapi to route by request, "
        "provider is 'kubernetes'",
    ),
    (
        {
            **base(),
            "spec": {**base()["spec"], "provider": "kubernetes", "analysis": {"mirror": True}},
        },
        "spec.analysis.mirror: needs provider istio or gatewayapi, provider is 'kubernetes', "
        "got true",
    ),
    (
        with_("spec.provider", "gatewayapi"),
        "spec.service.gatewayRefs: required by provider gatewayapi (the Gateways the HTTPRoute "
        "attaches to)",
    ),
    (
        with_("spec.analysis.sessionAffinity", {"cookieName": "x"}),
        "spec.analysis.sessionAffinity: unknown field (a Flagger field kubectl-canary does not "
        "support; see `kubectl canary convert`)",
    ),
    (with_("spec.analysis.stepweight", 5), "spec.analysis.stepweight: unknown field"),
    (
        with_("spec.targetRef.name", "My.App"),
        "spec.targetRef.name: must be a DNS name, got 'My.App'",
    ),
    (
        with_("spec.targetRef.name", "web.v2"),
        "spec.targetRef.name: also names the Services while spec.service.name is unset, so must "
        "be a DNS-1035 label of at most 55 characters, got 'web.v2'",
    ),
    (
        with_("spec.service.name", "x" * 56),
        f"spec.service.name: must be at most 55 characters, got '{'x' * 56}'",
    ),
    (with_("spec.skipAnalysis", "yes"), "spec.skipAnalysis: must be true or false, got 'yes'"),
    (
        with_("spec.metricsServer", "prometheus:9090"),
        "spec.metricsServer: must be an http(s) URL, got 'prometheus:9090'",
    ),
    (
        with_("spec.analysis.mirrorWeight", 20),
        "spec.analysis.mirrorWeight: needs spec.analysis.mirror: true, got 20",
    ),
    (
        with_("apiVersion", "flagger.app/v1beta1"),
        "apiVersion: must be kubectl-canary.dev/v1alpha1 (convert a Flagger Canary with "
        "`kubectl canary convert`), got 'flagger.app/v1beta1'",
    ),
    (
        with_("spec.analysis.metrics", {"name": "x"}),
        "spec.analysis.metrics: must be a list, got an object",
    ),
    (with_("spec", DELETE), "spec: required"),
    (with_("metadata.name", DELETE), "metadata.name: required"),
    (
        with_("metadata.name", "n" * 64),
        f"metadata.name: must be at most 63 characters, got '{'n' * 64}'",
    ),
    (
        with_("spec.service.apex", {"labels": {"tier": 1}}),
        "spec.service.apex.labels.tier: must be a string, got 1",
    ),
    (
        with_("spec.service.targetPort", 0),
        "spec.service.targetPort: must be 1..65535 or a name, got 0",
    ),
]


# What a tenant can put in a Canary that would misdirect the agent's outbound calls or
# credentials (docs/security.md): refused by the spec check, before any call.
CROSS = {"name": "t", "templateRef": {"name": "shared", "namespace": "platform"}}
CLUSTER_WITH_NS = {
    "name": "t",
    "templateRef": {"name": "shared", "namespace": "x", "kind": "ClusterMetricTemplate"},
}
HOOK = {"name": "gate", "type": "confirm-promotion"}
SECURITY_CASES = [
    (
        with_("spec.analysis.metrics", [CROSS]),
        "spec.analysis.metrics[0].templateRef.namespace: a MetricTemplate of another namespace "
        "cannot be used (its credentials are that namespace's); use one in application or a "
        "ClusterMetricTemplate (kind: ClusterMetricTemplate), which the platform team shares, "
        "got 'platform'",
    ),
    (
        with_("spec.analysis.metrics", [CLUSTER_WITH_NS]),
        "spec.analysis.metrics[0].templateRef.namespace: must be unset: a "
        "ClusterMetricTemplate has none, got 'x'",
    ),
    (
        with_("spec.metricsServer", "http://10.0.0.5/internal#"),
        "spec.metricsServer: URL has a fragment ('#'), which would cut off the request path, "
        "got 'http://10.0.0.5/internal#'",
    ),
    (
        with_("spec.metricsServer", "http://prom:9090/?x=1"),
        "spec.metricsServer: metrics server URL has a query string ('?'), "
        "got 'http://prom:9090/?x=1'",
    ),
    (
        with_("spec.analysis.webhooks", [{**HOOK, "url": "http://u:p@gate/"}]),
        "spec.analysis.webhooks[0].url: URL has userinfo ('user@'); credentials belong in a "
        "Secret, got 'http://u:p@gate/'",
    ),
    (
        with_("spec.analysis.webhooks", [{**HOOK, "url": "http://gate/", "timeout": "61s"}]),
        "spec.analysis.webhooks[0].timeout: must be at most 60s, got '61s'",
    ),
]


@pytest.mark.parametrize(
    ("doc", "expected"), SECURITY_CASES, ids=[c[1].split(":")[0] for c in SECURITY_CASES]
)
def test_tenant_fields_that_would_misdirect_calls_are_refused(
    doc: dict[str, Any], expected: str
) -> None:
    assert expected in [str(p) for p in validate_canary(doc)]


def test_same_namespace_and_cluster_templates_are_accepted() -> None:
    own = {"name": "t", "templateRef": {"name": "mine", "namespace": "application"}}
    cluster = {"name": "c", "templateRef": {"name": "shared", "kind": "ClusterMetricTemplate"}}
    doc = with_("spec.analysis.metrics", [own, cluster])
    assert validate_canary(doc) == []
    refs = [m.template_ref for m in parse_canary(doc).spec.analysis.metrics]
    assert [(r.kind, r.name) for r in refs if r] == [
        ("MetricTemplate", "mine"),
        ("ClusterMetricTemplate", "shared"),
    ]


def template_doc(kind: str, provider: dict[str, Any]) -> dict[str, Any]:
    meta: dict[str, Any] = (
        {"name": "t"} if kind != "MetricTemplate" else {"name": "t", "namespace": "a"}
    )
    return {
        "apiVersion": "kubectl-canary.dev/v1alpha1",
        "kind": kind,
        "metadata": meta,
        "spec": {"provider": {"type": "prometheus", **provider}, "query": "up"},
    }


@pytest.mark.parametrize("kind", ["MetricTemplate", "ClusterMetricTemplate"])
def test_a_template_secret_needs_an_address_beside_it(kind: str) -> None:
    problems = [
        str(p) for p in validate_metric_template(template_doc(kind, {"secretRef": {"name": "s"}}))
    ]
    assert problems == [
        "spec.provider.secretRef: needs provider.address in the same template: credentials "
        "are only sent to the address set beside them, never to a Canary's metricsServer"
    ]
    with_address = template_doc(kind, {"address": "http://prom:9090", "secretRef": {"name": "s"}})
    template = parse_metric_template(with_address)
    assert (template.kind, template.namespace) == (kind, "a" if kind == "MetricTemplate" else "")


@pytest.mark.parametrize(("doc", "expected"), CASES, ids=[c[1].split(":")[0] for c in CASES])
def test_malformed_canary_is_reported_with_field_and_value(
    doc: dict[str, Any], expected: str
) -> None:
    messages = [str(p) for p in validate_canary(doc)]
    assert expected in messages
    with pytest.raises(InvalidResource) as raised:
        parse_canary(doc)
    assert expected in str(raised.value)


def test_base_document_is_valid() -> None:
    # The cases above are only meaningful if the document they break starts out valid.
    assert validate_canary(base()) == []


def test_every_problem_is_reported_at_once() -> None:
    doc = base()
    doc["spec"]["analysis"]["stepWeight"] = 0
    doc["spec"]["service"]["port"] = "http"
    doc["spec"]["analysis"]["metrics"][0]["interval"] = "soon"
    del doc["spec"]["targetRef"]["name"]
    assert sorted(str(p) for p in validate_canary(doc)) == [
        "spec.analysis.metrics[0].interval: must be a duration like 30s, 1m, 1h30m or 500ms, "
        "got 'soon'",
        "spec.analysis.stepWeight: must be 1..100, got 0",
        "spec.service.port: must be an integer, got 'http'",
        "spec.targetRef.name: required",
    ]


def test_a_bad_field_is_reported_once_not_again_by_cross_field_rules() -> None:
    # stepWeight 0 falls back to its default internally; that must not also trip maxWeight.
    doc = with_("spec.analysis.stepWeight", 0)
    doc["spec"]["analysis"]["maxWeight"] = 5
    assert [str(p) for p in validate_canary(doc)] == [
        "spec.analysis.stepWeight: must be 1..100, got 0"
    ]


def test_bad_step_weights_do_not_trigger_the_step_weight_rule() -> None:
    doc = with_("spec.analysis.stepWeights", [10, 120])
    doc["spec"]["analysis"]["stepWeight"] = 60
    assert [str(p) for p in validate_canary(doc)] == [
        "spec.analysis.stepWeights[1]: must be 1..100, got 120"
    ]


def test_not_an_object() -> None:
    assert [str(p) for p in validate_canary(["a"])] == [
        "(document): must be an object, got a list of 1"
    ]


def test_unknown_default_provider_is_a_programming_error() -> None:
    with pytest.raises(ValueError, match="linkerd"):
        validate_canary(base(), default_provider="linkerd")


# --- robustness: any document, however broken, yields problems, never an exception ----------

json_values = st.recursive(
    st.none()
    | st.booleans()
    | st.integers(-5, 70000)
    | st.floats(-1, 1e3)
    | st.text(max_size=6)
    | st.sampled_from(["1m", "istio", "gatewayapi", "http://x/", "rollout", "mhs"]),
    lambda inner: (
        st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=6), inner, max_size=3)
    ),
    max_leaves=8,
)
SPEC_PATHS = [
    "spec",
    "spec.provider",
    "spec.targetRef",
    "spec.targetRef.name",
    "spec.service",
    "spec.service.port",
    "spec.service.targetPort",
    "spec.service.gatewayRefs",
    "spec.service.apex",
    "spec.analysis",
    "spec.analysis.interval",
    "spec.analysis.stepWeight",
    "spec.analysis.stepWeights",
    "spec.analysis.maxWeight",
    "spec.analysis.iterations",
    "spec.analysis.match",
    "spec.analysis.metrics",
    "spec.analysis.metrics.0",
    "spec.analysis.metrics.0.thresholdRange",
    "spec.analysis.metrics.1.templateRef",
    "spec.analysis.webhooks.0",
    "spec.analysis.webhooks.0.timeout",
    "spec.analysis.webhooks.0.metadata",
]


@settings(max_examples=300, deadline=None)
@given(st.lists(st.tuples(st.sampled_from(SPEC_PATHS), json_values), min_size=1, max_size=3))
def test_broken_documents_give_problems_never_exceptions(edits: list[tuple[str, Any]]) -> None:
    doc = base()
    for path, value in edits:
        try:
            doc = _set(doc, path, value)
        except (KeyError, IndexError, TypeError):
            continue  # an earlier edit removed the parent: nothing to set
    problems = validate_canary(doc)
    assert all(p.path and p.message for p in problems)
    try:
        parse_canary(doc)
    except InvalidResource as err:
        assert err.problems == problems
    else:
        assert problems == []
    # The validator is at least as strict as the CRD schema the API server enforces.
    if schema_errors("Canary", doc):
        assert problems, schema_errors("Canary", doc)


def _set(doc: dict[str, Any], path: str, value: Any) -> dict[str, Any]:
    node: Any = doc
    keys = [int(k) if k.isdigit() else k for k in path.split(".")]
    for key in keys[:-1]:
        node = node[key]
    node[keys[-1]] = copy.deepcopy(value)
    return doc
