"""Seeded random counts for batches of simulated requests.

Traffic is generated in batches (thousands of requests per tick at high rates), so requests are
never drawn one by one: batch sizes, error counts and latency buckets are sampled as counts.
Small counts are drawn exactly; large ones use the normal approximation, whose error is far
below the statistical tolerance any test or analysis can observe.
"""

from __future__ import annotations

import math
import random
from collections.abc import Sequence

# Above this many trials the normal approximation of a binomial/Poisson is used.
_EXACT_LIMIT = 64
# z-score of the 99th percentile of a standard normal distribution.
_Z99 = 2.3263478740408408


def poisson(rng: random.Random, mean: float) -> int:
    """Number of requests arriving in a batch whose expected size is `mean`."""
    if mean <= 0:
        return 0
    if mean < _EXACT_LIMIT:
        # Knuth's product method: exact and cheap for small means.
        limit = math.exp(-mean)
        count, product = 0, rng.random()
        while product > limit:
            count += 1
            product *= rng.random()
        return count
    return max(0, round(rng.gauss(mean, math.sqrt(mean))))


def binomial(rng: random.Random, trials: int, p: float) -> int:
    """How many of `trials` independent requests hit an event of probability `p`."""
    if trials <= 0 or p <= 0:
        return 0
    if p >= 1:
        return trials
    if trials <= _EXACT_LIMIT:
        return sum(1 for _ in range(trials) if rng.random() < p)
    mean = trials * p
    draw = round(rng.gauss(mean, math.sqrt(mean * (1 - p))))
    return min(trials, max(0, draw))


def multinomial(rng: random.Random, trials: int, weights: Sequence[float]) -> list[int]:
    """Split `trials` among categories proportionally to `weights` (conditional binomials)."""
    counts = [0] * len(weights)
    remaining_weight = float(sum(w for w in weights if w > 0))
    remaining = trials
    for index, weight in enumerate(weights):
        if remaining <= 0 or remaining_weight <= 0:
            break
        if weight <= 0:
            continue
        share = min(1.0, weight / remaining_weight)
        drawn = binomial(rng, remaining, share)
        counts[index] = drawn
        remaining -= drawn
        remaining_weight -= weight
    return counts


class LogNormalLatency:
    """Latency distribution given by its median and 99th percentile, in milliseconds."""

    def __init__(self, p50_ms: float, p99_ms: float) -> None:
        if p50_ms <= 0 or p99_ms < p50_ms:
            raise ValueError(f"need 0 < p50 <= p99, got p50={p50_ms} p99={p99_ms}")
        self.mu = math.log(p50_ms)
        self.sigma = (math.log(p99_ms) - self.mu) / _Z99

    def mean(self) -> float:
        return math.exp(self.mu + self.sigma * self.sigma / 2)

    def cdf(self, value_ms: float) -> float:
        if value_ms <= 0:
            return 0.0
        if self.sigma == 0:
            return 1.0 if value_ms >= math.exp(self.mu) else 0.0
        z = (math.log(value_ms) - self.mu) / (self.sigma * math.sqrt(2))
        return 0.5 * (1 + math.erf(z))

    def sample(self, rng: random.Random) -> float:
        return rng.lognormvariate(self.mu, self.sigma)

    def sample_histogram(
        self, rng: random.Random, count: int, bounds: Sequence[float]
    ) -> tuple[list[int], float]:
        """Per-bucket (non-cumulative) counts for `count` requests, plus the sum of latencies.

        `bounds` are the finite upper bounds; the returned list has one more slot for +Inf.
        """
        per_bucket = [0] * (len(bounds) + 1)
        if count <= 0:
            return per_bucket, 0.0
        if count <= _EXACT_LIMIT:
            total = 0.0
            for _ in range(count):
                value = self.sample(rng)
                total += value
                per_bucket[_bucket_index(bounds, value)] += 1
            return per_bucket, total
        probabilities = []
        previous = 0.0
        for bound in bounds:
            current = self.cdf(bound)
            probabilities.append(current - previous)
            previous = current
        probabilities.append(1.0 - previous)
        return multinomial(rng, count, probabilities), count * self.mean()


def _bucket_index(bounds: Sequence[float], value: float) -> int:
    for index, bound in enumerate(bounds):
        if value <= bound:
            return index
    return len(bounds)
