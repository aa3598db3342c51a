"""`kubectl canary uninstall`: remove the agent, its RBAC and the CRDs.

It deletes what init made and only that: the agent's objects are found by their labels (in
every namespace, for the per-namespace RoleBindings), and the agent's namespace goes only when
init created it (annotation kubectl-canary.dev/created-by-init), never one that existed.

Refuses while Canaries exist: deleting the CRDs deletes them, and a Canary deleted without
its hand-back leaves the app on the generated primary, which garbage collection then removes.
`--force` hands every app back first, the way `kubectl canary offboard` does (the same steps,
cli/offboard.py `hand_back`, run by the plugin itself, so it works without a running agent),
and removes the agent only once every Canary is gone: an app never ends up with fewer ready
pods. A Canary already being deleted is the running agent's to hand back; uninstall waits for
it. A hand-back that does not finish stops uninstall, with one line naming the Canary and what
it waits for, before anything of the agent is deleted.
"""

from __future__ import annotations

from typing import Any

import click

from kubectl_canary.api.model import API_VERSION
from kubectl_canary.cli.agent_info import (
    DEFAULT_NAMESPACE,
    LOCAL_AGENT_CONFIGMAP,
    read_leader,
    read_local,
)
from kubectl_canary.cli.apply import ref
from kubectl_canary.cli.errors import CliError, RefusedError
from kubectl_canary.cli.init import CREATED_BY_INIT, stop_local_agent
from kubectl_canary.cli.manifests import crd_documents, ours
from kubectl_canary.cli.offboard import POLL_SECONDS, HandBackFailed, Offboarding, hand_back
from kubectl_canary.cli.options import Session, kube_options, timeout_option
from kubectl_canary.cli.prune import where
from kubectl_canary.kube import Kube
from kubectl_canary.resources import ResourceTypeMissingError

Obj = dict[str, Any]


# What init makes, deleted in reverse apply order. None: in every namespace; the others live in
# the agent's namespace.
AGENT_KINDS = (
    ("apps/v1", "Deployment", False),
    ("policy/v1", "PodDisruptionBudget", False),
    ("networking.k8s.io/v1", "NetworkPolicy", False),
    ("v1", "Service", False),
    ("rbac.authorization.k8s.io/v1", "RoleBinding", True),
    ("rbac.authorization.k8s.io/v1", "Role", True),
    ("rbac.authorization.k8s.io/v1", "ClusterRoleBinding", True),
    ("rbac.authorization.k8s.io/v1", "ClusterRole", True),
    ("v1", "ServiceAccount", False),
)


def labelled(kube: Kube, namespace: str) -> list[Obj]:
    """The agent's objects, by label; a kind the server does not serve has none."""
    found = []
    for api_version, kind, everywhere in AGENT_KINDS:
        try:
            items, _ = kube.list(api_version, kind, None if everywhere else namespace)
        except ResourceTypeMissingError:
            continue
        found += [o for o in items if ours(o)]
    return found


def existing_canaries(kube: Kube) -> list[Obj]:
    try:
        return kube.list(API_VERSION, "Canary", None)[0]
    except ResourceTypeMissingError:
        return []


def _key(obj: Obj) -> str:
    return f"{obj['metadata'].get('namespace', '')}/{obj['metadata']['name']}"


def agent_runs(session: Session, namespace: str) -> bool:
    """Whether an agent holds its Lease (renewed within its duration)."""
    leader = read_leader(session.kube, namespace)
    return leader is not None and leader.fresh(session.now())


def hand_back_all(
    session: Session, canaries: list[Obj], agent_namespace: str, timeout: float
) -> None:
    """Hand every Canary's app back and delete the Canary; CliError on the first that does
    not finish, naming it and what it waits for."""
    agent = agent_runs(session, agent_namespace)
    for c in canaries:
        ns, name = c["metadata"]["namespace"], c["metadata"]["name"]
        if c["metadata"].get("deletionTimestamp") and agent:
            wait_for_agent(session, ns, name, timeout)
            continue
        if session.kube.get(API_VERSION, "Canary", ns, name) is None:
            continue  # gone meanwhile (its deletion finished)
        click.echo(f"canary/{ns}/{name}: handing the app back")
        job = Offboarding(session, name, timeout, namespace=ns, agent_may_run=agent)
        try:
            hand_back(job, prefix="  ")
        except HandBackFailed as e:
            raise CliError(
                f"canary {ns}/{name} was not handed back: {e}; nothing of the agent was removed"
                f" (fix it, then run `kubectl canary uninstall --force` again)"
            ) from None
        click.echo(f"canary/{ns}/{name} handed back and deleted")


