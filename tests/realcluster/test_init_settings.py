"""`kubectl canary init` converges and remembers, through the installed plugin on a real API
server: a second run with one different flag changes only that setting, says so, and the
record on the ServiceAccount survives the server's validation and a round trip through etcd.

The install goes into the test's own namespace, watching only that namespace: no cluster-wide
binding is planned, so the tier's own install (namespace kubectl-canary) is left as it is.
"""

from __future__ import annotations

import json

import pytest

from kubectl_canary.cli.install_settings import SETTINGS_ANNOTATION
from tests.realcluster.bed import Bed

pytestmark = [pytest.mark.realcluster]

AGENT = "kubectl-canary-agent"


def agent_args(bed: Bed, ns: str) -> list[str]:
    done = bed.kubectl(
        "-n",
        ns,
        "get",
        "deployment",
        AGENT,
        "-o",
        "jsonpath={.spec.template.spec.containers[0].args}",
    )
    return list(json.loads(done.stdout))


def recorded(bed: Bed, ns: str) -> dict[str, object]:
    sa = json.loads(bed.kubectl("-n", ns, "get", "serviceaccount", AGENT, "-o", "json").stdout)
    return dict(json.loads(sa["metadata"]["annotations"][SETTINGS_ANNOTATION]))


@pytest.mark.timeout(180)
def test_a_second_init_keeps_what_it_is_not_told_to_change(bed: Bed, ns: str) -> None:
    base = ("canary", "init", "-n", ns, "--no-wait")
    first = bed.kubectl(
        *base, "--watch-namespace", ns, "--provider", "istio", "--metrics-server", "http://p:9090"
    )
    assert first.stdout.splitlines()[:3] == [
        "provider: kubernetes -> istio",
        "metrics-server: (none) -> http://p:9090",
        f"watch-namespace: (all) -> {ns}",
    ], first.stdout
    assert f"deployment/{AGENT} created" in first.stdout

    second = bed.kubectl(*base, "--provider", "gatewayapi")
    assert second.stdout.splitlines()[0] == "provider: istio -> gatewayapi", second.stdout
    assert not [line for line in second.stdout.splitlines() if " -> " in line][1:]
    assert f"deployment/{AGENT} configured" in second.stdout
    assert "clusterrolebinding" not in second.stdout  # still namespaced: nothing pruned, none made
    args = agent_args(bed, ns)
    assert "--provider=gatewayapi" in args
    assert "--metrics-server=http://p:9090" in args
    assert f"--watch-namespace={ns}" in args
    stored = recorded(bed, ns)
    assert stored["provider"] == "gatewayapi"
    assert stored["metricsServer"] == "http://p:9090"
    assert stored["watchNamespace"] == [ns]

    third = bed.kubectl(*base)
    assert third.stdout.splitlines()[0] == "settings: no change", third.stdout
    assert f"deployment/{AGENT} unchanged" in third.stdout
    assert f"serviceaccount/{AGENT} unchanged" in third.stdout
