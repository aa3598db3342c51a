"""The CRDs: structural-schema rules a real API server enforces, agreement with the model, and
every sample accepted both by the CRD schema (as JSON Schema) and by our validator."""

from __future__ import annotations

import copy
import dataclasses
import re
from typing import Any

import jsonschema
import pytest

from kubectl_canary.api import model
from kubectl_canary.api.decode import DNS1035_LABEL, DNS1123_LABEL, DNS1123_SUBDOMAIN, HTTP_URL
from kubectl_canary.api.durations import DURATION_PATTERN
from kubectl_canary.api.parse import parse_canary, parse_metric_template
from kubectl_canary.api.validate import validate_canary, validate_metric_template
from tests.unit.api.crd_schema import (
    CRD_FILES,
    apply_defaults,
    at,
    crd,
    openapi,
    samples,
    schema_errors,
    to_json_schema,
    walk,
)

# --- structural schema rules (a real API server rejects a CRD that breaks them) -------------


@pytest.mark.parametrize("kind", CRD_FILES)
def test_crd_identity(kind: str) -> None:
    doc = crd(kind)
    spec = doc["spec"]
    assert doc["apiVersion"] == "apiextensions.k8s.io/v1"
    assert doc["kind"] == "CustomResourceDefinition"
    assert doc["metadata"]["name"] == f"{spec['names']['plural']}.{spec['group']}"
    assert spec["group"] == model.GROUP
    assert spec["names"]["kind"] == kind
    assert spec["scope"] == "Namespaced"
    (version,) = spec["versions"]
    assert (version["name"], version["served"], version["storage"]) == (model.VERSION, True, True)
    # Flagger owns these names; both CRDs must be installable side by side.
    names = spec["names"]
    assert not {"canary", "canaries"} & set(names.get("shortNames", []))
    assert "all" not in names.get("categories", [])
    assert names["singular"] == kind.lower()
    assert names["listKind"] == kind + "List"


def test_canary_crd_plural_and_status_subresource_match_model() -> None:
    spec = crd("Canary")["spec"]
    assert spec["names"]["plural"] == model.CANARY_PLURAL
    assert spec["versions"][0]["subresources"] == {"status": {}}
    assert crd("MetricTemplate")["spec"]["names"]["plural"] == model.METRIC_TEMPLATE_PLURAL


@pytest.mark.parametrize("kind", CRD_FILES)
def test_schema_is_structural(kind: str) -> None:
    problems = []
    for path, node in walk(openapi(kind)):
        where = path or "(root)"
        for key in ("allOf", "anyOf", "oneOf", "not", "$ref"):
            if key in node:
                problems.append(f"{where}: {key} (keep the schema simple and structural)")
        if node.get("x-kubernetes-int-or-string"):
            if "type" in node:
                problems.append(f"{where}: int-or-string must not set type")
        elif not node.get("type"):
            problems.append(f"{where}: no type")
        if "properties" in node and "additionalProperties" in node:
            problems.append(f"{where}: properties together with additionalProperties")
        if "additionalProperties" in node and not (
            isinstance(node["additionalProperties"], dict)
            and node["additionalProperties"].get("type")
        ):
            problems.append(f"{where}: additionalProperties must be a schema with a type")
        if node.get("type") == "object" and not (
            "properties" in node
            or "additionalProperties" in node
            or node.get("x-kubernetes-preserve-unknown-fields")
            or path == "metadata"
        ):
            problems.append(f"{where}: free-form object without preserve-unknown-fields")
        if node.get("type") == "array" and "items" not in node:
            problems.append(f"{where}: array without items")
        # The API server accepts restrictions of metadata.name/generateName only.
        if path.startswith("metadata") and path not in ("metadata", "metadata.name"):
            problems.append(f"{where}: only name may be described under metadata")
        for req in node.get("required", []):
            if req not in node.get("properties", {}):
                problems.append(f"{where}: required {req} is not a property")
        if "pattern" in node:
            # RE2 (the API server) has no lookaround or backreferences.
            if re.search(r"\(\?[=!<]|\\[1-9]", node["pattern"]):
                problems.append(f"{where}: pattern not RE2-compatible")
            re.compile(node["pattern"])
    assert problems == []


@pytest.mark.parametrize("kind", CRD_FILES)
def test_defaults_are_valid_for_their_field(kind: str) -> None:
    checked = 0
    for path, node in walk(openapi(kind)):
        if "default" in node:
            assert not node.get("nullable"), path
            sub = {k: v for k, v in node.items() if k != "default"}
            default = apply_defaults(copy.deepcopy(node["default"]), node)
            jsonschema.validate(default, to_json_schema(sub))
            checked += 1
    assert checked > 0 or kind == "MetricTemplate"


