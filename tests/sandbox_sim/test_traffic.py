"""Simulated mesh traffic on the real store, checked through the sandbox's own query answers.

Statistical tolerances: each share is asserted within 5 standard deviations of its binomial
estimate for the number of requests actually observed, so a correct simulation fails with
probability < 1e-6 while a wrong split or profile (e.g. 80/20, or errors on the primary) fails.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from types import SimpleNamespace
from typing import Any

import pytest
import yaml

from kubectl_canary.sandbox.simulation import Simulation
from kubectl_canary.sandbox.store import Store

SPEED = 10.0
MIN_CANARY_REQUESTS = 400


def total_requests(sim: Simulation, workload: str, code: str | None = None) -> float:
    code_matcher = f',response_code="{code}"' if code else ""
    query = (
        'sum(increase(istio_requests_total{reporter="destination",'
        f'destination_workload_namespace="test",destination_workload="{workload}"'
        f"{code_matcher}}}[1h]))"
    )
    result = sim.answer_query(query)["data"]["result"]
    return float(result[0]["value"][1]) if result else 0.0


def success_rate(sim: Simulation, workload: str) -> float:
    selector = (
        'reporter="destination",destination_workload_namespace="test",'
        f'destination_workload=~"{workload}"'
    )
    query = (
        f'sum(rate(istio_requests_total{{{selector},response_code!~"5.*"}}[1h])) / '
        f"sum(rate(istio_requests_total{{{selector}}}[1h])) * 100"
    )
    response = sim.answer_query(query)
    (sample,) = response["data"]["result"]
    return float(sample["value"][1])


def within(observed: float, expected_share: float, trials: float) -> bool:
    """observed share within 5 sd of a binomial share over `trials` requests."""
    sd = math.sqrt(expected_share * (1 - expected_share) / trials)
    return abs(observed - expected_share) <= 5 * sd + 1e-9


VS_CRD = {
    "apiVersion": "apiextensions.k8s.io/v1",
    "kind": "CustomResourceDefinition",
    "metadata": {"name": "virtualservices.networking.istio.io"},
    "spec": {
        "group": "networking.istio.io",
        "names": {
            "kind": "VirtualService",
            "plural": "virtualservices",
            "singular": "virtualservice",
        },
        "scope": "Namespaced",
        "versions": [
            {
                "name": "v1beta1",
                "served": True,
                "storage": True,
                "schema": {
                    "openAPIV3Schema": {
                        "type": "object",
                        "x-kubernetes-preserve-unknown-fields": True,
                    }
                },
            }
        ],
    },
}


def traffic_config(store: Store, apps: list[dict[str, Any]], profiles: dict[str, Any]) -> None:
    body = {
        "apiVersion": "v1",
        "kind": "ConfigMap",
        "metadata": {"name": "sandbox-traffic", "namespace": "kube-system"},
        "data": {"apps": yaml.safe_dump(apps), "profiles": yaml.safe_dump(profiles)},
    }
    try:
        current = store.get("v1", "ConfigMap", "kube-system", "sandbox-traffic")
    except Exception:
        store.create(body)
        return
    current["data"] = body["data"]
    store.update(current)


@pytest.fixture
def canary_app(store: Store, h: SimpleNamespace) -> None:
    """mhs-primary (healthy 1.1.2, 2 pods) and mhs (canary 1.1.3, 1 pod) with their Services."""
    store.create(VS_CRD)
    primary = h.deployment("mhs-primary", "ghcr.io/acme/mhs:1.1.2", replicas=2)
    primary["spec"]["template"]["metadata"]["labels"]["version"] = "1.1.2"
    store.create(primary)
    store.create(h.deployment("mhs", "ghcr.io/acme/mhs:1.1.3", replicas=1))
    store.create(h.service("mhs", app="mhs-primary"))
    store.create(h.service("mhs-primary"))
    store.create(h.service("mhs-canary", app="mhs"))


def wait_for_requests(h: SimpleNamespace, sim: Simulation, workload: str, count: int) -> None:
    h.wait_for(
        lambda: total_requests(sim, workload) >= count,
        timeout=60,
        what=f"{count} requests to {workload}",
    )


def test_weighted_split_and_version_profiles(
    store: Store, start_simulation: Callable[..., Simulation], h: SimpleNamespace, canary_app: None
) -> None:
    sim = start_simulation(speed=SPEED)
    store.create(h.virtual_service("mhs", [("mhs-primary", 90), ("mhs-canary", 10)]))
    traffic_config(
        store,
        apps=[{"namespace": "test", "service": "mhs", "rps": 300}],
        profiles={"1.1.3": {"errorRate": 0.5}},
    )
    wait_for_requests(h, sim, "mhs", MIN_CANARY_REQUESTS)
    canary = total_requests(sim, "mhs")
    primary = total_requests(sim, "mhs-primary")
    assert within(canary / (canary + primary), 0.10, canary + primary)
    errors = total_requests(sim, "mhs", code="500")
    assert within(errors / canary, 0.5, canary)
    assert total_requests(sim, "mhs-primary", code="500") == 0
    assert success_rate(sim, "mhs-primary") == 100.0
    assert abs(success_rate(sim, "mhs") - 50.0) <= 15.0

    # p99 of the healthy default profile (p50 50 ms, p99 150 ms) lies in the (100, 250] bucket.
    p99 = sim.answer_query(
        "histogram_quantile(0.99, sum(rate(istio_request_duration_milliseconds_bucket{reporter="
        '"destination",destination_workload_namespace="test",'
        'destination_workload=~"mhs-primary"}[1h])) by (le))'
    )
    assert 100 < float(p99["data"]["result"][0]["value"][1]) <= 250

    metrics = sim.render_metrics()
    assert 'destination_version="1.1.2"' in metrics
    assert 'destination_service="mhs-canary.test.svc.cluster.local"' in metrics
    assert 'connection_security_policy="mutual_tls"' in metrics


def test_header_rules_forced_codes_and_runtime_reconfiguration(
    store: Store, start_simulation: Callable[..., Simulation], h: SimpleNamespace, canary_app: None
) -> None:
    sim = start_simulation(speed=SPEED)
    match = [{"headers": {"x-canary": {"exact": "insider"}}}]
    vs = h.virtual_service("mhs", [("mhs-canary", 100)], match=match)
    vs["spec"]["http"].append({"route": [{"destination": {"host": "mhs-primary"}}]})
    store.create(vs)
    apps = [
        {
            "namespace": "test",
            "service": "mhs",
            "rps": 300,
            "requests": [
                {"share": 0.3, "headers": {"x-canary": "insider"}},
                {"share": 0.2, "headers": {"X-Mirror-Code": "500"}},
            ],
        }
    ]
    traffic_config(store, apps, profiles={})
    wait_for_requests(h, sim, "mhs", MIN_CANARY_REQUESTS)
    canary, primary = total_requests(sim, "mhs"), total_requests(sim, "mhs-primary")
    assert within(canary / (canary + primary), 0.3, canary + primary)
    # Only the forced-500 class fails, and it is routed to the primary.
    assert total_requests(sim, "mhs", code="500") == 0
    assert within(total_requests(sim, "mhs-primary", code="500") / primary, 0.2 / 0.7, primary)

    # A new profile through the ConfigMap takes effect while the simulation runs.
    traffic_config(store, apps, profiles={"1.1.3": {"errorRate": 1.0}})
    h.wait_for(
        lambda: total_requests(sim, "mhs", code="500") >= 50, timeout=60, what="canary errors"
    )


def test_no_ready_endpoint_is_a_503_seen_by_the_source(
    store: Store, start_simulation: Callable[..., Simulation], h: SimpleNamespace
) -> None:
    sim = start_simulation(speed=SPEED)
    store.create(h.deployment("broken", "acme/broken:1-crashloop", replicas=1))
    store.create(h.service("broken"))
    traffic_config(store, [{"namespace": "test", "service": "broken", "rps": 100}], {})
    query = (
        'sum(increase(istio_requests_total{reporter="source",response_code="503",'
        'destination_service_name="broken",response_flags="UH"}[1h]))'
    )
    h.wait_for(
        lambda: (r := sim.answer_query(query)["data"]["result"]) and float(r[0]["value"][1]) > 10,
        what="503s reported by the source",
    )
    assert 'reporter="destination"' not in sim.render_metrics()


def test_exposition_is_well_formed(
    store: Store, start_simulation: Callable[..., Simulation], h: SimpleNamespace, canary_app: None
) -> None:
    sim = start_simulation(speed=SPEED)
    traffic_config(store, [{"namespace": "test", "service": "mhs", "rps": 500}], {})
    wait_for_requests(h, sim, "mhs-primary", 100)
    text = sim.render_metrics()
    samples: dict[str, float] = {}
    for line in text.splitlines():
        if line.startswith("#"):
            assert line.split()[1] in ("HELP", "TYPE")
            continue
        name_and_labels, value = line.rsplit(" ", 1)
        samples[name_and_labels] = float(value)
    assert "# TYPE istio_requests_total counter" in text
    assert "# TYPE istio_request_duration_milliseconds histogram" in text
    count_name = "istio_request_duration_milliseconds_count"
    counts = {k: v for k, v in samples.items() if k.startswith(count_name)}
    assert counts
    for name, count in counts.items():
        labels = name[len(count_name) :]
        inf = "istio_request_duration_milliseconds_bucket" + labels[:-1] + ',le="+Inf"}'
        assert samples[inf] == count
        assert samples["istio_requests_total" + labels] == count
