"""`kubectl canary version`: the plugin's version and, when reachable, the agent's."""

from __future__ import annotations

import click

from kubectl_canary import __version__
from kubectl_canary.cli.agent_info import find_agent
from kubectl_canary.cli.options import Session, kube_options, output_option
from kubectl_canary.cli.render import to_json, to_yaml
from kubectl_canary.resources import KubeError


@click.command(
    "version",
    epilog="""\b
Examples:
  kubectl canary version
  kubectl canary version --client -o json
""",
)
@kube_options()
@output_option("json", "yaml")
@click.option("--client", is_flag=True, help="Only the plugin's version (no cluster needed).")
@click.option(
    "--agent-namespace", default=None, metavar="NS", help="Where the agent runs (default: found)."
)
def version(
    session: Session, output: str | None, client: bool, agent_namespace: str | None
) -> None:
    """Print the plugin version and the version of the agent in the cluster."""
    info: dict[str, str] = {"plugin": __version__}
    if not client:
        try:
            agent = find_agent(session.kube, agent_namespace)
            info["agent"] = agent.version if agent else "not installed"
            if agent:
                info["agentLocation"] = agent.location
        except KubeError as e:
            info["agent"] = f"unknown ({e})"
    if output == "json":
        click.echo(to_json(info))
    elif output == "yaml":
        click.echo(to_yaml(info), nl=False)
    else:
        click.echo(f"Plugin version: {info['plugin']}")
        if "agent" in info:
            where = f" ({info['agentLocation']})" if "agentLocation" in info else ""
            click.echo(f"Agent version:  {info['agent']}{where}")