@pytest.mark.parametrize("kind", CRD_FILES)
def test_printer_columns_point_into_the_schema(kind: str) -> None:
    paths = {p for p, _ in walk(openapi(kind))}
    for column in crd(kind)["spec"]["versions"][0]["additionalPrinterColumns"]:
        json_path = column["jsonPath"]
        assert json_path.startswith(".")
        assert column["type"] in ("integer", "number", "string", "boolean", "date")
        if json_path != ".metadata.creationTimestamp":
            # A filter (`conditions[?(@.type=="Valid")]`) picks items of a list.
            assert re.sub(r"\[\?\(.*?\)\]", "[]", json_path[1:]) in paths, json_path


def test_canary_printer_columns() -> None:
    columns = {
        c["name"]: (c["jsonPath"], c.get("priority", 0))
        for c in crd("Canary")["spec"]["versions"][0]["additionalPrinterColumns"]
    }
    assert columns["Status"] == (".status.phase", 0)
    assert columns["Weight"] == (".status.canaryWeight", 0)
    assert columns["Failed"] == (".status.failedChecks", 0)
    assert columns["LastTransitionTime"] == (".status.lastTransitionTime", 0)
    assert columns["Valid"] == ('.status.conditions[?(@.type=="Valid")].status', 0)
    assert columns["Age"] == (".metadata.creationTimestamp", 0)


# --- the CRD agrees with the model and the validator --------------------------------------


def test_enums_and_patterns_match_the_model() -> None:
    assert at("Canary", "spec.provider")["enum"] == list(model.PROVIDERS)
    assert at("Canary", "spec.analysis.webhooks[].type")["enum"] == list(model.WEBHOOK_TYPES)
    assert at("Canary", "status.phase")["enum"] == [p.value for p in model.Phase]
    assert at("Canary", "status.history")["maxItems"] == model.HISTORY_LIMIT
    for path in (
        "spec.analysis.interval",
        "spec.analysis.metrics[].interval",
        "spec.analysis.webhooks[].timeout",
        "spec.service.timeout",
    ):
        assert at("Canary", path)["pattern"] == DURATION_PATTERN, path
    assert at("Canary", "spec.targetRef.name")["pattern"] == DNS1123_SUBDOMAIN
    assert at("Canary", "spec.service.name")["pattern"] == DNS1035_LABEL
    assert at("Canary", "spec.service.portName")["pattern"] == DNS1123_LABEL
    assert at("Canary", "spec.analysis.webhooks[].url")["pattern"] == HTTP_URL
    assert at("Canary", "spec.metricsServer")["pattern"] == HTTP_URL


def _camel(name: str) -> str:
    head, *rest = name.split("_")
    return head + "".join(part.capitalize() for part in rest)


@pytest.mark.parametrize(
    ("path", "cls"),
    [
        ("status", model.CanaryStatus),
        ("status.conditions[]", model.Condition),
        ("status.history[]", model.HistoryEntry),
        ("status.lastMetrics[]", model.MetricValue),
        ("status.lastRequest", model.RequestAck),
    ],
)
def test_status_schema_mirrors_the_model(path: str, cls: type) -> None:
    fields = {_camel(f.name) for f in dataclasses.fields(cls)}
    assert set(at("Canary", path)["properties"]) == fields


# A Canary that sets every field the CRD defines (outside free-form Istio objects).
FULL = {
    "apiVersion": "kubectl-canary.dev/v1alpha1",
    "kind": "Canary",
    "metadata": {"name": "full", "namespace": "test"},
    "spec": {
        "provider": "gatewayapi",
        "metricsServer": "http://prometheus.monitoring:9090",
        "progressDeadlineSeconds": 120,
        "skipAnalysis": False,
        "suspend": False,
        "revertOnDeletion": True,
        "targetRef": {"apiVersion": "apps/v1", "kind": "Deployment", "name": "web"},
        "autoscalerRef": {
            "apiVersion": "autoscaling/v2",
            "kind": "HorizontalPodAutoscaler",
            "name": "web",
        },
        "service": {
            "name": "web-svc",
            "port": 80,
            "portName": "http",
            "targetPort": "http",
            "portDiscovery": True,
            "appProtocol": "http",
            "gateways": ["mesh"],
            "hosts": ["web.example.com"],
            "gatewayRefs": [{"name": "gw", "namespace": "infra", "sectionName": "https"}],
            "retries": {"attempts": 3},
            "timeout": "15s",
            "headers": {"request": {"set": {"x-a": "b"}}},
            "match": [{"uri": {"prefix": "/"}}],
            "trafficPolicy": {"tls": {"mode": "DISABLE"}},
            "apex": {"labels": {"a": "b"}, "annotations": {"c": "d"}},
            "primary": {"labels": {"a": "b"}, "annotations": {"c": "d"}},
            "canary": {"labels": {"a": "b"}, "annotations": {"c": "d"}},
        },
        "analysis": {
            "interval": "30s",
            "threshold": 3,
            "maxWeight": 30,
            "stepWeight": 5,
            "stepWeights": [10, 20, 30],
            "stepWeightPromotion": 50,
            "iterations": 4,
            "match": [{"headers": {"x-canary": {"exact": "1"}}}],
            "mirror": True,
            "mirrorWeight": 10,
            "primaryReadyThreshold": 90,
            "canaryReadyThreshold": 80,
            "metrics": [
                {
                    "name": "latency",
                    "interval": "1m",
                    "thresholdRange": {"min": 0, "max": 250.5},
                    "templateRef": {
                        "name": "latency",
                        "namespace": "test",
                        "kind": "MetricTemplate",
                    },
                    "templateVariables": {"quantile": "0.95"},
                }
            ],
            "webhooks": [
                {
                    "name": "gate",
                    "type": "confirm-promotion",
                    "url": "https://gate.example.com/ok",
                    "timeout": "5s",
                    "metadata": {"k": "v"},
                }
            ],
        },
    },
}


