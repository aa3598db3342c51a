"""`kubectl canary resume NAME`: continue a paused release from where it stopped."""

from __future__ import annotations

import click

from kubectl_canary.api.model import RequestAction
from kubectl_canary.cli.options import Session, kube_options, name_argument, timeout_option
from kubectl_canary.cli.request import send


@click.command(
    "resume",
    epilog="""\b
Examples:
  kubectl canary resume mhs -n shop
""",
)
@name_argument()
@kube_options()
@timeout_option(60, "the agent to acknowledge")
def resume(session: Session, name: str, timeout: float) -> None:
    """Continue a paused release from where it stopped."""
    ack = send(session, name, RequestAction.RESUME, timeout=timeout)
    click.echo(f"canary {name}: resume accepted" + (f": {ack.message}" if ack.message else ""))
