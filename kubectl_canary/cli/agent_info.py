"""Where the agent runs, who leads, and where its log lines are.

In a cluster the agent is a Deployment; the replica acting is the holder of the Lease
LEASE_NAME in the agent's namespace (its identity is `<pod name>_<pid>`, or the pod name).
On the sandbox, which has no kubelet, `init --agent-process` runs the agent as a local process
and records it in the ConfigMap LOCAL_AGENT_CONFIGMAP (identity, pid, host, log file), so
`logs`, `doctor`, `version` and `uninstall` find it the same way from any directory.
"""

from __future__ import annotations

import os
import socket
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from kubectl_canary.cli.render import parse_time
from kubectl_canary.kube import Kube

Obj = dict[str, Any]

DEFAULT_NAMESPACE = "kubectl-canary"
AGENT_NAME = "kubectl-canary-agent"  # its Deployment, ServiceAccount, Service and ClusterRole
LEASE_NAME = "kubectl-canary-agent"  # agent/main.py LEASE_NAME (a test keeps them equal)
# agent/shards.py SHARD_LEASE_PREFIX (a test keeps them equal): Lease `<prefix><i>` per shard.
SHARD_LEASE_PREFIX = "canary-agent-shard-"
LOCAL_AGENT_CONFIGMAP = "canary-agent-process"


@dataclass(frozen=True)
class Leader:
    identity: str
    renewed: str
    duration_seconds: float

    def fresh(self, now: datetime) -> bool:
        renewed = parse_time(self.renewed)
        if renewed is None:
            return False
        return (now - renewed).total_seconds() <= self.duration_seconds


@dataclass(frozen=True)
class LocalAgent:
    identity: str
    pid: int
    host: str
    log_file: str
    version: str
    metrics_server: str = ""

    def here(self) -> bool:
        return self.host == socket.gethostname()

    def alive(self) -> bool:
        if not self.here():
            return False
        try:
            os.kill(self.pid, 0)
        except ProcessLookupError:
            return False
        except PermissionError:
            return True
        return True


@dataclass(frozen=True)
class AgentInfo:
    namespace: str
    deployment: Obj | None
    local: LocalAgent | None
    leader: Leader | None

    @property
    def version(self) -> str:
        if self.local is not None:
            return self.local.version
        if self.deployment is not None:
            containers = self.deployment["spec"]["template"]["spec"].get("containers", [])
            image = containers[0].get("image", "") if containers else ""
            tag = image.rpartition(":")[2] if ":" in image.rpartition("/")[2] else "latest"
            return f"{tag} ({image})"
        return "unknown"

    @property
    def location(self) -> str:
        if self.local is not None:
            return f"local process {self.local.pid} on {self.local.host}, log {self.local.log_file}"
        return f"deployment {self.namespace}/{AGENT_NAME}"


def read_leader(kube: Kube, namespace: str, lease_name: str = LEASE_NAME) -> Leader | None:
    lease = kube.get("coordination.k8s.io/v1", "Lease", namespace, lease_name)
    if lease is None:
        return None
    spec = lease.get("spec") or {}
    if not spec.get("holderIdentity"):
        return None
    return Leader(
        identity=spec["holderIdentity"],
        renewed=str(spec.get("renewTime") or spec.get("acquireTime") or ""),
        duration_seconds=float(spec.get("leaseDurationSeconds") or 15),
    )


def read_local(kube: Kube, namespace: str) -> LocalAgent | None:
    cm = kube.get("v1", "ConfigMap", namespace, LOCAL_AGENT_CONFIGMAP)
    if cm is None:
        return None
    data = cm.get("data") or {}
    try:
        return LocalAgent(
            identity=data["identity"],
            pid=int(data["pid"]),
            host=data["host"],
            log_file=data["logFile"],
            version=data.get("version", "unknown"),
            metrics_server=data.get("metricsServer", ""),
        )
    except (KeyError, ValueError):
        return None


def local_record(agent: LocalAgent) -> Obj:
    """The ConfigMap data `init --agent-process` writes (inverse of read_local)."""
    return {
        "identity": agent.identity,
        "pid": str(agent.pid),
        "host": agent.host,
        "logFile": agent.log_file,
        "version": agent.version,
        "metricsServer": agent.metrics_server,
    }


def find_agent(kube: Kube, namespace: str | None = None) -> AgentInfo | None:
    """The agent installed in `namespace` (default kubectl-canary), or None when there is none."""
    ns = namespace or DEFAULT_NAMESPACE
    deployment = kube.get("apps/v1", "Deployment", ns, AGENT_NAME)
    local = read_local(kube, ns)
    if deployment is None and local is None:
        return None
    return AgentInfo(ns, deployment, local, read_leader(kube, ns))


def leader_pod(kube: Kube, info: AgentInfo) -> str | None:
    """The name of the pod holding the Lease, when it is a pod of this cluster."""
    if info.leader is None:
        return None
    identity = info.leader.identity
    for candidate in (identity, identity.rpartition("_")[0]):
        if candidate and kube.get("v1", "Pod", info.namespace, candidate) is not None:
            return candidate
    return None
