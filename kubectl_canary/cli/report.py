"""`kubectl canary report [NAME]`: a support bundle, a zip with what someone troubleshooting a
release asks for first (after CloudNativePG's `kubectl cnpg report`).

Per Canary in scope: the Canary, the objects generated for it and those it references, and the
Events about them; the agent's Deployment, Lease, pods, logs and /metrics; doctor's checks;
versions; and README.txt, an index saying what is inside, what could not be collected and why,
and when it was taken. Secret values are redacted unless --include-secrets. Only reads.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import click

from kubectl_canary.cli.options import Session, kube_options, name_argument

if TYPE_CHECKING:
    from datetime import datetime

    from kubectl_canary.cli.report_bundle import Bundle, Obj

DEFAULT_LOGS_SINCE = "24h"


def _since_seconds(ctx: click.Context, param: click.Parameter, value: str) -> int:
    from kubectl_canary.api.durations import parse_duration

    try:
        seconds = parse_duration(value)
    except ValueError as e:
        raise click.BadParameter(str(e)) from None
    if seconds <= 0:
        raise click.BadParameter(f"must be more than 0, got {value!r}")
    return max(1, int(seconds))


def take_report(
    session: Session,
    name: str | None,
    include_secrets: bool,
    since_seconds: int,
    agent_namespace: str | None,
) -> tuple[Bundle, list[str]]:
    """Collect the bundle; return it and README.txt's header lines."""
    from kubectl_canary import __version__
    from kubectl_canary.cli.agent_info import DEFAULT_NAMESPACE
    from kubectl_canary.cli.doctor import agent_default_provider, run_checks
    from kubectl_canary.cli.render import to_json
    from kubectl_canary.cli.report_agent import collect_agent
    from kubectl_canary.cli.report_bundle import Bundle
    from kubectl_canary.cli.report_canaries import EventCache, collect_canary
    from kubectl_canary.resources import ConfigError, KubeError, UnreachableError

    kube = session.kube
    taken = session.now()
    bundle = Bundle(taken, include_secrets)
    # An API server that cannot be reached leaves nothing to collect: say so, write nothing.
    try:
        server = kube.server_version()
    except (ConfigError, UnreachableError):
        raise
    except KubeError as e:
        bundle.missing("the API server's version", str(e))
        server = {}
    canaries = _canaries_in_scope(bundle, session, name)
    events = EventCache(kube)
    info = collect_agent(bundle, kube, agent_namespace, since_seconds, taken, events)
    agent_ns = info.namespace if info else agent_namespace or DEFAULT_NAMESPACE
    for obj in canaries:
        collect_canary(bundle, kube, obj, events, agent_default_provider(info), agent_ns)
    checks = bundle.attempt("doctor.json", lambda: run_checks(session, agent_namespace))
    if checks is not None:
        doc = to_json([c.__dict__ for c in checks])
        bundle.add("doctor.json", doc + "\n", "`kubectl canary doctor -o json` (cluster-wide)")
    versions = {
        "plugin": __version__,
        "agent": info.version if info else "not found",
        "agentLocation": info.location if info else "",
        "server": server.get("gitVersion", "unknown"),
    }
    bundle.add("version.json", to_json(versions) + "\n", "plugin, agent and API server versions")
    header = _header(session, name, len(canaries), since_seconds, include_secrets, taken)
    return bundle, header


