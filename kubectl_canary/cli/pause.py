"""`kubectl canary pause NAME`: freeze the release where it is until `resume`."""

from __future__ import annotations

import click

from kubectl_canary.api.model import RequestAction
from kubectl_canary.cli.options import Session, kube_options, name_argument, timeout_option
from kubectl_canary.cli.request import send


@click.command(
    "pause",
    epilog="""\b
Examples:
  kubectl canary pause mhs -n shop
""",
)
@name_argument()
@kube_options()
@timeout_option(60, "the agent to acknowledge")
def pause(session: Session, name: str, timeout: float) -> None:
    """Freeze the release where it is (weights and replicas stay); resume continues it."""
    ack = send(session, name, RequestAction.PAUSE, timeout=timeout)
    click.echo(f"canary {name}: pause accepted" + (f": {ack.message}" if ack.message else ""))
