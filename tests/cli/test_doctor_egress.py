"""doctor never fetches a tenant's URL from the operator's machine: it says what the agent's
egress policy makes of it, and probes only the agent's own server and allow-list."""

from __future__ import annotations

from kubectl_canary.cli.doctor_checks.metrics import tenant_url_check


def test_a_tenant_url_is_not_probed_but_judged() -> None:
    check = tenant_url_check("http://prom.tenant:9090", [], ["shop/app"])
    assert check is not None and check.result == "warn"
    assert "not probed from this machine" in check.detail


def test_a_url_the_agent_refuses_is_a_failure_naming_why() -> None:
    for url, words in (
        ("http://169.254.169.254/latest", "denied"),
        ("http://10.0.0.5/internal#", "fragment"),
    ):
        check = tenant_url_check(url, [], ["shop/app"])
        assert check is not None and check.result == "fail"
        assert words in check.detail and "shop/app" in check.name


def test_the_agents_allow_list_may_be_probed() -> None:
    assert tenant_url_check("http://127.0.0.1:9090", ["http://127.0.0.1:9090"], ["a"]) is None
