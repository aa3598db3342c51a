"""`kubectl canary promote NAME [--skip-analysis]`: finish the release early."""

from __future__ import annotations

import click

from kubectl_canary.api.model import RequestAction
from kubectl_canary.cli.options import Session, kube_options, name_argument, timeout_option
from kubectl_canary.cli.request import send


@click.command(
    "promote",
    epilog="""\b
Examples:
  kubectl canary promote mhs                  # pass the waiting confirm-promotion gate
  kubectl canary promote mhs --skip-analysis  # promote now, skipping the remaining steps
""",
)
@name_argument()
@kube_options()
@click.option(
    "--skip-analysis", is_flag=True, help="Promote now, skipping the remaining analysis steps."
)
@timeout_option(60, "the agent to acknowledge")
def promote(session: Session, name: str, skip_analysis: bool, timeout: float) -> None:
    """Promote the canary: continue past the confirm-promotion gate, or skip the analysis."""
    ack = send(session, name, RequestAction.PROMOTE, skip_analysis=skip_analysis, timeout=timeout)
    click.echo(f"canary {name}: promote accepted" + (f": {ack.message}" if ack.message else ""))
