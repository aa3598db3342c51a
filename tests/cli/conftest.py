"""Fixtures for CLI tests: a fake cluster, pinned time, and golden-file comparison."""

from __future__ import annotations

import os
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path

import pytest
from click.testing import CliRunner, Result

from kubectl_canary.cli.main import cli
from kubectl_canary.cli.options import KubeFlags, Runtime
from tests.store_client import StoreClient

NOW = datetime(2026, 11, 27, 10, 0, 0, tzinfo=UTC)
GOLDEN = Path(__file__).parent / "golden"


class VirtualClock:
    """Time that moves only when the code under test sleeps: no test waits for real."""

    def __init__(self) -> None:
        self.t = 1000.0
        self.on_sleep: list[Callable[[float], None]] = []

    def monotonic(self) -> float:
        return self.t

    def sleep(self, seconds: float) -> None:
        self.t += seconds
        for hook in list(self.on_sleep):
            hook(self.t)


@pytest.fixture
def fake() -> StoreClient:
    return StoreClient(namespace="test")


@pytest.fixture
def clock() -> VirtualClock:
    return VirtualClock()


@pytest.fixture
def run(fake: StoreClient, clock: VirtualClock) -> Callable[..., Result]:
    def connect(flags: KubeFlags) -> StoreClient:
        return fake

    def invoke(
        *args: str,
        input: str | None = None,
        terminal: tuple[int, int] | None = None,
        env: dict[str, str | None] | None = None,
    ) -> Result:
        """`terminal=(columns, lines)` makes the command believe stdout is a terminal; the
        tester's own NO_COLOR is unset unless `env` sets it."""
        runtime = Runtime(
            connect=connect, clock=lambda: NOW, monotonic=clock.monotonic, sleep=clock.sleep
        )
        if terminal is not None:
            runtime.is_terminal = lambda: True
            runtime.terminal_size = lambda: terminal
        return CliRunner().invoke(
            cli,
            list(args),
            obj=runtime,
            input=input,
            color=terminal is not None,
            env={"NO_COLOR": None, **(env or {})},
        )

    return invoke


@pytest.fixture
def golden() -> Callable[[str, str], None]:
    """Compare text with tests/cli/golden/NAME; UPDATE_GOLDEN=1 rewrites the file."""

    def check(name: str, text: str) -> None:
        path = GOLDEN / name
        if os.environ.get("UPDATE_GOLDEN") == "1":
            path.write_text(text)
        assert path.exists(), f"golden file {path} is missing (run with UPDATE_GOLDEN=1)"
        assert text == path.read_text(), f"output differs from {path}"

    return check
