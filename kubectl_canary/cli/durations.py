"""The click type of every time flag: what kubectl and argo take, in seconds.

`--timeout 240s`, `--timeout 4m`, `--timeout 1h30m`, `--timeout 500ms` and `--timeout 240` all
mean what they say: a Go-style duration parsed by the spec's own parser (api/durations.py, so the
CLI and the CRD agree on the syntax), or a plain number of seconds as `kubectl wait` accepts.
Anything else, or a negative value, is click's usage error naming the flag (exit 2).

This module imports only click and the pure duration parser: commands that need no cluster
declare time flags too, and must start without the cluster libraries.
"""

from __future__ import annotations

import re
from typing import Any

import click

from kubectl_canary.api.durations import parse_duration

_PLAIN_SECONDS = re.compile(r"^[0-9]+(\.[0-9]+)?$")


# click 8.5 made ParamType generic; subscripting it would break the click 8.1 we support.
class Duration(click.ParamType):  # type: ignore[type-arg]
    """A duration flag; the command receives float seconds."""

    name = "duration"

    def convert(
        self, value: Any, param: click.Parameter | None, ctx: click.Context | None
    ) -> float:
        if isinstance(value, int | float) and not isinstance(value, bool):
            if value >= 0:
                return float(value)  # a default declared in seconds
            self.fail(f"must not be negative: {value:g}", param, ctx)
        text = str(value).strip()
        if text.startswith("-"):
            self.fail(f"must not be negative: {text}", param, ctx)
        if _PLAIN_SECONDS.match(text):
            return float(text)
        try:
            return parse_duration(text)
        except ValueError:
            self.fail(
                f"{text!r} is not a duration like 240s, 5m, 1h30m, 500ms or a number of seconds",
                param,
                ctx,
            )


DURATION = Duration()