def _header(
    session: Session,
    name: str | None,
    found: int,
    since_seconds: int,
    include_secrets: bool,
    taken: datetime,
) -> list[str]:
    """README.txt's first lines: when, by what, of what, and what was left out on purpose."""
    from kubectl_canary import __version__
    from kubectl_canary.cli.render import human_duration

    if name:
        scope = f"canary {name} in namespace {session.namespace}"
    elif session.all_namespaces:
        scope = "the canaries of all namespaces"
    else:
        scope = f"the canaries of namespace {session.namespace}"
    secrets = (
        "values INCLUDED (--include-secrets): share this file only with who may read them"
        if include_secrets
        else "values redacted (names and keys kept), as are env values named like credentials"
    )
    kube = session.kube
    return [
        "kubectl-canary support bundle",
        "",
        f"Taken:      {taken:%Y-%m-%dT%H:%M:%SZ} by kubectl-canary {__version__}",
        f"Cluster:    {kube.server}, context {kube.context_name}",
        f"Scope:      {scope} ({found} found)",
        f"Agent logs: the last {human_duration(since_seconds)}",
        f"Secrets:    {secrets}",
        "Removed:    metadata.managedFields, the last-applied-configuration annotation",
    ]


def _canaries_in_scope(bundle: Bundle, session: Session, name: str | None) -> list[Obj]:
    """The Canaries to report on, by namespace and name. A named Canary that does not exist is
    the user's mistake (an error); one that cannot be read is a missing part."""
    from kubectl_canary.cli.api_names import CANARY_API_VERSION
    from kubectl_canary.cli.reads import get_canary
    from kubectl_canary.resources import KubeError

    kube = session.kube
    if name:
        try:
            return [get_canary(kube, session.namespace, name)]
        except KubeError as e:  # not found is a CliError, and ends the command
            bundle.missing("canaries", str(e))
            return []
    listed = bundle.attempt(
        "canaries", lambda: kube.list(CANARY_API_VERSION, "Canary", session.list_namespace)[0]
    )
    return sorted(listed or [], key=lambda c: (c["metadata"]["namespace"], c["metadata"]["name"]))


def human_size(size: int) -> str:
    if size < 1024:
        return f"{size} B"
    if size < 1024 * 1024:
        return f"{size / 1024:.1f} KiB"
    return f"{size / 1024 / 1024:.1f} MiB"


@click.command(
    "report",
    epilog="""\b
Examples:
  kubectl canary report mhs -n shop        # one canary, the agent, doctor's checks
  kubectl canary report -A -o bundle.zip   # every canary
  kubectl canary report --logs-since 2h    # a shorter stretch of the agent's logs
""",
)
@name_argument(required=False)
@kube_options(listing=True)
@click.option(
    "-o",
    "--output",
    "path",
    metavar="FILE",
    help="Where to write the zip (default: kubectl-canary-report-<UTC time>.zip here).",
)
@click.option("--include-secrets", is_flag=True, help="Keep Secret values (redacted by default).")
@click.option(
    "--logs-since",
    metavar="DURATION",
    default=DEFAULT_LOGS_SINCE,
    show_default=True,
    callback=_since_seconds,
    help="How much of the agent's logs to include (e.g. 30m, 2h).",
)
@click.option(
    "--agent-namespace", metavar="NS", default=None, help="The agent's namespace (default: found)."
)
def report(
    session: Session,
    name: str | None,
    path: str | None,
    include_secrets: bool,
    logs_since: int,
    agent_namespace: str | None,
) -> None:
    """Write a support bundle (zip) about canary NAME (no NAME: the namespace's; -A: all)."""
    from kubectl_canary.cli.errors import CliError
    from kubectl_canary.cli.report_bundle import index_text, write_zip

    if name and session.all_namespaces:
        raise click.UsageError("NAME and -A cannot be combined")
    bundle, header = take_report(session, name, include_secrets, logs_since, agent_namespace)
    target = path or f"kubectl-canary-report-{bundle.taken:%Y%m%dT%H%M%SZ}.zip"
    try:
        size = write_zip(bundle, index_text(bundle, header), target)
    except OSError as e:
        raise CliError(f"cannot write {target}: {e.strerror or e}") from None
    missing = f", {len(bundle.errors)} parts not collected: see README.txt" if bundle.errors else ""
    click.echo(f"wrote {target} ({human_size(size)}, {len(bundle.members) + 1} files{missing})")
