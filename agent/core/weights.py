"""The traffic schedule of a canary: which weight comes after which.

Flagger's trap, fixed here: with `stepWeight: 20, maxWeight: 50` Flagger goes 20 -> 40 -> 60,
overshooting the maximum the user set. Our schedule is `stepWeight, 2*stepWeight, ...` capped at
`maxWeight`, so it goes 20 -> 40 -> 50 and never routes more than `maxWeight` to the canary.

With `stepWeights` the list itself is the schedule (Flagger: `maxWeight` is then the last entry,
never more than 100); entries that do not increase are dropped so weight never goes down.
"""

from __future__ import annotations

from kubectl_canary.api.model import AnalysisSpec

TOTAL_WEIGHT = 100


def schedule(analysis: AnalysisSpec) -> tuple[int, ...]:
    """The canary weights of a progression in order, each in 1..100, strictly increasing."""
    if analysis.step_weights:
        steps: list[int] = []
        for weight in analysis.step_weights:
            capped = min(TOTAL_WEIGHT, weight)
            if capped > 0 and (not steps or capped > steps[-1]):
                steps.append(capped)
        if steps:
            return tuple(steps)
    top = max(1, min(TOTAL_WEIGHT, analysis.max_weight))
    step = max(1, analysis.step_weight)
    steps = list(range(step, top, step))
    steps.append(top)
    return tuple(steps)


def max_weight(analysis: AnalysisSpec) -> int:
    """The weight at which the canary is promoted."""
    return schedule(analysis)[-1]


def next_weight(analysis: AnalysisSpec, current: int) -> int | None:
    """The first scheduled weight above `current`; None when `current` is at the maximum."""
    for weight in schedule(analysis):
        if weight > current:
            return weight
    return None


def promotion_step(canary_weight: int, step_weight_promotion: int) -> int:
    """The canary weight after one step of routing traffic back to the promoted primary."""
    if step_weight_promotion <= 0:
        return 0
    return max(0, canary_weight - step_weight_promotion)
