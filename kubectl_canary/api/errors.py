"""Problems found in a resource, and the one exception that carries them.

Validation reports every problem at once (a user fixing a Canary should not have to re-apply it
once per mistake), each naming the field path and the value found, e.g.
`spec.analysis.stepWeight: must be 1..100, got 0`.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

# Sentinel for "the field is absent": distinct from an explicit null, which is a value found.
MISSING: Any = type("Missing", (), {"__repr__": lambda self: "<missing>"})()


@dataclass(frozen=True)
class Problem:
    path: str  # e.g. "spec.analysis.metrics[1].thresholdRange"
    message: str  # e.g. "must be 1..100"
    value: Any = MISSING  # the value found; MISSING when the field is absent

    def __str__(self) -> str:
        if self.value is MISSING:
            return f"{self.path}: {self.message}"
        return f"{self.path}: {self.message}, got {show_value(self.value)}"


def show_value(value: Any) -> str:
    """A short, unambiguous rendering: strings quoted, so `got '10'` differs from `got 10`."""
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, str):
        return repr(value)
    if isinstance(value, float) and value.is_integer():
        return str(int(value))  # YAML's 600 may arrive as 600.0; show what the user wrote
    if isinstance(value, dict):
        return "an object" if value else "{}"
    if isinstance(value, list):
        return f"a list of {len(value)}" if value else "[]"
    return str(value)


class InvalidResource(ValueError):
    """A Canary, MetricTemplate, status or request that cannot be used, with every problem."""

    def __init__(self, what: str, problems: list[Problem]) -> None:
        self.what = what
        self.problems = list(problems)
        lines = "\n".join(f"  {p}" for p in self.problems)
        super().__init__(f"invalid {what}:\n{lines}")
