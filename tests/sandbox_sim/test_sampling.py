"""Seeded samplers: their averages match the distribution within stated tolerances.

Tolerances are 5 standard deviations of the estimate, so a correct sampler fails with
probability < 1e-6 whatever the seed, while a biased one (e.g. an off-by-one share) fails.
"""

from __future__ import annotations

import math
import random

import pytest

from kubectl_canary.sandbox.simulation.metrics import DURATION_BUCKETS_MS
from kubectl_canary.sandbox.simulation.sampling import (
    LogNormalLatency,
    binomial,
    multinomial,
    poisson,
)


@pytest.mark.parametrize("trials,p", [(10, 0.3), (50, 0.5), (10_000, 0.1), (100_000, 0.5)])
def test_binomial_mean(trials: int, p: float) -> None:
    rng = random.Random(1)
    draws = [binomial(rng, trials, p) for _ in range(400)]
    mean = sum(draws) / len(draws)
    sd_of_mean = math.sqrt(trials * p * (1 - p) / len(draws))
    assert abs(mean - trials * p) < 5 * sd_of_mean
    assert all(0 <= d <= trials for d in draws)


def test_binomial_edges() -> None:
    rng = random.Random(1)
    assert binomial(rng, 0, 0.5) == 0
    assert binomial(rng, 1000, 0.0) == 0
    assert binomial(rng, 1000, 1.0) == 1000


@pytest.mark.parametrize("mean", [0.5, 12.0, 5000.0])
def test_poisson_mean(mean: float) -> None:
    rng = random.Random(2)
    draws = [poisson(rng, mean) for _ in range(400)]
    assert abs(sum(draws) / len(draws) - mean) < 5 * math.sqrt(mean / len(draws))


def test_multinomial_conserves_total_and_splits_by_weight() -> None:
    rng = random.Random(3)
    counts = multinomial(rng, 100_000, [90, 10, 0])
    assert sum(counts) == 100_000
    assert counts[2] == 0
    # sd of the 10% share = sqrt(1e5 * 0.1 * 0.9) ~ 95
    assert abs(counts[1] - 10_000) < 5 * 95


def test_lognormal_percentiles_match_profile() -> None:
    latency = LogNormalLatency(50, 200)
    assert latency.cdf(50) == pytest.approx(0.5)
    assert latency.cdf(200) == pytest.approx(0.99)
    rng = random.Random(4)
    samples = sorted(latency.sample(rng) for _ in range(20_000))
    assert samples[10_000] == pytest.approx(50, rel=0.05)
    assert samples[19_800] == pytest.approx(200, rel=0.15)


@pytest.mark.parametrize("count", [40, 50_000])  # exact path and bucket-count path
def test_histogram_has_count_and_plausible_sum(count: int) -> None:
    latency = LogNormalLatency(50, 200)
    per_bucket, total = latency.sample_histogram(random.Random(5), count, DURATION_BUCKETS_MS)
    assert len(per_bucket) == len(DURATION_BUCKETS_MS) + 1
    assert sum(per_bucket) == count
    assert total / count == pytest.approx(latency.mean(), rel=0.25)
    # Half the requests are at most 50 ms (the bucket bound equals the median).
    at_most_50 = sum(per_bucket[: DURATION_BUCKETS_MS.index(50) + 1])
    assert abs(at_most_50 - count / 2) < 5 * math.sqrt(count / 4) + 1
