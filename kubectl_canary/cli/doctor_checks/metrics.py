"""Doctor's checks of the metrics servers: the agent's, and each tenant's (probed only when the
agent's egress policy would admit it)."""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from typing import Any

from kubectl_canary.cli.agent_info import AgentInfo
from kubectl_canary.cli.doctor_checks import Check, Obj
from kubectl_canary.kube import Kube
from kubectl_canary.resources import KubeError

PROBE_QUERY = "/api/v1/query?query=vector(1)"
PROBE_TIMEOUT = 5.0
# http://<service>.<namespace>[.svc[.cluster.local]][:port]: reachable through the API server.
_CLUSTER_URL = re.compile(
    r"^https?://(?P<svc>[a-z0-9-]+)\.(?P<ns>[a-z0-9-]+)(\.svc(\.cluster\.local)?)?(:(?P<port>\d+))?/?$"
)


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
