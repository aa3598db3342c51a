"""RFC 3339 timestamps as the status stores them (UTC, second precision, 'Z').

The core never reads a clock: `now` is a parameter of `decide`, and every stored time is
derived from it here, so the same inputs always give the same status.
"""

from __future__ import annotations

from datetime import UTC, datetime


def format_time(moment: datetime) -> str:
    """`moment` as '2026-01-02T03:04:05Z'; a naive datetime is taken to be UTC already."""
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def parse_time(text: str) -> datetime | None:
    """The datetime of an RFC 3339 string, or None for an empty or unreadable one."""
    if not text:
        return None
    try:
        parsed = datetime.fromisoformat(text)
    except ValueError:
        return None
    if parsed.tzinfo is None:
        parsed = parsed.replace(tzinfo=UTC)
    return parsed


def seconds_since(text: str, now: datetime) -> float | None:
    """Seconds from the stored time `text` to `now`, or None when `text` is not a time."""
    then = parse_time(text)
    if then is None:
        return None
    if now.tzinfo is None:
        now = now.replace(tzinfo=UTC)
    return (now - then).total_seconds()
