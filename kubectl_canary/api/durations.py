"""Durations as the spec writes them ("30s", "1m", "1h30m", "500ms", "1.5s").

Accepted syntax, documented in the CRD: one or more `<number><unit>` groups, number being digits
with an optional fraction, unit one of `ms`, `s`, `m`, `h`. It is a subset of Go's
`time.ParseDuration` (what Flagger and Istio accept), without signs, `us`/`ns`, or a bare `0`.
The CRD uses DURATION_PATTERN verbatim, so the API server and this module agree.
"""

from __future__ import annotations

import re

DURATION_PATTERN = r"^([0-9]+(\.[0-9]+)?(ms|s|m|h))+$"

_GROUP = re.compile(r"([0-9]+(?:\.[0-9]+)?)(ms|s|m|h)")
_WHOLE = re.compile(DURATION_PATTERN)
_UNIT_SECONDS = {"ms": 0.001, "s": 1.0, "m": 60.0, "h": 3600.0}


def parse_duration(text: str) -> float:
    """Seconds in `text`; ValueError when it does not match DURATION_PATTERN."""
    if not isinstance(text, str) or not _WHOLE.match(text):
        raise ValueError(f"not a duration like 30s, 1m, 1h30m or 500ms: {text!r}")
    total = sum(float(number) * _UNIT_SECONDS[unit] for number, unit in _GROUP.findall(text))
    # Rounding to whole microseconds keeps "0.1s" + "0.2s"-style sums from showing float noise.
    return round(total, 6)


def format_duration(seconds: float) -> str:
    """The shortest spec string for `seconds`: 90 -> "1m30s", 0.5 -> "500ms", 3600 -> "1h"."""
    if seconds < 0:
        raise ValueError(f"negative duration: {seconds}")
    millis = round(seconds * 1000)
    if millis == 0:
        return "0s"
    hours, millis = divmod(millis, 3_600_000)
    minutes, millis = divmod(millis, 60_000)
    secs, millis = divmod(millis, 1000)
    parts = []
    if hours:
        parts.append(f"{hours}h")
    if minutes:
        parts.append(f"{minutes}m")
    if secs:
        parts.append(f"{secs}s")
    if millis:
        parts.append(f"{millis}ms")
    return "".join(parts)
