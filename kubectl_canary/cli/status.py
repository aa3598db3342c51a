"""`kubectl canary status [NAME]`: the canary table, one canary's detail, watching and CI waits."""

from __future__ import annotations

from dataclasses import replace
from typing import TYPE_CHECKING

import click

from kubectl_canary.cli.api_names import CANARY_API_VERSION as API_VERSION
from kubectl_canary.cli.options import (
    Session,
    kube_options,
    name_argument,
    output_option,
    timeout_option,
)
from kubectl_canary.cli.reads import (
    GATEWAY_API,
    ISTIO_API,
    Obj,
    get_canary,
)
from kubectl_canary.cli.render import to_json, to_yaml
from kubectl_canary.cli.table_view import canary_rows
from kubectl_canary.kube import Kube
from kubectl_canary.resources import ApiError, ResourceTypeMissingError

if TYPE_CHECKING:  # the typed model and detail view load only when one canary is shown
    from kubectl_canary.api.model import Canary
    from kubectl_canary.cli.detail_view import RouteView, Workload

UNKNOWN_DEFAULT = "(agent default unknown)"


def read_routes(kube: Kube, c: Canary, primary: Workload, canary: Workload) -> RouteView:
    """The weights the routing object really holds (not what status claims)."""
    from kubectl_canary.cli.detail_view import RouteView
    from kubectl_canary.objects.names import service_names
    from kubectl_canary.objects.routes import http_route_weights, virtual_service_weights

    svc, primary_host, canary_host = service_names(c)
    hosts = (primary_host, canary_host)
    try:
        if c.spec.provider in ("istio", "gatewayapi"):
            api, kind, read = (
                (ISTIO_API, "VirtualService", virtual_service_weights)
                if c.spec.provider == "istio"
                else (GATEWAY_API, "HTTPRoute", http_route_weights)
            )
            try:
                obj = kube.get(api, kind, c.namespace, svc)
            except ResourceTypeMissingError:
                obj = None  # the mesh's CRDs are not installed: the object cannot exist
            if obj is None:
                return RouteView(f"{kind} {svc}", problem="not found")
            # The rule the agent steers (the A/B one while an A/B test runs).
            found = read(obj, *hosts)
            if found is None:
                return RouteView(f"{kind} {svc}", problem=f"no rule routes to {hosts[1]}")
            source = f"{kind} {svc}" + (", requests that match" if found.matching else "")
            return RouteView(source, ((hosts[0], found.primary), (hosts[1], found.canary)))
    except ApiError as e:
        return RouteView(f"{c.spec.provider} routing {svc}", problem=str(e))
    # kubernetes provider: the apex Service spreads requests over ready pods of both versions.
    total = primary.ready + canary.ready
    if total == 0:
        return RouteView(f"Service {svc}", problem="no ready pods behind it")
    share = canary.ready * 100 // total
    return RouteView(
        f"Service {svc}, by ready pods",
        ((primary.name, 100 - share), (canary.name, share)),
    )


def workloads(kube: Kube, c: Canary) -> tuple[Workload, Workload]:
    from kubectl_canary.cli.detail_view import Workload
    from kubectl_canary.objects.names import primary_name

    target, primary = c.spec.target_ref.name, primary_name(c)
    p = kube.get("apps/v1", "Deployment", c.namespace, primary)
    t = kube.get("apps/v1", "Deployment", c.namespace, target)
    return Workload.from_obj(primary, p), Workload.from_obj(target, t)


def hint_flags(session: Session) -> str:
    """What a suggested command needs to reach the same canary when pasted: `-n NS` unless NS
    is the context's namespace, and `--context` when one was given."""
    flags = ""
    if session.namespace != session.kube.default_namespace:
        flags += f" -n {session.namespace}"
    if session.context:
        flags += f" --context {session.context}"
    return flags


def agent_provider(kube: Kube) -> str | None:
    """The `--provider` the agent was installed with (init's settings on its ServiceAccount),
    which a Canary without spec.provider uses; None when it cannot be read."""
    from kubectl_canary.cli.agent_info import AGENT_NAME, DEFAULT_NAMESPACE
    from kubectl_canary.cli.errors import CliError
    from kubectl_canary.cli.install_settings import stored
    from kubectl_canary.resources import KubeError

    try:
        settings = stored(kube.get("v1", "ServiceAccount", DEFAULT_NAMESPACE, AGENT_NAME))
    except (KubeError, CliError):  # not allowed to read it, or an annotation gone bad
        return None
    return settings.provider if settings is not None else None


