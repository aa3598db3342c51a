"""`kubectl canary uninstall`: remove the agent, its RBAC and the CRDs.

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
from kubectl_canary.cli.init import manifest_values, plan, stop_local_agent
from kubectl_canary.cli.manifests import DEFAULT_IMAGE
from kubectl_canary.cli.options import Session, kube_options, timeout_option
from kubectl_canary.kube import Kube, ResourceTypeMissingError

Obj = dict[str, Any]


def existing_canaries(kube: Kube) -> list[Obj]:
    try:
        return list(kube.list(API_VERSION, "Canary", None).get("items", []))
    except ResourceTypeMissingError:
        return []


def _key(obj: Obj) -> str:
    return f"{obj['metadata'].get('namespace', '')}/{obj['metadata']['name']}"


def delete_canaries(session: Session, canaries: list[Obj], timeout: float) -> None:
    """Delete them while the agent still runs; drop our finalizer if it does not finish."""
    kube, runtime = session.kube, session.runtime
    for c in canaries:
        kube.delete(API_VERSION, "Canary", c["metadata"]["name"], c["metadata"]["namespace"])
        click.echo(f"canary/{_key(c)} deleted")
    start = runtime.monotonic()
    while existing_canaries(kube):
        if runtime.monotonic() - start >= timeout:
            for c in existing_canaries(kube):
                finalizers = [f for f in c["metadata"].get("finalizers", []) if f != FINALIZER]
                kube.patch(
                    API_VERSION,
                    "Canary",
                    c["metadata"]["name"],
                    c["metadata"]["namespace"],
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
        kube.delete("v1", "ConfigMap", LOCAL_AGENT_CONFIGMAP, namespace)
    docs = plan(manifest_values(namespace, DEFAULT_IMAGE, "kubernetes", "", ()), False)
    if keep_crds:
        docs = [d for d in docs if d["kind"] != "CustomResourceDefinition"]
    for doc in reversed(docs):
        if doc["kind"] == "Namespace" and doc["metadata"]["name"] not in (DEFAULT_NAMESPACE,):
            continue  # never delete a namespace the user chose: it may hold other things
        meta = doc["metadata"]
        gone = kube.delete(doc["apiVersion"], doc["kind"], meta["name"], meta.get("namespace"))
        click.echo(f"{ref(doc)} {'deleted' if gone else 'not found'}")
    click.echo("kubectl-canary uninstalled")
