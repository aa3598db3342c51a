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

from kubectl_canary.api.sharding import shard_lease_name, shard_of
from kubectl_canary.cli.render import parse_time
from kubectl_canary.kube import Kube

Obj = dict[str, Any]

DEFAULT_NAMESPACE = "kubectl-canary"
AGENT_NAME = "kubectl-canary-agent"  # its Deployment, ServiceAccount, Service and ClusterRole
LEASE_NAME = "kubectl-canary-agent"  # agent/main.py LEASE_NAME (a test keeps them equal)
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
    # With `--shards N`: the holder of each shard's Lease (None where nobody holds it); the
    # single Lease above is then unused.
    shard_leaders: tuple[Leader | None, ...] = ()

    def leader_of(self, key: str) -> Leader | None:
        """The replica that ticks canary `key` ("namespace/name")."""
        if not self.shard_leaders:
            return self.leader
        return self.shard_leaders[shard_of(key, len(self.shard_leaders))]

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
    shards = shard_count(deployment)
    leaders = tuple(read_leader(kube, ns, shard_lease_name(i)) for i in range(shards))
    return AgentInfo(ns, deployment, local, read_leader(kube, ns), leaders if shards > 1 else ())


def shard_count(deployment: Obj | None) -> int:
    """The agent's `--shards` (1 when not given, or without a Deployment)."""
    if deployment is None:
        return 1
    containers = deployment["spec"]["template"]["spec"].get("containers", [])
    for arg in containers[0].get("args", []) if containers else []:
        flag, _, value = str(arg).partition("=")
        if flag == "--shards" and value.isdigit() and int(value) >= 1:
            return int(value)
    return 1


def leader_pod(kube: Kube, info: AgentInfo, leader: Leader | None) -> str | None:
    """The name of the pod `leader` is (the holder of a Lease), when it is a pod of this
    cluster."""
    if leader is None:
        return None
    identity = leader.identity
    for candidate in (identity, identity.rpartition("_")[0]):
        if candidate and kube.get("v1", "Pod", info.namespace, candidate) is not None:
            return candidate
    return None
