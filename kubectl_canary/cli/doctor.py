"""`kubectl canary doctor`: what is wrong, and what to do about it.

Each check yields ok / warn / fail with a one-line detail and, when not ok, a hint. Checks
are independent reads (nothing is written), so doctor is safe to run any time; it exits 1 when
a check fails.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import click

from kubectl_canary.api.model import API_VERSION, MANAGED_BY_LABEL
from kubectl_canary.cli.agent_info import (
    AGENT_NAME,
    DEFAULT_NAMESPACE,
    AgentInfo,
    Leader,
    find_agent,
    leader_pod,
)
from kubectl_canary.cli.apply import contains
from kubectl_canary.cli.init import plan
from kubectl_canary.cli.install_settings import InstallSettings
from kubectl_canary.cli.manifests import crd_documents
from kubectl_canary.cli.options import Session, kube_options, output_option
from kubectl_canary.cli.permissions import (
    ReviewUnavailable,
    foreign_bindings,
    granted,
    judge,
    reviewer,
)
from kubectl_canary.cli.reads import GATEWAY_API, ISTIO_API
from kubectl_canary.cli.render import table, to_json
from kubectl_canary.kube import Kube
from kubectl_canary.resources import KubeError, ResourceTypeMissingError

Obj = dict[str, Any]

MESH_CRDS = {
    "istio": ("virtualservices.networking.istio.io", "destinationrules.networking.istio.io"),
    "gatewayapi": ("httproutes.gateway.networking.k8s.io",),
    "kubernetes": (),
}
PROBE_QUERY = "/api/v1/query?query=vector(1)"
PROBE_TIMEOUT = 5.0
# http://<service>.<namespace>[.svc[.cluster.local]][:port]: reachable through the API server.
_CLUSTER_URL = re.compile(
    r"^https?://(?P<svc>[a-z0-9-]+)\.(?P<ns>[a-z0-9-]+)(\.svc(\.cluster\.local)?)?(:(?P<port>\d+))?/?$"
)


@dataclass(frozen=True)
class Check:
    name: str
    result: str  # "ok" | "warn" | "fail"
    detail: str
    hint: str = ""


# ----- the checks -----


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


def probe_prometheus(kube: Kube, url: str) -> tuple[bool, str]:
    """Ask Prometheus for vector(1): directly, or through the API server's service proxy."""
    m = _CLUSTER_URL.match(url)
    if m:
        port = m.group("port") or "80"
        path = (
            f"/api/v1/namespaces/{m.group('ns')}/services/{m.group('svc')}:{port}/proxy"
            + PROBE_QUERY
        )
        try:
            doc = kube.get_path(path)
        except KubeError as e:
            return False, f"through the API server proxy: {e}"
        return probe_answer(doc, "answered through the API server proxy")
    from kubectl_canary.egress import bounded
    from kubectl_canary.egress.policy import EgressError, EgressPolicy

    try:
        # Only URLs doctor decided to probe get here (the agent's own, or its allow-list):
        # the policy admits exactly this one, with the agent's bounds.
        reply = bounded.request(
            EgressPolicy.build([url]),
            "GET",
            url.rstrip("/") + PROBE_QUERY,
            deadline_seconds=PROBE_TIMEOUT,
            max_bytes=1 << 20,
        )
    except (EgressError, bounded.CallError) as e:
        return False, str(e)
    try:
        doc = json.loads(reply.body)
    except ValueError:
        return False, f"answered HTTP {reply.status} {reply.reason}".rstrip()
    # Prometheus answers a query it rejects with 400 and a JSON body saying why.
    return probe_answer(doc, "answered")


def probe_answer(doc: Any, how: str) -> tuple[bool, str]:
    """Judge the answer to the probe query. A failed answer carries Prometheus' own error:
    "FAIL ... answered" alone told the user nothing (the sandbox's query endpoint, for one,
    rejects `vector(1)` as a query it does not evaluate)."""
    if isinstance(doc, dict) and doc.get("status") == "success":
        return True, how
    from kubectl_canary.egress.bounded import clean_text

    error = doc.get("error") if isinstance(doc, dict) else None
    said = clean_text(str(error)) if error else "not a Prometheus query response"
    return False, f"{how} with an error: {said}"


def agent_metrics_server(info: AgentInfo | None) -> str:
    if info is None:
        return ""
    if info.local is not None:
        return info.local.metrics_server
    if info.deployment is not None:
        for c in info.deployment["spec"]["template"]["spec"].get("containers", []):
            for arg in c.get("args", []):
                if arg.startswith("--metrics-server="):
                    return str(arg.split("=", 1)[1])
    return ""


def agent_egress_allow(info: AgentInfo | None) -> list[str]:
    """The installed agent's --allow-egress URLs (a local agent has none beyond its server)."""
    found: list[str] = []
    if info is not None and info.deployment is not None:
        for c in info.deployment["spec"]["template"]["spec"].get("containers", []):
            for arg in c.get("args", []):
                if arg.startswith("--allow-egress="):
                    found += [u for u in arg.split("=", 1)[1].split(",") if u]
    return found


def tenant_url_check(url: str, allow: list[str], users: list[str]) -> Check | None:
    """None when doctor may probe `url`; else why not. A tenant's URL is never fetched from
    the operator's machine (with the operator's network position) unless the agent's own
    allow-list names it: doctor says what the agent's policy will make of it instead."""
    from kubectl_canary.egress.policy import EgressError, EgressPolicy, parse_url

    try:
        policy = EgressPolicy.build(allow)
        target = parse_url(url, allow_query=False)
        if policy.admitted(target):
            return None
        policy.precheck(url, allow_query=False)
    except EgressError as e:
        return Check(
            f"metrics server of {', '.join(users)}",
            "fail",
            f"the agent refuses it: {e}",
            "fix spec.metricsServer (or the operator's --allow-egress)",
        )
    return Check(
        f"metrics server {target.origin}",
        "warn",
        f"set by canaries {', '.join(users)}; not probed from this machine (a tenant's URL)",
        "the agent calls it under its egress policy; add it to --allow-egress to probe it here",
    )


