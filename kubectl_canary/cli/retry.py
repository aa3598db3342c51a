"""`kubectl canary retry NAME`: analyse the current (failed) revision again, without changing it."""

from __future__ import annotations

import click

from kubectl_canary.api.model import RequestAction
from kubectl_canary.cli.options import Session, kube_options, name_argument, timeout_option
from kubectl_canary.cli.request import send


@click.command(
    "retry",
    epilog="""\b
Examples:
  kubectl canary retry mhs -n shop
""",
)
@name_argument()
@kube_options()
@timeout_option(60, "the agent to acknowledge")
def retry(session: Session, name: str, timeout: float) -> None:
    """Analyse the current (failed) revision again, without changing it."""
    ack = send(session, name, RequestAction.RETRY, timeout=timeout)
    click.echo(f"canary {name}: retry accepted" + (f": {ack.message}" if ack.message else ""))