def render_one(
    session: Session, obj: Obj, output: str | None, history_limit: int | None = None
) -> str:
    if output == "json":
        return to_json(obj)
    if output == "yaml":
        return to_yaml(obj).rstrip("\n")
    from kubectl_canary.api.errors import InvalidResource
    from kubectl_canary.api.parse import parse_canary, parse_status
    from kubectl_canary.api.validate import DEFAULT_PROVIDER
    from kubectl_canary.cli.colour import Style
    from kubectl_canary.cli.detail_view import Shown, detail, invalid_detail

    shown = Shown(Style.for_session(session), hint_flags(session), "", history_limit)
    provider = DEFAULT_PROVIDER
    if not (obj.get("spec") or {}).get("provider"):
        installed = agent_provider(session.kube)
        provider = installed or DEFAULT_PROVIDER
        shown = replace(shown, provider_note="(agent default)" if installed else UNKNOWN_DEFAULT)
    try:
        c = parse_canary(obj, default_provider=provider)
    except InvalidResource as e:
        try:
            status = parse_status(obj.get("status"))
        except InvalidResource as bad_status:
            e.problems.extend(bad_status.problems)
            status = parse_status(None)
        return invalid_detail(obj, [str(p) for p in e.problems], status, session.now(), shown)
    primary, canary = workloads(session.kube, c)
    routes = read_routes(session.kube, c, primary, canary)
    return detail(c, session.now(), primary, canary, routes, shown)


def render_fitted(session: Session, obj: Obj, output: str | None) -> str:
    """The detail view for `-w`: history cut to the newest entries that fit the terminal."""
    from kubectl_canary.cli.watching import fit

    text = render_one(session, obj, output, None)
    if not session.runtime.is_terminal():
        return text  # a file or a pipe takes every line
    columns, lines = session.runtime.terminal_size()
    overflow = len(text.splitlines()) - (lines - 1)  # the last line holds the cursor
    history = len((obj.get("status") or {}).get("history") or [])
    if output is None and overflow > 0 and history:
        # One line of the cut says where the rest is, so one more entry goes.
        text = render_one(session, obj, output, max(0, history - overflow - 1))
    return fit(text, columns, lines)


def render_list(session: Session, items: list[Obj], output: str | None) -> str:
    if output in ("json", "yaml"):
        doc = {"apiVersion": "v1", "kind": "List", "items": items, "metadata": {}}
        return to_json(doc) if output == "json" else to_yaml(doc).rstrip("\n")
    if not items:
        where = "any namespace" if session.all_namespaces else f"namespace {session.namespace}"
        return f"No canaries found in {where}."
    from kubectl_canary.cli.colour import Style

    style = Style.for_session(session)
    return canary_rows(items, session.now(), session.all_namespaces, output == "wide", style)


# ----- the command -----


@click.command(
    "status",
    epilog="""\b
Examples:
  kubectl canary status                 # canaries in the current namespace
  kubectl canary status -A -o wide      # every namespace, with target and last event
  kubectl canary status mhs             # one canary: workloads, routes, metrics, history
  kubectl canary status mhs -w          # follow it live
  kubectl canary status mhs --wait --timeout 900   # in CI: exit 0 on Succeeded, 1 otherwise

\b
On a terminal, phases carry an icon and a colour (--no-color or NO_COLOR: icons only);
piped, the output is plain text. --wait prints each phase change and step on stderr
(-q: only the outcome); the result goes to stdout.
""",
)
@name_argument(required=False)
@kube_options(listing=True)
@output_option("wide", "json", "yaml")
@click.option("-w", "--watch", is_flag=True, help="Redraw whenever something changes.")
@click.option(
    "--wait",
    is_flag=True,
    help="Wait for the current release of NAME to end: exit 0 on Succeeded, 1 on Failed.",
)
@timeout_option(600, "--wait")
@click.option("-q", "--quiet", is_flag=True, help="With --wait: no progress lines on stderr.")
def status(
    session: Session,
    name: str | None,
    output: str | None,
    watch: bool,
    wait: bool,
    timeout: float,
    quiet: bool,
) -> None:
    """Show canaries, or one canary in detail (routes, metrics, history, next step)."""
    if name and session.all_namespaces:
        raise click.UsageError("NAME and -A cannot be combined")
    if wait:
        if not name:
            raise click.UsageError("--wait needs a canary NAME")
        from kubectl_canary.cli.ci_wait import Progress, last_message, wait_for_outcome

        report = None if quiet else Progress(session, name)
        obj = wait_for_outcome(session, name, timeout, report)
        click.echo(f"canary {name} succeeded: {last_message(obj)}")
        return
    if watch:
        from kubectl_canary.cli.watching import fit, follow, terminal_writer
    if name:
        ns = session.namespace
        if watch:
            get_canary(session.kube, ns, name)  # not found: fail before drawing anything

            def render_named(objs: dict[tuple[str, str], Obj]) -> str:
                obj = objs.get((ns, name))
                if obj is None:
                    return f'canary "{name}" not found in namespace "{ns}" (deleted?)'
                return render_fitted(session, obj, output)

            follow(session, render_named, ns, terminal_writer(session))
            return
        click.echo(render_one(session, get_canary(session.kube, ns, name), output, None))
        return
    if watch:

        def render_all(objs: dict[tuple[str, str], Obj]) -> str:
            text = render_list(session, list(objs.values()), output)
            return fit(text, *session.runtime.terminal_size()) if terminal else text

        terminal = session.runtime.is_terminal()
        follow(session, render_all, session.list_namespace, terminal_writer(session))
        return
    items, _ = session.kube.list(API_VERSION, "Canary", session.list_namespace)
    text = render_list(session, items, output)
    if not items and output not in ("json", "yaml"):
        click.echo(text, err=True)  # like kubectl: "No resources found" goes to stderr
    else:
        click.echo(text)
