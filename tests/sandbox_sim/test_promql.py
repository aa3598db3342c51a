"""The sandbox's own answers to the built-in queries, from its counter history."""

from __future__ import annotations

import math

import pytest

from kubectl_canary.sandbox.simulation.metrics import (
    DURATION_BUCKETS_MS,
    LABEL_NAMES,
    MetricsRegistry,
)
from kubectl_canary.sandbox.simulation.promql import answer_query, format_value

# Flagger's Istio built-in queries (pkg/metrics/observers/istio.go), rendered for test/mhs/1m,
# byte for byte (its trailing spaces are written \x20).
SUCCESS_RATE = """
	sum(
		rate(
			istio_requests_total{
				reporter="destination",
				destination_workload_namespace="test",
				destination_workload=~"mhs",
				response_code!~"5.*"
			}[1m]
		)
	)\x20
	/\x20
	sum(
		rate(
			istio_requests_total{
				reporter="destination",
				destination_workload_namespace="test",
				destination_workload=~"mhs"
			}[1m]
		)
	)\x20
	* 100"""
DURATION_P99 = """
	histogram_quantile(
		0.99,
		sum(
			rate(
				istio_request_duration_milliseconds_bucket{
					reporter="destination",
					destination_workload_namespace="test",
					destination_workload=~"mhs"
				}[1m]
			)
		) by (le)
	)"""


class Clock:
    def __init__(self) -> None:
        self.now = 1_000_000.0

    def __call__(self) -> float:
        return self.now


def key(workload: str, code: str, namespace: str = "test") -> tuple[str, ...]:
    labels = dict.fromkeys(LABEL_NAMES, "x")
    labels.update(
        reporter="destination",
        destination_workload=workload,
        destination_workload_namespace=namespace,
        response_code=code,
    )
    return tuple(labels[name] for name in LABEL_NAMES)


def in_bucket(bound: float, count: int) -> list[int]:
    buckets = [0] * (len(DURATION_BUCKETS_MS) + 1)
    buckets[DURATION_BUCKETS_MS.index(bound)] = count
    return buckets


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
def registry(clock: Clock) -> MetricsRegistry:
    """Old traffic (outside the 1m window) that must not count, then 60 s of new traffic."""
    registry = MetricsRegistry(clock=clock)
    registry.record(key("mhs", "500"), 1000, 1000 * 50.0, in_bucket(50, 1000))
    registry.snapshot()
    clock.now += 60
    registry.snapshot()
    registry.record(key("mhs", "200"), 400, 400 * 20.0, in_bucket(25, 400))
    registry.record(key("mhs", "500"), 300, 300 * 40.0, in_bucket(50, 300))
    registry.record(key("mhs-primary", "200"), 5000, 5000 * 5.0, in_bucket(5, 5000))
    registry.record(key("mhs", "200", namespace="other"), 77, 77.0, in_bucket(1, 77))
    clock.now += 60
    return registry


def value_of(response: dict) -> float:
    assert response["status"] == "success", response
    (sample,) = response["data"]["result"]
    return float(sample["value"][1])


def test_success_rate_over_the_window(registry: MetricsRegistry) -> None:
    assert value_of(answer_query(registry, SUCCESS_RATE)) == pytest.approx(400 / 700 * 100)


def test_success_rate_of_the_primary_by_regex(registry: MetricsRegistry) -> None:
    query = SUCCESS_RATE.replace('=~"mhs"', '=~"mhs-primary"')
    assert value_of(answer_query(registry, query)) == pytest.approx(100.0)
    # Regexes are fully anchored, as in Prometheus: "mhs" does not select "mhs-primary".
    both = SUCCESS_RATE.replace('=~"mhs"', '=~"mhs.*"')
    assert value_of(answer_query(registry, both)) == pytest.approx(5400 / 5700 * 100)


def test_p99_interpolates_within_the_bucket(registry: MetricsRegistry) -> None:
    # 700 requests: 400 in (10, 25], 300 in (25, 50]; rank 693 lies in the second bucket.
    expected = 25 + (50 - 25) * (0.99 * 700 - 400) / 300
    assert value_of(answer_query(registry, DURATION_P99)) == pytest.approx(expected)


def test_same_query_on_one_line_and_prometheus_json_shape(registry: MetricsRegistry) -> None:
    one_line = " ".join(SUCCESS_RATE.split())
    response = answer_query(registry, one_line)
    assert response["data"]["resultType"] == "vector"
    (sample,) = response["data"]["result"]
    assert sample["metric"] == {}
    timestamp, text = sample["value"]
    assert isinstance(timestamp, float) and isinstance(text, str)
    assert float(text) == pytest.approx(57.142857142857146)


def test_no_series_gives_an_empty_result(registry: MetricsRegistry) -> None:
    query = SUCCESS_RATE.replace('"test"', '"nowhere"')
    response = answer_query(registry, query)
    assert response == {"status": "success", "data": {"resultType": "vector", "result": []}}


def test_series_without_traffic_in_the_window_give_nan(clock: Clock) -> None:
    registry = MetricsRegistry(clock=clock)
    registry.record(key("mhs", "200"), 10, 10.0, in_bucket(1, 10))
    registry.snapshot()
    clock.now += 120
    registry.snapshot()
    assert math.isnan(value_of(answer_query(registry, SUCCESS_RATE)))
    assert math.isnan(value_of(answer_query(registry, DURATION_P99)))


def test_scalar_and_increase(registry: MetricsRegistry) -> None:
    assert answer_query(registry, "1 + 2 * 3")["data"] == {
        "resultType": "scalar",
        "result": [registry.view().now, "7"],
    }
    query = 'sum(increase(istio_requests_total{destination_workload="mhs-primary"}[1m]))'
    assert value_of(answer_query(registry, query)) == 5000


def test_vector_of_a_scalar_is_a_one_sample_vector(registry: MetricsRegistry) -> None:
    assert value_of(answer_query(registry, "vector(1)")) == 1
    refused = answer_query(registry, "vector(istio_requests_total)")
    assert refused["status"] == "error" and "scalar" in refused["error"]


@pytest.mark.parametrize(
    "query",
    [
        "avg(rate(istio_requests_total[1m]))",
        "sum(rate(istio_requests_total[1m])) > 3",
        "sum without (le) (rate(istio_requests_total[1m]))",
        'sum(rate(istio_requests_total{reporter=~"("}[1m]))',
        "sum(rate(istio_requests_total[1m])",
    ],
)
def test_other_queries_are_refused_clearly(registry: MetricsRegistry, query: str) -> None:
    response = answer_query(registry, query)
    assert response["status"] == "error"
    assert response["errorType"] == "bad_data"
    assert "use a real Prometheus" in response["error"]


def test_format_value() -> None:
    assert format_value(57.0) == "57"
    assert format_value(1e-7) == "0.0000001"
    assert format_value(math.nan) == "NaN"
    assert format_value(math.inf) == "+Inf"
