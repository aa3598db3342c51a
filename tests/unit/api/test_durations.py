from __future__ import annotations

import re

import pytest
from hypothesis import given
from hypothesis import strategies as st

from kubectl_canary.api.durations import DURATION_PATTERN, format_duration, parse_duration


@pytest.mark.parametrize(
    ("text", "seconds"),
    [
        ("30s", 30.0),
        ("1m", 60.0),
        ("60s", 60.0),
        ("1h30m", 5400.0),
        ("500ms", 0.5),
        ("1.5s", 1.5),
        ("2m30s", 150.0),
        ("1h0m10s", 3610.0),
        ("1m1ms", 60.001),
        ("0.1s", 0.1),
    ],
)
def test_parse(text: str, seconds: float) -> None:
    assert parse_duration(text) == seconds
    assert re.match(DURATION_PATTERN, text)  # the CRD accepts exactly what we parse


@pytest.mark.parametrize(
    "text", ["", "30", "1 m", "-1s", "1d", "1us", "s", "1.s", ".5s", "1m 30s", "1M"]
)
def test_parse_rejects(text: str) -> None:
    with pytest.raises(ValueError, match="duration"):
        parse_duration(text)
    assert not re.match(DURATION_PATTERN, text)


@pytest.mark.parametrize(
    ("seconds", "text"),
    [
        (0, "0s"),
        (0.5, "500ms"),
        (30, "30s"),
        (60, "1m"),
        (90, "1m30s"),
        (3600, "1h"),
        (5400.25, "1h30m250ms"),
    ],
)
def test_format(seconds: float, text: str) -> None:
    assert format_duration(seconds) == text


def test_format_rejects_negative() -> None:
    with pytest.raises(ValueError):
        format_duration(-1)


@given(st.integers(min_value=1, max_value=10 * 24 * 3600 * 1000))
def test_format_then_parse_round_trips(millis: int) -> None:
    assert parse_duration(format_duration(millis / 1000)) == millis / 1000
