"""`kubectl canary uninstall`: remove the agent, its RBAC and the CRDs.

It deletes what init made and only that: the agent's objects are found by their labels (in
every namespace, for the per-namespace RoleBindings), and the agent's namespace goes only when
init created it (annotation kubectl-canary.dev/created-by-init), never one that existed.

Refuses while Canaries exist: deleting the CRDs would delete them, and a Canary deleted without
the agent leaves the app on the generated primary. `offboard` hands each app back first;
`--force` deletes the Canaries instead (the agent still runs then, so those with
`revertOnDeletion` are reverted) and goes on.
"""

from __future__ import annotations

from typing import Any

import click

from kubectl_canary.api.model import API_VERSION, FINALIZER
from kubectl_canary.cli.agent_info import DEFAULT_NAMESPACE, LOCAL_AGENT_CONFIGMAP, read_local
from kubectl_canary.cli.apply import ref
from kubectl_canary.cli.errors import RefusedError
from kubectl_canary.cli.init import CREATED_BY_INIT, stop_local_agent
from kubectl_canary.cli.manifests import crd_documents, ours
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


def delete_canaries(session: Session, canaries: list[Obj], timeout: float) -> None:
    """Delete them while the agent still runs; drop our finalizer if it does not finish."""
    kube, runtime = session.kube, session.runtime
    for c in canaries:
        kube.delete(API_VERSION, "Canary", c["metadata"]["namespace"], c["metadata"]["name"])
        click.echo(f"canary/{_key(c)} deleted")
    start = runtime.monotonic()
    while existing_canaries(kube):
        if runtime.monotonic() - start >= timeout:
            for c in existing_canaries(kube):
                finalizers = [f for f in c["metadata"].get("finalizers", []) if f != FINALIZER]
                kube.patch_merge(
                    API_VERSION,
                    "Canary",
                    c["metadata"]["namespace"],
                    c["metadata"]["name"],
                    {"metadata": {"finalizers": finalizers or None}},
                )
                click.echo(
                    f"warning: canary/{_key(c)} was not reverted in time; finalizer removed",
                    err=True,
                )
            break
        runtime.sleep(1.0)


@click.command(
    "uninstall",
    epilog="""\b
Examples:
  kubectl canary uninstall                 # refuses while Canaries exist
  kubectl canary offboard mhs -n shop && kubectl canary uninstall
  kubectl canary uninstall --force         # delete every Canary too
  kubectl canary uninstall --keep-crds
""",
)
@kube_options(namespace_help=f"Namespace of the agent (default: {DEFAULT_NAMESPACE}).")
@click.option("--force", is_flag=True, help="Delete existing Canaries too.")
@click.option("--keep-crds", is_flag=True, help="Leave the CRDs (and so the Canaries) in place.")
@timeout_option(120, "deleted Canaries to be reverted by the agent (with --force)")
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
                "`kubectl canary offboard NAME`, or pass --force to delete them"
            )
        delete_canaries(session, canaries, timeout)
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
