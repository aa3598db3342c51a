"""Doctor's checks of the installation: CRDs, the agent and its lease, its RBAC and effective
permissions, and the mesh CRDs the providers in use need."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from kubectl_canary.cli.agent_info import AGENT_NAME, AgentInfo, Leader, leader_pod
from kubectl_canary.cli.apply import contains
from kubectl_canary.cli.doctor_checks import Check
from kubectl_canary.cli.init import plan
from kubectl_canary.cli.install_settings import InstallSettings
from kubectl_canary.cli.manifests import crd_documents
from kubectl_canary.cli.permissions import (
    ReviewUnavailable,
    foreign_bindings,
    granted,
    judge,
    reviewer,
)
from kubectl_canary.kube import Kube

MESH_CRDS = {
    "istio": ("virtualservices.networking.istio.io", "destinationrules.networking.istio.io"),
    "gatewayapi": ("httproutes.gateway.networking.k8s.io",),
    "kubernetes": (),
}


def check_crds(kube: Kube) -> Iterator[Check]:
    for desired in crd_documents():
        name = desired["metadata"]["name"]
        live = kube.get("apiextensions.k8s.io/v1", "CustomResourceDefinition", "", name)
        if live is None:
            yield Check(f"crd {name}", "fail", "not installed", "run `kubectl canary init`")
            continue
        versions = [v["name"] for v in live["spec"].get("versions", []) if v.get("served")]
        if not contains(live.get("spec"), desired["spec"]):
            yield Check(
                f"crd {name}",
                "warn",
                f"serves {', '.join(versions)} but differs from this plugin's",
                "run `kubectl canary init` to upgrade it",
            )
        else:
            yield Check(f"crd {name}", "ok", f"serves {', '.join(versions)}")


def check_agent(kube: Kube, info: AgentInfo | None, now: Any) -> Iterator[Check]:
    if info is None:
        yield Check("agent", "fail", "not installed", "run `kubectl canary init`")
        return
    if info.local is not None:
        local = info.local
        if not local.here():
            yield Check("agent", "warn", f"local process on host {local.host}", "check it there")
        elif local.alive():
            yield Check("agent", "ok", f"local process {local.pid}, log {local.log_file}")
        else:
            yield Check(
                "agent",
                "fail",
                f"local process {local.pid} is not running",
                f"see {local.log_file}; restart it with `kubectl canary init --agent-process`",
            )
    if info.deployment is not None:
        st = info.deployment.get("status") or {}
        want = int(info.deployment["spec"].get("replicas", 1))
        ready = int(st.get("readyReplicas", 0))
        result = "ok" if ready >= 1 else "fail"
        yield Check(
            "agent",
            result,
            f"deployment {info.namespace}/{AGENT_NAME}: {ready}/{want} ready, {info.version}",
            ""
            if result == "ok"
            else f"kubectl -n {info.namespace} describe deployment {AGENT_NAME}",
        )
    if info.shard_leaders:
        for shard, leader in enumerate(info.shard_leaders):
            yield from lease_check(kube, info, f"shard {shard}", leader, now)
    else:
        yield from lease_check(kube, info, "leader", info.leader, now)


def lease_check(
    kube: Kube, info: AgentInfo, name: str, leader: Leader | None, now: Any
) -> Iterator[Check]:
    """Whether a live agent holds the Lease (`--shards`: one shard's)."""
    if leader is None:
        yield Check(
            name, "fail", "nobody holds the lease", "the agent is not running or not leading"
        )
    elif not leader.fresh(now):
        yield Check(
            name,
            "fail",
            f"lease of {leader.identity} expired (renewed {leader.renewed})",
            "the leading agent stopped renewing; check its logs",
        )
    else:
        pod = leader_pod(kube, info, leader)
        local_leads = info.local is not None and info.local.identity == leader.identity
        where = f"pod {pod}" if pod else ("the local process" if local_leads else "unknown")
        result = "ok" if pod or local_leads else "warn"
        yield Check(
            name,
            result,
            f"{leader.identity} ({where})",
            "" if result == "ok" else "the lease holder is not a known agent",
        )


def check_rbac(kube: Kube, namespace: str, watched: list[str]) -> Iterator[Check]:
    # The installed mode's plan: namespaced installs have RoleBindings, no ClusterRoleBinding.
    rbac_kinds = ("ClusterRole", "ClusterRoleBinding", "Role", "RoleBinding", "ServiceAccount")
    problems = []
    for doc in plan(namespace, InstallSettings(watch_namespace=tuple(watched)), False):
        if doc["kind"] not in rbac_kinds:
            continue
        meta = doc["metadata"]
        live = kube.get(doc["apiVersion"], doc["kind"], meta.get("namespace", ""), meta["name"])
        wanted = {k: v for k, v in doc.items() if k in ("rules", "roleRef", "subjects")}
        if live is None:
            problems.append(f"{doc['kind'].lower()}/{meta['name']} missing")
        elif not contains(live, wanted):
            problems.append(f"{doc['kind'].lower()}/{meta['name']} differs")
    if problems:
        yield Check("rbac", "fail", "; ".join(problems), "run `kubectl canary init` to repair it")
    else:
        yield Check("rbac", "ok", "service account, roles and bindings as installed by init")


def watched_namespaces(info: AgentInfo | None) -> list[str]:
    """The Deployment's --watch-namespace list; [] = all namespaces."""
    if info is None or info.deployment is None:
        return []
    for c in info.deployment["spec"]["template"]["spec"].get("containers", []):
        for arg in c.get("args", []):
            if arg.startswith("--watch-namespace="):
                return [ns for ns in arg.split("=", 1)[1].split(",") if ns]
    return []


def check_permissions(kube: Kube, namespace: str, watched: list[str]) -> Iterator[Check]:
    name = "agent permissions"
    docs = plan(namespace, InstallSettings(watch_namespace=tuple(watched)), False)
    try:
        missing, excess = judge(granted(docs, watched), reviewer(kube, namespace))
    except ReviewUnavailable as e:
        yield Check(name, "warn", f"not checked: SubjectAccessReview unavailable ({e})")
        return
    if missing:
        yield Check(
            name,
            "fail",
            "missing: " + "; ".join(str(a) for a in missing),
            "run `kubectl canary init` to repair the agent's RBAC",
        )
    if excess:
        ours = {
            (d["kind"], d["metadata"]["name"]) for d in docs if d["kind"] in ("ClusterRole", "Role")
        }
        grants = foreign_bindings(kube, namespace, ours)
        by = f"; bindings to the agent: {', '.join(grants)}" if grants else ""
        yield Check(
            name,
            "fail",
            "excess: " + "; ".join(str(a) for a in excess) + by,
            "remove the bindings that grant the agent's ServiceAccount more than init does",
        )
    if not missing and not excess:
        yield Check(name, "ok", "every grant allowed, no dangerous extra")


def check_mesh(kube: Kube, providers: set[str]) -> Iterator[Check]:
    for provider in sorted(providers):
        for crd in MESH_CRDS.get(provider, ()):
            live = kube.get("apiextensions.k8s.io/v1", "CustomResourceDefinition", "", crd)
            if live is None:
                yield Check(
                    f"mesh crd {crd}",
                    "fail",
                    f"needed by the {provider} provider, not installed",
                    f"install {provider} (or its CRDs) first",
                )
            else:
                yield Check(f"mesh crd {crd}", "ok", f"present ({provider})")
