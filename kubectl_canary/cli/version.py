"""`kubectl canary version`: the plugin's version and, when reachable, the agent's.

Like `kubectl version` without a server, the plugin's version is printed whatever happens, and
the command fails (one line on stderr, exit 1) when the agent's cannot be told: the cluster
does not answer, the agent is not installed, or nothing runs it (no replica holds its Lease).
`--client` asks no cluster and cannot fail.
"""

from __future__ import annotations

import click

from kubectl_canary import __version__
from kubectl_canary.cli.agent_info import find_agent
from kubectl_canary.cli.errors import INIT_HINT, CliError, one_line
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
    failure = None if client else agent_version(session, agent_namespace, info)
    if output == "json":
        click.echo(to_json(info))
    elif output == "yaml":
        click.echo(to_yaml(info), nl=False)
    else:
        click.echo(f"Plugin version: {info['plugin']}")
        if "agent" in info:
            where = f" ({info['agentLocation']})" if "agentLocation" in info else ""
            click.echo(f"Agent version:  {info['agent']}{where}")
    if failure:
        raise CliError(failure)


def agent_version(
    session: Session, agent_namespace: str | None, info: dict[str, str]
) -> str | None:
    """Add the agent's version and location to `info`; the reason it cannot, or None."""
    try:
        agent = find_agent(session.kube, agent_namespace)
    except KubeError as e:
        return f"cannot read the agent's version: {one_line(e)}"
    if agent is None:
        return f"the agent is not installed: {INIT_HINT}"
    info["agent"] = agent.version
    info["agentLocation"] = agent.location
    if agent.leader is None:
        return (
            f"the agent in namespace {agent.namespace} is not running: no replica holds its "
            "Lease; run `kubectl canary doctor`"
        )
    return None