def _present(doc: Any, path: str) -> bool:
    """Whether `path` (schema notation, `[]` meaning the first item) is set in `doc`."""
    node = doc
    for part in re.findall(r"[^.\[\]]+|\[\]", path):
        if part == "[]":
            if not (isinstance(node, list) and node):
                return False
            node = node[0]
        elif isinstance(node, dict) and part in node:
            node = node[part]
        else:
            return False
    return True


def test_full_canary_covers_the_spec_schema_and_is_valid_everywhere() -> None:
    fields = [p for p, _ in walk(openapi("Canary")) if p.startswith("spec.") and "{}" not in p]
    assert [p for p in fields if not _present(FULL, p)] == []
    assert schema_errors("Canary", FULL) == []
    # The validator reports unknown fields, so this also proves it knows every CRD field.
    assert [str(p) for p in validate_canary(FULL)] == []


# --- samples -------------------------------------------------------------------------------


@pytest.mark.parametrize(("name", "doc"), samples(), ids=[s[0] for s in samples()])
def test_sample_is_accepted_by_the_crd_schema_and_the_validator(
    name: str, doc: dict[str, Any]
) -> None:
    kind = doc["kind"]
    assert kind in CRD_FILES
    assert schema_errors(kind, doc) == []
    if kind == "Canary":
        assert [str(p) for p in validate_canary(doc)] == []
        # The API server applies the CRD defaults before we read the object; the result must
        # not depend on whether it did.
        defaulted = apply_defaults(copy.deepcopy(doc), openapi(kind))
        assert schema_errors(kind, defaulted) == []
        assert parse_canary(defaulted) == parse_canary(doc)
    else:
        assert [str(p) for p in validate_metric_template(doc)] == []
        assert parse_metric_template(doc).query


def test_samples_cover_the_documented_scenarios() -> None:
    canaries = [parse_canary(doc) for _, doc in samples() if doc["kind"] == "Canary"]
    strategies = {(c.spec.provider, c.spec.analysis.strategy) for c in canaries}
    assert {("istio", "canary"), ("gatewayapi", "canary"), ("kubernetes", "canary")} <= strategies
    assert any(s == "blue-green" for _, s in strategies)
    assert any(s == "ab" for _, s in strategies)
    assert any(c.spec.analysis.step_weights for c in canaries)
    assert any(w.type == "confirm-promotion" for c in canaries for w in c.spec.analysis.webhooks)
    assert any(m.template_ref for c in canaries for m in c.spec.analysis.metrics)
    story = next(c for c in canaries if c.name == "mhs")
    assert (story.spec.service.port, story.spec.analysis.interval_seconds) == (9898, 60.0)
    assert (story.spec.analysis.threshold, story.spec.analysis.step_weight) == (5, 10)
    assert story.spec.analysis.max_weight == 50
    bounds = {m.name: m.threshold_range for m in story.spec.analysis.metrics}
    assert bounds["request-success-rate"].min == 99
    assert bounds["request-duration"].max == 500


def test_schema_rejects_what_it_can_express() -> None:
    # A sample of shape errors the API server must refuse on its own (without the agent).
    doc = copy.deepcopy(FULL)
    doc["spec"]["analysis"]["stepWeight"] = 0
    doc["spec"]["analysis"]["interval"] = "1 minute"
    doc["spec"]["provider"] = "linkerd"
    doc["spec"]["service"]["port"] = 70000
    doc["spec"]["analysis"]["webhooks"][0]["type"] = "pre"
    del doc["spec"]["targetRef"]["name"]
    doc["spec"]["analysis"]["sessionAffinity"] = {"cookieName": "c"}
    errors = schema_errors("Canary", doc)
    for fragment in (
        "spec.analysis.stepWeight: 0 is less than the minimum of 1",
        "spec.analysis.interval: '1 minute' does not match",
        "spec.provider: 'linkerd' is not one of",
        "spec.service.port: 70000 is greater than the maximum of 65535",
        "spec.analysis.webhooks.0.type: 'pre' is not one of",
        "spec.targetRef: 'name' is a required property",
        "spec.analysis: Additional properties are not allowed ('sessionAffinity'",
    ):
        assert any(e.startswith(fragment) for e in errors), (fragment, errors)
