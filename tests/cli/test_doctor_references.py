"""doctor checks every object a Canary references, and says which are missing and where."""

from __future__ import annotations

import json
from typing import Any

import pytest

from kubectl_canary.resources import ForbiddenError
from tests.cli import samples

Obj = dict[str, Any]
NS = "shop"


@pytest.fixture
def gateway_crds(fake):
    """The Istio and Gateway API Gateway CRDs (the shared fake serves only the routing kinds)."""
    from kubectl_canary.sandbox.__main__ import PACKAGED_MESH_CRDS, crd_paths
    from kubectl_canary.sandbox.crd_files import load_crds

    for crd in load_crds(crd_paths(PACKAGED_MESH_CRDS, [])):
        if crd["spec"]["names"]["kind"] == "Gateway":
            fake.add(crd)


def canary(name: str, provider: str, **spec: Any) -> Obj:
    """A Canary the agent has not picked up yet (no status), as right after `kubectl apply`."""
    obj = samples.canary(name, namespace=NS, provider=provider)
    del obj["status"]
    obj["spec"].update(spec)
    return obj


def with_template(obj: Obj, template_name: str) -> Obj:
    obj["spec"]["analysis"]["metrics"].append(
        {"name": "errors", "templateRef": {"name": template_name}, "thresholdRange": {"max": 1}}
    )
    return obj


def checks(run) -> dict[str, Obj]:
    result = run("doctor", "-o", "json")
    return {c["name"]: c for c in json.loads(result.stdout)}


def test_a_canary_whose_target_does_not_exist_fails_with_a_hint_naming_its_namespace(run, fake):
    fake.add(canary("nope", "kubernetes"))
    result = run("doctor")
    assert result.exit_code == 1
    line = next(x for x in result.output.splitlines() if "canary shop/nope references" in x)
    assert line.startswith("FAIL") and "deployment/nope (spec.targetRef)" in line
    hint = next(x for x in result.output.splitlines() if x.startswith("  canary shop/nope ref"))
    assert "kubectl -n shop edit canary nope" in hint


def test_every_kind_of_reference_is_checked_and_each_missing_one_named(run, fake, gateway_crds):
    fake.add(samples.deployment("web", "ghcr.io/acme/web:1", namespace=NS))
    fake.add(samples.metric_template("errors", NS, secret="prom-auth"))  # its Secret is missing
    istio = canary(
        "web",
        "istio",
        autoscalerRef={
            "apiVersion": "autoscaling/v2",
            "kind": "HorizontalPodAutoscaler",
            "name": "web",
        },
        service={"port": 80, "gateways": ["mesh", "edge", "ingress/public"]},
    )
    fake.add(with_template(istio, "errors"))
    api = canary(
        "api",
        "gatewayapi",
        targetRef={"apiVersion": "apps/v1", "kind": "Deployment", "name": "web"},
        service={"name": "api", "port": 80, "gatewayRefs": [{"name": "gw", "namespace": "infra"}]},
    )
    fake.add(with_template(api, "latency"))  # no such template

    found = checks(run)
    web = found["canary shop/web references"]
    assert web["result"] == "fail"
    missing = web["detail"].removeprefix("missing: ").split("; ")
    assert missing == [
        "horizontalpodautoscaler/web (spec.autoscalerRef)",
        "secret/prom-auth (spec.analysis.metrics[2].templateRef provider.secretRef)",
        "gateway/edge (spec.service.gateways[1])",
        "gateway/ingress/public (spec.service.gateways[2])",
    ]  # the target and the template exist; `mesh` is no object
    assert "-n shop" in web["hint"]
    assert found["canary shop/api references"]["detail"] == (
        "missing: metrictemplate/latency (spec.analysis.metrics[2].templateRef); "
        "gateway/infra/gw (spec.service.gatewayRefs[0])"
    )


def test_references_all_present_are_ok(run, fake, gateway_crds):
    fake.add(samples.deployment("web", "ghcr.io/acme/web:1", namespace=NS))
    fake.add(samples.metric_template("errors", NS, secret="prom-auth"))
    fake.add(
        {"apiVersion": "v1", "kind": "Secret", "metadata": {"name": "prom-auth", "namespace": NS}}
    )
    fake.add(
        {
            "apiVersion": "networking.istio.io/v1beta1",
            "kind": "Gateway",
            "metadata": {"name": "edge", "namespace": NS},
            "spec": {"servers": []},
        }
    )
    fake.add(
        with_template(canary("web", "istio", service={"port": 80, "gateways": ["edge"]}), "errors")
    )
    check = checks(run)["canary shop/web references"]
    assert check == {
        "name": "canary shop/web references",
        "result": "ok",
        "detail": "present: deployment/web, metrictemplate/errors, secret/prom-auth, gateway/edge",
        "hint": "",
    }


def test_a_secret_doctor_may_not_read_is_a_warning_not_a_failure(run, fake):
    fake.add(samples.deployment("web", "ghcr.io/acme/web:1", namespace=NS))
    fake.add(samples.metric_template("errors", NS, secret="prom-auth"))
    fake.add(with_template(canary("web", "kubernetes"), "errors"))
    fake.fail("get", "Secret", ForbiddenError("secrets is forbidden", 403, "Forbidden"), times=None)
    check = checks(run)["canary shop/web references"]
    assert check["result"] == "warn"
    assert check["detail"] == (
        "secret/prom-auth (spec.analysis.metrics[2].templateRef provider.secretRef): "
        "cannot check (forbidden)"
    )


def test_an_invalid_canary_fails_listing_every_problem(run, fake):
    # Two mistakes the CRD schema cannot see (they relate fields), so the API server took it.
    bad = canary("bad", "gatewayapi")
    bad["spec"]["analysis"]["match"] = [{"headers": {"x-canary": {"exact": "1"}}}]
    fake.add(bad)
    check = checks(run)["canary shop/bad"]
    assert check["result"] == "fail"
    assert check["detail"].startswith("invalid: ")
    assert "spec.analysis.match: A/B testing needs" in check["detail"]
    assert "; spec.service.gatewayRefs: required by provider gatewayapi" in check["detail"]
    assert check["hint"] == "fix the spec: kubectl -n shop edit canary bad"
    assert "canary shop/bad references" not in checks(run)


def test_doctor_writes_nothing(run, fake, gateway_crds):
    fake.add(with_template(canary("web", "istio", service={"port": 80, "gateways": ["edge"]}), "x"))
    run("doctor")
    assert fake.writes == []
