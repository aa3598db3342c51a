"""The bundle's part about the agent: its Deployment, Lease, pods, their logs and /metrics, and
the Events about them (`agent/...`).

A pod's /metrics is read through the API server's pod proxy (the same way doctor reaches a
Prometheus in the cluster), so the bundle needs no port-forward; it takes `get pods/proxy`.
A local agent process (the sandbox's `init --agent-process`) is read on this machine: its log
file, and its /metrics at the loopback address it logged when it started.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime

from kubectl_canary.cli.agent_info import (
    AGENT_NAME,
    DEFAULT_NAMESPACE,
    LEASE_NAME,
    LOCAL_AGENT_CONFIGMAP,
    AgentInfo,
    LocalAgent,
    find_agent,
)
from kubectl_canary.cli.render import human_duration
from kubectl_canary.cli.report_bundle import Bundle, Obj
from kubectl_canary.cli.report_canaries import EventCache
from kubectl_canary.kube import Kube
from kubectl_canary.resources import KubeError

METRICS_PORT_NAME = "http-metrics"  # the agent Deployment's port (manifests/agent)
DEFAULT_METRICS_PORT = 8080
LOCAL_METRICS_TIMEOUT = 5.0


def collect_agent(
    bundle: Bundle,
    kube: Kube,
    agent_namespace: str | None,
    since_seconds: int,
    now: datetime,
    events: EventCache,
) -> AgentInfo | None:
    try:
        info = find_agent(kube, agent_namespace)
    except KubeError as e:
        bundle.missing("agent", str(e))
        return None
    if info is None:
        where = agent_namespace or DEFAULT_NAMESPACE
        bundle.missing("agent", f"not installed in namespace {where}")
        return None
    ns = info.namespace
    involved = {("Lease", LEASE_NAME)}
    lease = bundle.attempt(
        "agent/lease.yaml", lambda: kube.get("coordination.k8s.io/v1", "Lease", ns, LEASE_NAME)
    )
    if lease is not None:
        bundle.add_object("agent/lease.yaml", lease, "the Lease: which agent leads")
    if info.deployment is not None:
        bundle.add_object("agent/deployment.yaml", info.deployment, "the agent's Deployment")
        involved.add(("Deployment", AGENT_NAME))
        for pod in _pods(bundle, kube, info.deployment):
            name = pod["metadata"]["name"]
            involved.add(("Pod", name))
            _collect_pod(bundle, kube, pod, since_seconds)
    if info.local is not None:
        record = bundle.attempt(
            "agent/local-process.yaml",
            lambda: kube.get("v1", "ConfigMap", ns, LOCAL_AGENT_CONFIGMAP),
        )
        if record is not None:
            bundle.add_object("agent/local-process.yaml", record, "the local agent process")
        _collect_local(bundle, info.local, since_seconds, now)
    about = bundle.attempt("agent/events.yaml", lambda: events.about(ns, involved))
    if about is not None:
        bundle.add_objects("agent/events.yaml", about, f"{len(about)} Events about the agent")
    return info


def _pods(bundle: Bundle, kube: Kube, deployment: Obj) -> list[Obj]:
    ns = deployment["metadata"]["namespace"]
    labels = (deployment["spec"].get("selector") or {}).get("matchLabels") or {}
    selector = ",".join(f"{k}={v}" for k, v in sorted(labels.items()))
    found = bundle.attempt("agent/pods", lambda: kube.list("v1", "Pod", ns, selector or None)[0])
    return sorted(found or [], key=lambda p: str(p["metadata"]["name"]))


def _metrics_port(pod: Obj) -> int:
    for container in (pod.get("spec") or {}).get("containers") or []:
        for port in container.get("ports") or []:
            if port.get("name") == METRICS_PORT_NAME and port.get("containerPort"):
                return int(port["containerPort"])
    return DEFAULT_METRICS_PORT


def _collect_pod(bundle: Bundle, kube: Kube, pod: Obj, since_seconds: int) -> None:
    ns, name = pod["metadata"]["namespace"], pod["metadata"]["name"]
    bundle.add_object(f"agent/pods/{name}.yaml", pod, f"agent pod {name}")
    log_path = f"agent/logs/{name}.log"
    lines = bundle.attempt(
        log_path, lambda: list(kube.pod_log(ns, name, since_seconds=since_seconds))
    )
    if lines is not None:
        what = f"log of pod {name}, last {human_duration(since_seconds)}"
        bundle.add(log_path, _text(lines), what)
    metrics_path = f"agent/metrics/{name}.txt"
    proxy = f"/api/v1/namespaces/{ns}/pods/{name}:{_metrics_port(pod)}/proxy/metrics"
    metrics = bundle.attempt(metrics_path, lambda: kube.get_text(proxy))
    if metrics is not None:
        bundle.add(metrics_path, metrics, f"/metrics of pod {name}")


def _collect_local(bundle: Bundle, local: LocalAgent, since_seconds: int, now: datetime) -> None:
    from datetime import timedelta

    from kubectl_canary.cli.logs import select, tail_file

    log_path, metrics_path = "agent/logs/local-process.log", "agent/metrics/local-process.txt"
    if not local.here():
        why = f"the agent runs on host {local.host}; read {local.log_file} there"
        bundle.missing(log_path, why)
        bundle.missing(metrics_path, why)
        return

    def read(not_before: datetime | None) -> list[tuple[str, dict[str, object] | None]]:
        lines = tail_file(local.log_file, False, lambda _: None, lambda: True)
        return list(select(lines, None, not_before))

    recent = bundle.attempt(log_path, lambda: read(now - timedelta(seconds=since_seconds)))
    if recent is not None:
        what = f"log of the local agent process, last {human_duration(since_seconds)}"
        bundle.add(log_path, _text(raw for raw, _ in recent), what)
    if not local.alive():
        bundle.missing(metrics_path, f"the local agent process {local.pid} is not running")
        return
    # The address is logged once, at start-up: look through the whole file for it.
    address = ""
    for _, doc in bundle.attempt(metrics_path, lambda: read(None)) or []:
        if doc is not None and str(doc.get("msg", "")).startswith("listening on"):
            # An agent bound to every interface answers on the loopback one too.
            address = str(doc.get("address", "")).replace("0.0.0.0:", "127.0.0.1:")
    if not address:
        bundle.missing(metrics_path, f"no 'listening on' line in {local.log_file}")
        return
    text = bundle.attempt(metrics_path, lambda: _get_local(f"http://{address}/metrics"))
    if text is not None:
        bundle.add(metrics_path, text, f"/metrics of the local agent process ({address})")


def _get_local(url: str) -> str:
    """GET a loopback URL the local agent serves (it never leaves this machine)."""
    import urllib.request

    with urllib.request.urlopen(url, timeout=LOCAL_METRICS_TIMEOUT) as reply:  # noqa: S310
        return str(reply.read().decode("utf-8", "replace"))


def _text(lines: Iterable[str]) -> str:
    return "".join(f"{line}\n" for line in lines)
