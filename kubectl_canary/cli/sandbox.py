"""`kubectl canary sandbox up|down|status`: a local simulated cluster in the background.

A thin wrapper over kubectl_canary.sandbox.process; the sandbox's state directory holds its
kubeconfig (point KUBECONFIG at it) and its log.
"""

from __future__ import annotations

import importlib.util
from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar

import click

from kubectl_canary.cli.errors import CliError

F = TypeVar("F", bound=Callable[..., Any])


def require_full_install(what: str) -> None:
    """The demo and a local agent run `canary-agent`, which the krew build (the plugin alone,
    the agent ships as an image) does not carry."""
    if importlib.util.find_spec("agent") is None:
        raise CliError(
            f"{what} needs the full package (the krew build is plugin-only): "
            "pipx install kubectl-canary"
        )


def _state_dir_option(f: F) -> F:
    from kubectl_canary.sandbox.process import DEFAULT_STATE_DIR

    return click.option(
        "--state-dir",
        type=click.Path(file_okay=False, path_type=Path),
        default=DEFAULT_STATE_DIR,
        show_default=True,
        help="Where the sandbox keeps its kubeconfig, pid file and log.",
    )(f)


@click.group(
    "sandbox",
    epilog="""\b
Examples:
  kubectl canary sandbox up
  export KUBECONFIG=~/.kube-canary-sandbox/kubeconfig
  kubectl canary init --agent-process
  kubectl canary sandbox down
""",
)
def sandbox() -> None:
    """Run a local simulated cluster (API server, workloads, mesh traffic, metrics)."""


@sandbox.command("up")
@_state_dir_option
@click.option("--speed", type=float, default=1.0, show_default=True, help="Simulation speed-up.")
@click.option("--seed", type=int, default=0, show_default=True, help="Random seed.")
def up(state_dir: Path, speed: float, seed: int) -> None:
    """Start the sandbox in the background (no-op when it already runs)."""
    require_full_install("the sandbox")
    from kubectl_canary.sandbox.process import SandboxError
    from kubectl_canary.sandbox.process import up as start

    try:
        st = start(state_dir, speed=speed, seed=seed)
    except SandboxError as e:
        raise CliError(str(e)) from None
    click.echo(f"sandbox running at {st.url} (pid {st.pid})")
    click.echo(f"export KUBECONFIG={st.kubeconfig}")


@sandbox.command("down")
@_state_dir_option
def down(state_dir: Path) -> None:
    """Stop the background sandbox."""
    from kubectl_canary.sandbox.process import down as stop

    click.echo("sandbox stopped" if stop(state_dir) else "no sandbox was running")


@sandbox.command("status")
@_state_dir_option
def status(state_dir: Path) -> None:
    """Say whether the sandbox runs, and where (exit 1 when it does not)."""
    from kubectl_canary.sandbox.process import status as read

    st = read(state_dir)
    if not st.running:
        raise CliError(f"no sandbox is running (state dir {st.state_dir})")
    click.echo(f"sandbox running at {st.url} (pid {st.pid}); kubeconfig {st.kubeconfig}")
