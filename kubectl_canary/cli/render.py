"""Output primitives shared by commands: kubectl-style tables, ages, YAML and JSON.

Tables go through tabulate (the design card's table library), imported on the first table so
that commands printing none (`--help`, completion, `convert`) do not pay its ~30 ms.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from datetime import UTC, datetime
from functools import cache
from typing import Any


def table(headers: Sequence[str], rows: Sequence[Sequence[Any]]) -> str:
    """Columns separated by three spaces, headers upper-case, like `kubectl get`.

    tabulate counts what a terminal shows (escapes take no room), so coloured cells line up
    with plain ones; cells are text as given (no number parsing or alignment), as kubectl
    prints them."""
    import tabulate as tabulate_module

    # tabulate pads every header by two columns for its framed formats; kubectl does not.
    tabulate_module.MIN_PADDING = 0
    cells = [["" if c is None else str(c) for c in r] for r in rows]
    text = tabulate_module.tabulate(
        cells,
        headers=[str(h).upper() for h in headers],
        tablefmt=_kubectl_format(),
        disable_numparse=True,
        stralign="left",
    )
    return "\n".join(line.rstrip() for line in text.splitlines())


@cache
def _kubectl_format() -> Any:
    from tabulate import DataRow, TableFormat

    row = DataRow("", "   ", "")
    return TableFormat(None, None, None, None, row, row, padding=0, with_header_hide=None)


def one_line(text: str) -> str:
    """A multi-line message (the agent lists a spec's problems one a line) on one line."""
    lines = [line.strip() for line in text.splitlines() if line.strip()]
    if len(lines) > 1 and lines[0].endswith(":"):
        return lines[0] + " " + " · ".join(lines[1:])
    return " · ".join(lines)


def to_json(data: Any) -> str:
    return json.dumps(data, indent=2, sort_keys=False)


def to_yaml(data: Any) -> str:
    import yaml

    dumper = getattr(yaml, "CSafeDumper", yaml.SafeDumper)
    return str(yaml.dump(data, Dumper=dumper, sort_keys=False, default_flow_style=False))


def yaml_documents(docs: Sequence[Any]) -> str:
    return "---\n".join(to_yaml(d) for d in docs)


def parse_time(value: str | None) -> datetime | None:
    if not value:
        return None
    try:
        parsed = datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        return None
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)


def human_duration(seconds: float) -> str:
    """kubectl's short durations: 45s, 3m20s, 12m, 2h30m, 5h, 3d4h, 20d."""
    s = max(0, int(seconds))
    if s < 120:
        return f"{s}s"
    m = s // 60
    if m < 10:
        return f"{m}m{s % 60}s" if s % 60 else f"{m}m"
    if m < 180:
        return f"{m}m"
    h = m // 60
    if h < 8:
        return f"{h}h{m % 60}m" if m % 60 else f"{h}h"
    if h < 48:
        return f"{h}h"
    d = h // 24
    if d < 8:
        return f"{d}d{h % 24}h" if h % 24 else f"{d}d"
    return f"{d}d"


def age(value: str | None, now: datetime) -> str:
    """How long ago an RFC 3339 time was, or '<unknown>'."""
    when = parse_time(value)
    if when is None:
        return "<unknown>"
    return human_duration((now - when).total_seconds())


def fmt_number(value: float | None) -> str:
    """Metric values: no trailing zeros, at most two decimals ('99.5', '57.14', '120')."""
    if value is None:
        return "no data"
    text = f"{value:.2f}".rstrip("0").rstrip(".")
    return text if text != "-0" else "0"
