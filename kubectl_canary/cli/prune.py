"""Converging the agent's RBAC by label: what an earlier `init` made and this one does not plan.

Switching modes leaves bindings behind otherwise: `init --watch-namespace X` after a
cluster-wide install would keep the ClusterRoleBinding (the agent could still act everywhere),
and dropping a namespace would keep its RoleBinding. Only objects carrying the agent's labels
are deleted; a planned-away name held by an object without them is reported and left alone.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from kubectl_canary.cli.apply import ref
from kubectl_canary.cli.manifests import ours
from kubectl_canary.kube import Kube

Obj = dict[str, Any]

RBAC_API = "rbac.authorization.k8s.io/v1"
PRUNED_KINDS = ("ClusterRoleBinding", "RoleBinding", "ClusterRole", "Role")
# Names a previous plan may have used that this one may not (the cluster-wide binding).
AGENT_NAME = "kubectl-canary-agent"


def _id(obj: Obj) -> tuple[str, str, str]:
    meta = obj["metadata"]
    return (obj["kind"], meta.get("namespace", ""), meta["name"])


def where(obj: Obj) -> str:
    ns = obj["metadata"].get("namespace")
    return f"{ref(obj)}{f' -n {ns}' if ns else ''}"


def _agent_namespace(docs: list[Obj]) -> str:
    for doc in docs:
        if doc["kind"] == "ServiceAccount":
            return str(doc["metadata"].get("namespace", ""))
    return ""


def _this_install(obj: Obj, namespace: str) -> bool:
    """Labelled objects of another install (an agent in another namespace) are not ours to
    prune: a binding counts when it binds this install's ServiceAccount, a Role when it lives
    in this install's namespace, a ClusterRole when it is the one this install plans."""
    if obj["kind"] in ("ClusterRoleBinding", "RoleBinding"):
        return any(
            s.get("kind") == "ServiceAccount" and s.get("namespace") == namespace
            for s in obj.get("subjects") or []
        )
    if obj["kind"] == "Role":
        return bool(obj["metadata"].get("namespace") == namespace)
    return bool(obj["metadata"].get("name") == AGENT_NAME)


def stale(kube: Kube, docs: list[Obj]) -> tuple[list[Obj], list[Obj]]:
    """(ours and not planned, same-named as a planned-away object but not ours)."""
    planned = {_id(d) for d in docs}
    namespace = _agent_namespace(docs)
    ours_stale, foreign = [], []
    for kind in PRUNED_KINDS:
        # Lists every namespace: a RoleBinding from a namespace no longer watched is anywhere.
        for obj in kube.list(RBAC_API, kind, None)[0]:
            if ours(obj) and _id(obj) not in planned and _this_install(obj, namespace):
                ours_stale.append(obj)
    if ("ClusterRoleBinding", "", AGENT_NAME) not in planned:
        live = kube.get(RBAC_API, "ClusterRoleBinding", "", AGENT_NAME)
        if live is not None and not ours(live):
            foreign.append(live)
    return ours_stale, foreign


def prune(kube: Kube, docs: list[Obj], dry_run: bool) -> Iterator[str]:
    """Delete (or, dry run, name) what `stale` finds; one line per object."""
    ours_stale, foreign = stale(kube, docs)
    for obj in ours_stale:
        if dry_run:
            yield f"{where(obj)} would be pruned"
            continue
        meta = obj["metadata"]
        kube.delete(RBAC_API, obj["kind"], meta.get("namespace", ""), meta["name"])
        yield f"{where(obj)} pruned"
    for obj in foreign:
        yield f"{where(obj)} not ours (no kubectl-canary labels): left in place"
