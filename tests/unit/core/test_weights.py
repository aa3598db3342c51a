"""The traffic schedule: stepWeight capped at maxWeight, stepWeights as given."""

from __future__ import annotations

import pytest

from agent.core.weights import max_weight, next_weight, promotion_step, schedule
from tests.unit.core.builders import analysis


@pytest.mark.parametrize(
    ("overrides", "expected"),
    [
        ({"step_weight": 10, "max_weight": 50}, (10, 20, 30, 40, 50)),
        # Flagger goes 20 -> 40 -> 60; the last step stops at maxWeight instead.
        ({"step_weight": 20, "max_weight": 50}, (20, 40, 50)),
        ({"step_weight": 30, "max_weight": 100}, (30, 60, 90, 100)),
        ({"step_weight": 60, "max_weight": 50}, (50,)),
        ({"step_weight": 5, "max_weight": 5}, (5,)),
        ({"step_weight": 10, "max_weight": 150}, tuple(range(10, 101, 10))),
        ({"step_weights": (1, 5, 10, 25, 50)}, (1, 5, 10, 25, 50)),
        # stepWeights win over maxWeight (Flagger); entries above 100 are capped.
        ({"step_weights": (10, 80), "max_weight": 50}, (10, 80)),
        ({"step_weights": (50, 120)}, (50, 100)),
        # entries that do not increase are dropped: weight never goes down.
        ({"step_weights": (10, 5, 20, 20, 30)}, (10, 20, 30)),
        ({"step_weights": (0, -5)}, (10, 20, 30, 40, 50)),
        ({"step_weight": 0, "max_weight": 3}, (1, 2, 3)),
    ],
)
def test_schedule(overrides: dict[str, object], expected: tuple[int, ...]) -> None:
    spec = analysis(**overrides)
    assert schedule(spec) == expected
    assert max_weight(spec) == expected[-1]


@pytest.mark.parametrize(
    ("current", "expected"),
    [(0, 20), (20, 40), (30, 40), (40, 50), (50, None), (70, None)],
)
def test_next_weight(current: int, expected: int | None) -> None:
    assert next_weight(analysis(step_weight=20, max_weight=50), current) == expected


@pytest.mark.parametrize(
    ("weight", "step", "expected"),
    [(50, 20, 30), (30, 20, 10), (10, 20, 0), (50, 0, 0), (0, 10, 0)],
)
def test_promotion_step(weight: int, step: int, expected: int) -> None:
    assert promotion_step(weight, step) == expected
