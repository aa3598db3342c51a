"""The operator's policy on tenant fields (agent/policy.py): routing fields and the URLs a
Canary would make the agent call, judged before anything is done for it."""

from __future__ import annotations

from typing import Any

import pytest

from agent.policy import RoutingPolicy, TenantPolicy, spec_problem
from agent.wiring import secret_allows
from kubectl_canary.api.model import (
    AnalysisSpec,
    Canary,
    CanarySpec,
    GatewayRef,
    MetricSpec,
    MetricTemplate,
    ServiceSpec,
    TargetRef,
    TemplateRef,
    WebhookSpec,
)
from kubectl_canary.egress.policy import EgressPolicy


def canary(
    analysis: AnalysisSpec | None = None, server: str | None = None, **service: Any
) -> Canary:
    return Canary(
        namespace="shop",
        name="app",
        spec=CanarySpec(
            target_ref=TargetRef("app"),
            service=ServiceSpec(port=80, **service),
            analysis=analysis or AnalysisSpec(),
            metrics_server=server,
        ),
    )


DEFAULT = TenantPolicy()


@pytest.mark.parametrize(
    ("service", "words"),
    [
        ({"gateways": ("istio-system/public-gateway",)}, "istio-system/public-gateway"),
        (
            {"gateways": ("public-gateway.istio-system.svc.cluster.local",)},
            "istio-system/public-gateway",
        ),
        ({"gateway_refs": (GatewayRef("gw", "infra"),)}, "infra/gw"),
        ({"hosts": ("*",)}, "(*)"),
        ({"hosts": ("*.example.com",)}, "wildcard"),
        ({"hosts": ("payments.bank.svc.cluster.local",)}, "namespace bank"),
        ({"traffic_policy": {"tls": {"mode": "DISABLE"}}}, "DISABLE"),
        (
            {"traffic_policy": {"portLevelSettings": [{"tls": {"mode": "disable"}}]}},
            "DISABLE",
        ),
    ],
)
def test_routing_fields_outside_the_policy_are_refused(service: dict[str, Any], words: str) -> None:
    problem = spec_problem(canary(**service), {}, DEFAULT, "")
    assert problem is not None and words in problem


def test_own_namespace_and_allowed_routing_pass() -> None:
    own = canary(
        gateways=("mesh", "shop/gw", "local-gw"),
        gateway_refs=(GatewayRef("gw"), GatewayRef("gw", "shop")),
        hosts=("app.example.com", "app.shop.svc.cluster.local"),
        traffic_policy={"tls": {"mode": "ISTIO_MUTUAL"}},
    )
    assert spec_problem(own, {}, DEFAULT, "") is None
    widened = TenantPolicy(routing=RoutingPolicy.build(["istio-system/*", "infra/gw"], True, True))
    shared = canary(
        gateways=("istio-system/public-gateway",),
        gateway_refs=(GatewayRef("gw", "infra"),),
        hosts=("*",),
        traffic_policy={"tls": {"mode": "DISABLE"}},
    )
    assert spec_problem(shared, {}, widened, "") is None


def test_bad_gateway_entries_are_reported() -> None:
    with pytest.raises(ValueError, match="NAMESPACE/NAME"):
        RoutingPolicy.build(["public-gateway"])


def analysis(*metrics: MetricSpec, hooks: tuple[WebhookSpec, ...] = ()) -> AnalysisSpec:
    return AnalysisSpec(metrics=tuple(metrics), webhooks=hooks)


def template(address: str | None) -> MetricTemplate:
    return MetricTemplate("shop", "t", "prometheus", "up", provider_address=address)


def test_urls_the_canary_would_call_are_prechecked() -> None:
    templated = MetricSpec("t", template_ref=TemplateRef("t"))
    builtin = MetricSpec("request-success-rate")
    hook = WebhookSpec("gate", "http://169.254.169.254/latest/", timeout_seconds=5)
    c = canary(analysis(templated, builtin, hooks=(hook,)), server="http://127.0.0.1:9090")
    problem = spec_problem(c, {"t": template("http://[::1]:9090")}, DEFAULT, "")
    assert problem is not None
    assert "MetricTemplate t: provider.address: egress to http://[::1]:9090 denied" in problem
    assert "spec.metricsServer: egress to http://127.0.0.1:9090 denied" in problem
    assert "webhook gate: url: egress to http://169.254.169.254 denied" in problem


def test_the_metrics_server_is_judged_only_when_a_check_uses_it() -> None:
    templated = MetricSpec("t", template_ref=TemplateRef("t"))
    c = canary(analysis(templated), server="http://127.0.0.1:9090")
    assert spec_problem(c, {"t": template("http://prom.monitoring:9090")}, DEFAULT, "") is None
    allowed = TenantPolicy(egress=EgressPolicy.build(["http://127.0.0.1:9090"]))
    builtin = canary(analysis(MetricSpec("request-success-rate")), server="http://127.0.0.1:9090")
    assert spec_problem(builtin, {}, allowed, "") is None


@pytest.mark.parametrize(
    ("annotation", "address", "allowed"),
    [
        ("http://prom.monitoring:9090", "http://prom.monitoring:9090", True),
        ("https://a, http://prom.monitoring:9090/", "http://prom.monitoring:9090", True),
        ("http://prom.monitoring:9090/tenant", "http://prom.monitoring:9090/tenant", True),
        ("http://prom.monitoring:9090/tenant", "http://prom.monitoring:9090/other", False),
        ("http://prom.monitoring:9090", "http://prom.monitoring:9091", False),
        ("http://prom.monitoring:9090", "https://prom.monitoring:9090", False),
        ("", "http://prom.monitoring:9090", False),
        ("not a url", "http://prom.monitoring:9090", False),
    ],
)
def test_a_secret_goes_only_to_addresses_its_owner_listed(
    annotation: str, address: str, allowed: bool
) -> None:
    assert secret_allows(annotation, address) is allowed


def toolkit_with(secret: dict[str, Any] | None) -> Any:
    from agent.wiring import ProviderToolkit

    return ProviderToolkit(lambda ns, name: secret, agent_namespace="platform")


def credentials_error(secret: dict[str, Any] | None, tmpl: MetricTemplate) -> str | None:
    templated = MetricSpec("t", template_ref=TemplateRef("t"))
    result = toolkit_with(secret).query_metric(canary(analysis(templated)), templated, tmpl, "")
    return result.error


SECURED = MetricTemplate(
    "shop", "t", "prometheus", "up", provider_address="http://prom.monitoring:9090", secret_ref="s"
)


def test_credentials_need_their_owners_word_and_never_a_service_account_token() -> None:
    plain = {"metadata": {"name": "s"}, "data": {"token": "dG9r"}}
    assert "Secret shop/s is not marked for this address" in str(credentials_error(plain, SECURED))
    token = {**plain, "type": "kubernetes.io/service-account-token"}
    assert "service-account token" in str(credentials_error(token, SECURED))
    assert "Secret shop/s not found" in str(credentials_error(None, SECURED))
    cluster = MetricTemplate(
        "", "t", "prometheus", "up", "http://prom:9090", "s", kind="ClusterMetricTemplate"
    )
    assert "Secret platform/s not found" in str(credentials_error(None, cluster))
