"""The plugin's expected failures, and how any of them becomes one line on stderr.

Commands raise `CliError` (or let a `kubectl_canary.resources.KubeError` through); the root group
turns both into `error: <one line>` and exit status 1, never a traceback. `FlagValuesError` is
the exception: a refused flag value is a usage error, exit status 2.
"""

from __future__ import annotations

from typing import IO, Any

import click

from kubectl_canary.resources import (
    ForbiddenError,
    KubeError,
    ResourceTypeMissingError,
)

INIT_HINT = "run `kubectl canary init` to install kubectl-canary"


class CliError(Exception):
    """An expected failure of a command; str() is the one line shown to the user (exit 1)."""


class RefusedError(CliError):
    """The request makes no sense for the canary's state, or the agent refused it."""


class TimeoutExceeded(CliError):
    """A bounded wait ran out."""


class FlagValuesError(CliError):
    """Flag values the command refuses after checking them together: exit 2 like click's usage
    errors, one `error:` line per problem (str() holds them one per line)."""


def one_line(exc: BaseException) -> str:
    """The user-facing text for an expected failure, with a hint where one helps."""
    from kubectl_canary.api.model import GROUP

    text = " ".join(str(exc).split()) or type(exc).__name__
    if isinstance(exc, ResourceTypeMissingError) and GROUP in text:
        return f"the kubectl-canary CRDs are not installed in this cluster: {INIT_HINT}"
    if isinstance(exc, ForbiddenError) and "forbidden" not in text.lower():
        return f"forbidden: {text}"
    return text


class PluginFailure(click.ClickException):
    """Carries an expected failure through click so it prints like kubectl's errors (exit 1,
    click's code for a ClickException)."""

    def show(self, file: IO[Any] | None = None) -> None:
        for line in self.message.splitlines():
            click.echo(f"error: {line}", err=True)


class PluginUsageFailure(PluginFailure):
    """A FlagValuesError through click: its lines, exit 2."""

    exit_code = 2


def as_click_error(exc: BaseException) -> PluginFailure:
    if isinstance(exc, FlagValuesError):
        lines = [" ".join(line.split()) for line in str(exc).splitlines() if line.strip()]
        return PluginUsageFailure("\n".join(lines))
    if isinstance(exc, CliError | KubeError):
        return PluginFailure(one_line(exc))
    raise TypeError(f"not an expected failure: {exc!r}")