def check_metrics(kube: Kube, info: AgentInfo | None, canaries: list[Obj]) -> Iterator[Check]:
    servers: dict[str, list[str]] = {}
    default = agent_metrics_server(info)
    for c in canaries:
        spec = c.get("spec") or {}
        if not (spec.get("analysis") or {}).get("metrics"):
            continue
        url = spec.get("metricsServer") or default
        servers.setdefault(url, []).append(c["metadata"]["name"])
    if default and default not in servers:
        servers[default] = []
    if not servers:
        yield Check("metrics server", "ok", "no canary checks metrics")
        return
    for url, users in servers.items():
        if not url:
            yield Check(
                "metrics server",
                "fail",
                f"canaries {', '.join(users)} check metrics but no metrics server is set",
                "set spec.metricsServer or `kubectl canary init --metrics-server URL`",
            )
            continue
        if url != default:
            refused = tenant_url_check(url, agent_egress_allow(info), users)
            if refused is not None:
                yield refused
                continue
        ok, detail = probe_prometheus(kube, url)
        yield Check(
            f"metrics server {url}",
            "ok" if ok else "fail",
            detail,
            "" if ok else "check the URL and that Prometheus runs",
        )


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


def check_canary(kube: Kube, obj: Obj) -> Check:
    from kubectl_canary.api.validate import validate_canary

    meta, spec = obj["metadata"], obj.get("spec") or {}
    name = f"canary {meta['namespace']}/{meta['name']}"
    problems = validate_canary(obj)
    if problems:
        return Check(name, "fail", f"invalid: {problems[0]}", "fix the spec and re-apply it")
    status = obj.get("status") or {}
    phase = status.get("phase")
    if not phase:
        return Check(
            name, "warn", "no status: the agent has not picked it up", "is the agent running?"
        )
    for cond in status.get("conditions") or []:
        if cond.get("status") == "False" and cond.get("type") != "Promoted":
            return Check(name, "fail", f"{cond.get('type')}: {cond.get('message')}", "")
    if phase == "Initializing":
        return Check(name, "ok", "initializing")
    from kubectl_canary.api.parse import parse_canary
    from kubectl_canary.objects.names import primary_name, service_names

    canary = parse_canary(obj)  # valid: checked above
    ns, target = meta["namespace"], canary.spec.target_ref.name
    svc, primary_svc, canary_svc = service_names(canary)
    generated = {primary_name(canary), primary_svc, canary_svc}
    missing = []
    wanted = [
        ("apps/v1", "Deployment", target),
        ("apps/v1", "Deployment", primary_name(canary)),
        ("v1", "Service", svc),
        ("v1", "Service", primary_svc),
        ("v1", "Service", canary_svc),
    ]
    provider = spec.get("provider")
    if provider == "istio":
        wanted.append((ISTIO_API, "VirtualService", svc))
    elif provider == "gatewayapi":
        wanted.append((GATEWAY_API, "HTTPRoute", svc))
    for api_version, kind, obj_name in wanted:
        try:
            found = kube.get(api_version, kind, ns, obj_name)
        except ResourceTypeMissingError:
            found = None  # the mesh's CRDs are not installed: the object cannot exist
        except KubeError as e:
            return Check(name, "fail", f"cannot read {kind.lower()}/{obj_name}: {e}", "")
        if found is None:
            missing.append(f"{kind.lower()}/{obj_name}")
        elif obj_name in generated:
            owner = (found["metadata"].get("labels") or {}).get(MANAGED_BY_LABEL)
            if owner not in (None, meta["name"]):
                missing.append(f"{kind.lower()}/{obj_name} (managed by canary {owner})")
    if missing:
        return Check(
            name,
            "fail",
            f"{phase}, missing or foreign: {', '.join(missing)}",
            "the agent recreates generated objects on its next tick; if not, see its logs",
        )
    return Check(name, "ok", f"{phase}, objects consistent")


def run_checks(session: Session, agent_namespace: str | None) -> list[Check]:
    kube = session.kube
    try:
        version = kube.server_version().get("gitVersion", "?")
    except KubeError as e:
        return [Check("cluster", "fail", str(e), "check the kubeconfig and that the cluster runs")]
    checks = [Check("cluster", "ok", f"{kube.server} ({version}), context {kube.context_name}")]
    checks += list(check_crds(kube))
    info = find_agent(kube, agent_namespace)
    checks += list(check_agent(kube, info, session.now()))
    namespace = info.namespace if info else agent_namespace or DEFAULT_NAMESPACE
    watched = watched_namespaces(info)
    checks += list(check_rbac(kube, namespace, watched))
    checks += list(check_permissions(kube, namespace, watched))
    try:
        canaries, _ = kube.list(API_VERSION, "Canary", None)
    except KubeError:
        canaries = []
    default_provider = "kubernetes"
    if info is not None and info.deployment is not None:
        for c in info.deployment["spec"]["template"]["spec"].get("containers", []):
            for arg in c.get("args", []):
                if arg.startswith("--provider="):
                    default_provider = arg.split("=", 1)[1]
    providers = {(c.get("spec") or {}).get("provider") or default_provider for c in canaries}
    checks += list(check_metrics(kube, info, canaries))
    checks += list(check_mesh(kube, providers | {default_provider}))
    checks += [check_canary(kube, c) for c in canaries]
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
