"""`kubectl canary abort NAME`: stop the release and roll back to the primary."""

from __future__ import annotations

import click

from kubectl_canary.api.model import RequestAction
from kubectl_canary.cli.options import Session, kube_options, name_argument, timeout_option
from kubectl_canary.cli.request import send


@click.command(
    "abort",
    epilog="""\b
Examples:
  kubectl canary abort mhs -n shop
""",
)
@name_argument()
@kube_options()
@timeout_option(60, "the agent to acknowledge")
def abort(session: Session, name: str, timeout: float) -> None:
    """Roll the release back now: all traffic to the primary, canary scaled to zero."""
    ack = send(session, name, RequestAction.ABORT, timeout=timeout)
    click.echo(f"canary {name}: abort accepted" + (f": {ack.message}" if ack.message else ""))