def wait_for_agent(session: Session, ns: str, name: str, timeout: float) -> None:
    """A Canary already being deleted: the running agent hands it back; wait until it is gone."""
    kube, runtime = session.kube, session.runtime
    click.echo(f"canary/{ns}/{name}: being deleted, waiting for the agent's hand-back")
    start = runtime.monotonic()
    while (obj := kube.get(API_VERSION, "Canary", ns, name)) is not None:
        if runtime.monotonic() - start >= timeout:
            history = (obj.get("status") or {}).get("history") or [{}]
            waits = history[-1].get("message") or "no word from the agent"
            raise CliError(
                f"canary {ns}/{name} was not handed back within {timeout:g}s: {waits}; "
                "nothing of the agent was removed"
            )
        runtime.sleep(POLL_SECONDS)
    click.echo(f"canary/{ns}/{name} handed back by the agent")


@click.command(
    "uninstall",
    epilog="""\b
Examples:
  kubectl canary uninstall                 # refuses while Canaries exist
  kubectl canary offboard mhs -n shop && kubectl canary uninstall
  kubectl canary uninstall --force         # hand every app back (as offboard), then remove
  kubectl canary uninstall --keep-crds
""",
)
@kube_options(namespace_help=f"Namespace of the agent (default: {DEFAULT_NAMESPACE}).")
@click.option(
    "--force",
    is_flag=True,
    help="Hand every Canary's app back first, as `offboard` does (no agent needed), and "
    "delete the Canaries; stops before removing anything if one does not finish.",
)
@click.option(
    "--keep-crds",
    is_flag=True,
    help="Leave the CRDs and the Canaries in place (they keep the agent's finalizer: a later "
    "init picks them up).",
)
@timeout_option(300, "each step of each hand-back (with --force)")
def uninstall(session: Session, force: bool, keep_crds: bool, timeout: float) -> None:
    """Remove the agent, its RBAC and the CRDs."""
    kube = session.kube
    namespace = session.namespace_flag or DEFAULT_NAMESPACE
    canaries = existing_canaries(kube)
    if canaries and not keep_crds:
        if not force:
            names = ", ".join(_key(c) for c in canaries[:5])
            more = f" and {len(canaries) - 5} more" if len(canaries) > 5 else ""
            raise RefusedError(
                f"{len(canaries)} Canaries exist ({names}{more}): hand each app back with "
                "`kubectl canary offboard NAME`, or pass --force to hand them all back"
            )
        hand_back_all(session, canaries, namespace, timeout)
    local = read_local(kube, namespace)
    if local is not None:
        if local.alive():
            stop_local_agent(local, session.runtime.sleep)
            click.echo(f"local agent process {local.pid} stopped")
        kube.delete("v1", "ConfigMap", namespace, LOCAL_AGENT_CONFIGMAP)
    for obj in labelled(kube, namespace):
        meta = obj["metadata"]
        kube.delete(obj["apiVersion"], obj["kind"], meta.get("namespace", ""), meta["name"])
        click.echo(f"{where(obj)} deleted")
    delete_namespace(kube, namespace)
    if not keep_crds:
        for crd in reversed(crd_documents()):
            gone = kube.delete(crd["apiVersion"], crd["kind"], "", crd["metadata"]["name"])
            click.echo(f"{ref(crd)} {'deleted' if gone else 'not found'}")
    click.echo("kubectl-canary uninstalled")


def delete_namespace(kube: Kube, namespace: str) -> None:
    """Only a namespace init created: one that existed may hold other things."""
    ns = kube.get("v1", "Namespace", "", namespace)
    if ns is None:
        return
    if (ns["metadata"].get("annotations") or {}).get(CREATED_BY_INIT) == "true" and ours(ns):
        kube.delete("v1", "Namespace", "", namespace)
        click.echo(f"namespace/{namespace} deleted")
    else:
        click.echo(f"namespace/{namespace} left: init did not create it")
