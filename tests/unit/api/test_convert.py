"""Flagger flagger.app/v1beta1 Canaries (written the way Flagger's docs write them) convert to
valid kubectl-canary Canaries, with a message naming each field dropped or changed."""

from __future__ import annotations

import copy
from typing import Any

import pytest
import yaml

from kubectl_canary.api.convert import convert_flagger, convert_flagger_metric_template
from kubectl_canary.api.errors import InvalidResource
from kubectl_canary.api.parse import parse_canary
from kubectl_canary.api.validate import validate_canary, validate_metric_template
from tests.unit.api.crd_schema import schema_errors

ISTIO = yaml.safe_load(
    """
apiVersion: flagger.app/v1beta1
kind: Canary
metadata:
  name: podinfo
  namespace: test
  uid: 7d6a4c1e-0000-4000-8000-000000000001
  resourceVersion: "48211"
  generation: 2
  annotations:
    kubectl.kubernetes.io/last-applied-configuration: '{"apiVersion":"flagger.app/v1beta1"}'
    team: web
spec:
  provider: istio
  targetRef:
    apiVersion: apps/v1
    kind: Deployment
    name: podinfo
  progressDeadlineSeconds: 60
  autoscalerRef:
    apiVersion: autoscaling/v2
    kind: HorizontalPodAutoscaler
    name: podinfo
  service:
    port: 9898
    targetPort: 9898
    gateways:
    - public-gateway.istio-system.svc.cluster.local
    hosts:
    - app.example.com
    trafficPolicy:
      tls:
        mode: DISABLE
    retries:
      attempts: 3
      perTryTimeout: 1s
      retryOn: "gateway-error,connect-failure,refused-stream"
    corsPolicy:
      allowOrigins:
      - exact: https://example.com
  analysis:
    interval: 1m
    threshold: 5
    maxWeight: 50
    stepWeight: 10
    metrics:
    - name: request-success-rate
      thresholdRange:
        min: 99
      interval: 1m
    - name: request-duration
      thresholdRange:
        max: 500
      interval: 30s
    webhooks:
    - name: acceptance-test
      type: pre-rollout
      url: http://flagger-loadtester.test/
      timeout: 30s
      metadata:
        type: bash
        cmd: "curl -sd 'test' http://podinfo-canary:9898/token | grep token"
    - name: load-test
      url: http://flagger-loadtester.test/
      timeout: 5s
      metadata:
        cmd: "hey -z 1m -q 10 -c 2 http://podinfo-canary.test:9898/"
    alerts:
    - name: "on-call Slack"
      severity: error
      providerRef:
        name: on-call
        namespace: flagger
status:
  phase: Succeeded
  canaryWeight: 0
  failedChecks: 0
"""
)

GATEWAY = yaml.safe_load(
    """
apiVersion: flagger.app/v1beta1
kind: Canary
metadata:
  name: podinfo
  namespace: test
spec:
  provider: gatewayapi:v1
  targetRef:
    apiVersion: apps/v1
    kind: Deployment
    name: podinfo
  service:
    port: 9898
    hosts:
    - www.example.com
    gatewayRefs:
    - name: gateway
      namespace: istio-ingress
      group: gateway.networking.k8s.io
      kind: Gateway
  analysis:
    interval: 1m
    threshold: 5
    stepWeights: [5, 10, 15, 20, 25, 35, 45, 60, 75]
    maxWeight: 50
    sessionAffinity:
      cookieName: flagger-cookie
      maxAge: 21600
    metrics:
    - name: request-success-rate
      threshold: 99
      interval: 1m
    - name: request-duration
      threshold: 500
      interval: 1m
    - name: error-rate
      templateRef:
        name: error-rate
        namespace: istio-system
      thresholdRange:
        max: 1
      interval: 1m
"""
)

AB = yaml.safe_load(
    """
apiVersion: flagger.app/v1beta1
kind: Canary
metadata:
  name: abtest
  namespace: test
spec:
  targetRef:
    apiVersion: apps/v1
    kind: Deployment
    name: abtest
  service:
    port: 80
    targetPort: 9898
    portDiscovery: true
  analysis:
    interval: 10s
    threshold: 10
    iterations: 10
    match:
    - headers:
        x-canary:
          regex: ".*insider.*"
    - headers:
        cookie:
          regex: "^(.*?;)?(canary=always)(;.*)?$"
    metrics:
    - name: "404s percentage"
      threshold: 5
      query: |
        100 - sum(rate(istio_requests_total{response_code!="404"}[1m]))
    webhooks:
    - name: gate
      type: ""
      url: http://flagger-loadtester.test/gate/approve
      muteAlert: true
      retries: 3
"""
)


