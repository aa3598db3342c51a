"""`kubectl canary doctor`: what is wrong, and what to do about it.

Each check yields ok / warn / fail with a one-line detail and, when not ok, a hint. Checks
are independent reads (nothing is written), so doctor is safe to run any time; it exits 1 when
a check fails. The checks themselves live in `doctor_checks/`, one module per area.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable

import click

from kubectl_canary.api.model import API_VERSION
from kubectl_canary.cli.agent_info import DEFAULT_NAMESPACE, AgentInfo, find_agent
from kubectl_canary.cli.doctor_checks import Check
from kubectl_canary.cli.doctor_checks.canaries import check_canaries
from kubectl_canary.cli.doctor_checks.install import (
    check_agent,
    check_crds,
    check_mesh,
    check_permissions,
    check_rbac,
    watched_namespaces,
)
from kubectl_canary.cli.doctor_checks.metrics import check_metrics
from kubectl_canary.cli.errors import one_line
from kubectl_canary.cli.options import Session, kube_options, output_option
from kubectl_canary.cli.render import table, to_json
from kubectl_canary.resources import ForbiddenError, KubeError


def agent_default_provider(info: AgentInfo | None) -> str:
    """The installed agent's --provider: what a Canary without spec.provider gets."""
    if info is not None and info.deployment is not None:
        for c in info.deployment["spec"]["template"]["spec"].get("containers", []):
            for arg in c.get("args", []):
                if arg.startswith("--provider="):
                    return str(arg.split("=", 1)[1])
    return "kubernetes"


def guarded(area: str, checks: Callable[[], Iterable[Check]]) -> list[Check]:
    """The area's checks; one WARN instead when the user may not read what they need (doctor
    is useful to someone without cluster-admin too, for the areas they can read)."""
    try:
        return list(checks())
    except ForbiddenError as e:
        return [Check(area, "warn", f"cannot check (forbidden): {one_line(e)}")]


def run_checks(session: Session, agent_namespace: str | None) -> list[Check]:
    kube = session.kube
    try:
        version = kube.server_version().get("gitVersion", "?")
    except KubeError as e:
        return [Check("cluster", "fail", str(e), "check the kubeconfig and that the cluster runs")]
    checks = [Check("cluster", "ok", f"{kube.server} ({version}), context {kube.context_name}")]
    checks += guarded("crds", lambda: check_crds(kube))
    info: AgentInfo | None = None
    try:
        info = find_agent(kube, agent_namespace)
    except ForbiddenError as e:
        checks.append(Check("agent", "warn", f"cannot check (forbidden): {one_line(e)}"))
    else:
        checks += guarded("agent", lambda: check_agent(kube, info, session.now()))
    namespace = info.namespace if info else agent_namespace or DEFAULT_NAMESPACE
    watched = watched_namespaces(info)
    checks += guarded("rbac", lambda: check_rbac(kube, namespace, watched))
    checks += guarded("agent permissions", lambda: check_permissions(kube, namespace, watched))
    try:
        canaries, _ = kube.list(API_VERSION, "Canary", None)
    except KubeError as e:
        checks.append(Check("canaries", "warn", f"cannot list them: {e}"))
        canaries = []
    default_provider = agent_default_provider(info)
    providers = {(c.get("spec") or {}).get("provider") or default_provider for c in canaries}
    checks += guarded("metrics server", lambda: check_metrics(kube, info, canaries))
    checks += guarded("mesh crds", lambda: check_mesh(kube, providers | {default_provider}))
    checks += list(check_canaries(kube, canaries, default_provider, namespace))
    return checks


@click.command(
    "doctor",
    epilog="""\b
Examples:
  kubectl canary doctor
  kubectl canary doctor -o json | jq '.[] | select(.result != "ok")'
""",
)
@kube_options()
@output_option("json")
@click.option("--agent-namespace", metavar="NS", default=None, help="Where the agent runs.")
def doctor(session: Session, output: str | None, agent_namespace: str | None) -> None:
    """Check the agent, CRDs, RBAC, metrics server, mesh and every canary; hint at fixes."""
    checks = run_checks(session, agent_namespace)
    if output == "json":
        click.echo(to_json([c.__dict__ for c in checks]))
    else:
        rows = [[c.result.upper() if c.result != "ok" else "ok", c.name, c.detail] for c in checks]
        click.echo(table(["result", "check", "detail"], rows))
        hints = [c for c in checks if c.result != "ok" and c.hint]
        if hints:
            click.echo("\nHints:")
            for c in hints:
                click.echo(f"  {c.name}: {c.hint}")
    failed = [c for c in checks if c.result == "fail"]
    if failed:
        raise SystemExit(1)
