"""Time flags take durations as kubectl and argo do (240s, 4m, 1h30m, 500ms) or seconds."""

from __future__ import annotations

import click
import pytest

from kubectl_canary.cli.durations import DURATION
from tests.cli import samples


@pytest.mark.parametrize(
    ("text", "seconds"),
    [
        ("240s", 240.0),
        ("4m", 240.0),
        ("240", 240.0),
        ("1h30m", 5400.0),
        ("1.5s", 1.5),
        ("500ms", 0.5),
        ("0", 0.0),
        ("2.5", 2.5),
    ],
)
def test_durations_and_plain_seconds(text, seconds):
    assert DURATION.convert(text, None, None) == seconds


@pytest.mark.parametrize("text", ["-5", "-1m", "5x", "soon", "", "1m-", "inf", "nan", "1e3"])
def test_garbage_and_negative_are_refused(text):
    with pytest.raises(click.BadParameter):
        DURATION.convert(text, None, None)


@pytest.mark.parametrize("value", ["240s", "4m", "240"])
def test_status_wait_timeout_in_any_spelling(run, fake, clock, value):
    samples.release(fake, phase="Succeeded", weight=0)  # a leftover success: never done
    result = run("status", "mhs", "--wait", "--timeout", value)
    assert result.exit_code == 1
    # The progress line shows the phase it found; the outcome is the last line.
    assert result.stderr.splitlines()[-1] == (
        "error: timed out after 240s waiting for canary mhs (phase Succeeded)"
    )
    assert clock.t - 1000 == 240  # waited exactly that long, on the virtual clock


@pytest.mark.parametrize(
    ("args", "flag"),
    [
        (["status", "mhs", "--wait", "--timeout", "4x"], "--timeout"),
        (["promote", "mhs", "--timeout", "-1m"], "--timeout"),
        (["init", "--timeout", "later"], "--timeout"),
        (["logs", "mhs", "--since", "-10m"], "--since"),
        (["create", "mhs", "--port", "80", "--interval", "5x"], "--interval"),
        (["demo", "--interval", "fast"], "--interval"),
        (["status", "--request-timeout", "1d"], "--request-timeout"),
    ],
)
def test_a_bad_duration_is_a_usage_error_naming_the_flag(run, args, flag):
    result = run(*args)
    assert result.exit_code == 2
    assert f"Invalid value for '{flag}'" in result.stderr


def test_help_shows_defaults_as_durations(run):
    assert "[default: 10m]" in run("status", "--help").output
    assert "[default: 1m]" in run("promote", "--help").output