def test_istio_canary_converts_and_validates() -> None:
    result = convert_flagger(ISTIO)
    doc = result.resource
    assert doc["apiVersion"] == "kubectl-canary.dev/v1alpha1"
    assert doc["metadata"] == {
        "name": "podinfo",
        "namespace": "test",
        "annotations": {"team": "web"},
    }
    assert "status" not in doc
    assert sorted(result.notes) == [
        "spec.analysis.alerts: not supported, dropped",
        "spec.service.corsPolicy: not supported, dropped",
    ]
    assert validate_canary(doc) == []
    assert schema_errors("Canary", doc) == []
    # Everything supported is carried over unchanged.
    for key in ("provider", "targetRef", "autoscalerRef", "progressDeadlineSeconds"):
        assert doc["spec"][key] == ISTIO["spec"][key]
    source_service = {k: v for k, v in ISTIO["spec"]["service"].items() if k != "corsPolicy"}
    assert doc["spec"]["service"] == source_service
    canary = parse_canary(doc)
    assert [w.type for w in canary.spec.analysis.webhooks] == ["pre-rollout", "rollout"]
    assert canary.spec.analysis.metrics[1].interval_seconds == 30


def test_gatewayapi_canary_with_legacy_thresholds_and_step_weights() -> None:
    result = convert_flagger(GATEWAY)
    spec = result.resource["spec"]
    assert spec["provider"] == "gatewayapi"
    assert spec["service"]["gatewayRefs"] == [{"name": "gateway", "namespace": "istio-ingress"}]
    assert "maxWeight" not in spec["analysis"]
    metrics = spec["analysis"]["metrics"]
    assert metrics[0]["thresholdRange"] == {"min": 99}
    assert metrics[1]["thresholdRange"] == {"max": 500}
    assert sorted(result.notes) == [
        "spec.analysis.maxWeight: ignored by Flagger with stepWeights, dropped",
        "spec.analysis.metrics[0].threshold: deprecated, converted to thresholdRange.min",
        "spec.analysis.metrics[1].threshold: deprecated, converted to thresholdRange.max",
        "spec.analysis.metrics[2].templateRef: MetricTemplate istio-system/error-rate is "
        "another namespace's: now names ClusterMetricTemplate error-rate; convert the Flagger "
        "one, then make it one (kind: ClusterMetricTemplate, no metadata.namespace)",
        "spec.analysis.sessionAffinity: not supported, dropped",
    ]
    assert metrics[2]["templateRef"] == {"name": "error-rate", "kind": "ClusterMetricTemplate"}
    assert validate_canary(result.resource) == []
    assert schema_errors("Canary", result.resource) == []
    assert parse_canary(result.resource).spec.analysis.max_weight == 75


def test_ab_canary_reports_inline_query_and_webhook_extras() -> None:
    result = convert_flagger(AB)
    assert "provider" not in result.resource["spec"]  # the agent's --provider applies
    assert sorted(result.notes) == [
        "spec.analysis.metrics[0].query: inline queries are not supported (use a MetricTemplate), "
        "dropped",
        "spec.analysis.metrics[0].threshold: deprecated and not supported, dropped",
        "spec.analysis.webhooks[0].muteAlert: not supported, dropped",
        "spec.analysis.webhooks[0].retries: not supported, dropped",
    ]
    hook = result.resource["spec"]["analysis"]["webhooks"][0]
    assert hook == {"name": "gate", "url": "http://flagger-loadtester.test/gate/approve"}
    # The dropped query leaves a metric nothing can evaluate: validation says so, by name.
    messages = [str(p) for p in validate_canary(result.resource, default_provider="istio")]
    assert messages == [
        "spec.analysis.metrics[0].name: is not a built-in metric (request-success-rate, "
        "request-duration) and no templateRef names a MetricTemplate, got '404s percentage'"
    ]


@pytest.mark.parametrize(
    ("provider", "expected"),
    [
        ("istio", "istio"),
        ("gatewayapi:v1beta1", "gatewayapi"),
        ("gatewayapi:v1", "gatewayapi"),
        ("kubernetes", "kubernetes"),
        ("", None),
    ],
)
def test_supported_providers(provider: str, expected: str | None) -> None:
    doc = copy.deepcopy(ISTIO)
    doc["spec"]["provider"] = provider
    result = convert_flagger(doc)
    assert result.resource["spec"].get("provider") == expected
    assert not any(n.startswith("spec.provider") for n in result.notes)


@pytest.mark.parametrize(
    "provider", ["linkerd", "nginx", "contour", "appmesh:v1beta2", "smi:v1alpha3"]
)
def test_unsupported_providers_are_dropped_and_reported(provider: str) -> None:
    doc = copy.deepcopy(ISTIO)
    doc["spec"]["provider"] = provider
    result = convert_flagger(doc)
    assert "provider" not in result.resource["spec"]
    assert (
        f"spec.provider: '{provider}' is not supported (supported: istio, gatewayapi, kubernetes); "
        "the agent's --provider applies, dropped"
    ) in result.notes


def test_flagger_only_references_and_kinds() -> None:
    doc = copy.deepcopy(ISTIO)
    doc["spec"]["ingressRef"] = {
        "apiVersion": "networking.k8s.io/v1",
        "kind": "Ingress",
        "name": "x",
    }
    doc["spec"]["autoscalerRef"] = {
        "apiVersion": "keda.sh/v1alpha1",
        "kind": "ScaledObject",
        "name": "x",
    }
    doc["spec"]["targetRef"]["kind"] = "DaemonSet"
    result = convert_flagger(doc)
    assert "spec.ingressRef: not supported, dropped" in result.notes
    assert "spec.autoscalerRef: kind 'ScaledObject' is not supported, dropped" in result.notes
    assert (
        "spec.targetRef.kind: 'DaemonSet' is not supported (only Deployment), kept: the converted "
        "Canary will not validate"
    ) in result.notes
    assert "spec.targetRef.kind: must be one of Deployment, got 'DaemonSet'" in [
        str(p) for p in validate_canary(result.resource)
    ]


def test_numbers_flagger_stores_as_floats_become_integers() -> None:
    doc = copy.deepcopy(ISTIO)
    doc["spec"]["analysis"]["threshold"] = 5.0
    doc["spec"]["service"]["port"] = 9898.0
    result = convert_flagger(doc)
    assert result.resource["spec"]["analysis"]["threshold"] == 5
    assert isinstance(result.resource["spec"]["service"]["port"], int)


def test_input_is_not_modified() -> None:
    doc = copy.deepcopy(GATEWAY)
    convert_flagger(doc)
    assert doc == GATEWAY


@pytest.mark.parametrize(
    ("doc", "expected"),
    [
        (
            {**ISTIO, "apiVersion": "kubectl-canary.dev/v1alpha1"},
            "apiVersion: must be flagger.app/v1beta1",
        ),
        ({**ISTIO, "kind": "MetricTemplate"}, "kind: must be Canary, got 'MetricTemplate'"),
        ({**ISTIO, "spec": None}, "spec: must be an object, got null"),
        ("podinfo", "(document): must be an object, got 'podinfo'"),
    ],
)
def test_not_a_flagger_canary(doc: Any, expected: str) -> None:
    with pytest.raises(InvalidResource) as raised:
        convert_flagger(doc)
    assert expected in str(raised.value)


def test_metric_template() -> None:
    flagger = yaml.safe_load(
        """
apiVersion: flagger.app/v1beta1
kind: MetricTemplate
metadata:
  name: error-rate
  namespace: istio-system
spec:
  provider:
    type: prometheus
    address: http://prometheus.istio-system:9090
    insecureSkipVerify: true
  query: |
    sum(rate(istio_requests_total{destination_workload="{{ target }}"}[{{ interval }}]))
"""
    )
    result = convert_flagger_metric_template(flagger)
    assert result.notes == ("spec.provider.insecureSkipVerify: not supported, dropped",)
    assert result.resource["spec"] == {
        "provider": {"type": "prometheus", "address": "http://prometheus.istio-system:9090"},
        "query": flagger["spec"]["query"],
    }
    assert validate_metric_template(result.resource) == []
    assert schema_errors("MetricTemplate", result.resource) == []
    flagger["spec"]["provider"]["type"] = "datadog"
    notes = convert_flagger_metric_template(flagger).notes
    assert notes[0].startswith("spec.provider.type: 'datadog' is not supported (only prometheus)")
