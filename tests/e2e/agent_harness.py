"""Helpers for the agent's end-to-end tests: the sandbox, a real Prometheus, the agent as its
own process, and small readers of what the agent wrote (status, Events, routes).

Everything is bounded: processes are stopped by the fixtures that start them, waits poll for a
condition with a deadline and report what they last saw when it runs out.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import time
import urllib.request
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml
from prometheus_client.parser import text_string_to_metric_families

from agent.kube import KubeClient
from kubectl_canary.sandbox.process import SandboxHandle, start_sandbox

REPO = Path(__file__).resolve().parents[2]
CANARY_API = "kubectl-canary.dev/v1alpha1"
IMAGE_PREFIX = "ghcr.io/stefanprodan/podinfo:"


def require_binary(name: str) -> str:
    path = shutil.which(name)
    if path is None:
        raise AssertionError(
            f"`{name}` is not on PATH; this test needs it (install it, see .ci/run)"
        )
    return path


def wait_for(
    what: str, probe: Callable[[], Any], timeout: float = 60.0, interval: float = 0.1
) -> Any:
    """Poll `probe` until it returns something truthy; fail naming `what` and the last value."""
    deadline = time.monotonic() + timeout
    last: Any = None
    while time.monotonic() < deadline:
        last = probe()
        if last:
            return last
        time.sleep(interval)
    raise AssertionError(f"timed out after {timeout:.0f}s waiting for {what}; last seen: {last!r}")


@dataclass
class AgentProcess:
    proc: subprocess.Popen[bytes]
    log_path: Path
    port: int = 0
    # Signal the innermost descendant rather than the process started: a runner such as
    # `buildah run` kills its child on SIGTERM instead of passing the signal on.
    signal_inner: bool = False

    def lines(self) -> list[dict[str, Any]]:
        out = []
        for raw in self.log_path.read_text(errors="replace").splitlines():
            try:
                out.append(json.loads(raw))
            except ValueError:
                out.append({"msg": raw, "level": "raw"})
        return out

    def metrics(self) -> str:
        url = f"http://127.0.0.1:{self.port}/metrics"
        with urllib.request.urlopen(url, timeout=5) as resp:
            return str(resp.read().decode())

    def get(self, path: str) -> int:
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{self.port}{path}", timeout=5) as r:
                return int(r.status)
        except urllib.error.HTTPError as exc:
            return int(exc.code)

    def stop(self, sig: int = signal.SIGTERM, timeout: float = 20.0) -> int:
        if self.proc.poll() is None:
            if self.signal_inner:
                os.kill(innermost(self.proc.pid), sig)
            else:
                self.proc.send_signal(sig)
            try:
                self.proc.wait(timeout)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(timeout)
        return int(self.proc.returncode)


def innermost(pid: int) -> int:
    """The deepest descendant of `pid` along its first children (Linux /proc; any thread
    of a multi-threaded runner may have forked it)."""
    while True:
        tasks = sorted(Path(f"/proc/{pid}/task").iterdir())
        children = [c for t in tasks for c in (t / "children").read_text().split()]
        if not children:
            return pid
        pid = int(children[0])


SAMPLE_GATEWAYS = ("istio-system/public-gateway", "gateway-system/*")


def start_agent(
    kubeconfig: Path,
    log_path: Path,
    *extra: str,
    metrics_server: str = "",
    provider: str = "kubernetes",
    command: Sequence[str] = (),
) -> AgentProcess:
    """The agent as a process: `command` runs it (default: this checkout's `agent.main`;
    the image test runs the one inside the image, through a runner that is signalled
    through its child)."""
    cmd = [
        *(command or (sys.executable, "-m", "agent.main")),
        "--kubeconfig",
        str(kubeconfig),
        "--listen",
        "127.0.0.1:0",
        "--namespace",
        "kubectl-canary",
        "--provider",
        provider,
        "--log-level",
        "debug",
        *extra,
    ]
    if metrics_server:
        cmd += ["--metrics-server", metrics_server]
    if not any(arg.startswith("--allow-gateway") for arg in extra):
        # The shipped samples attach to the platform's shared gateways, as an operator who
        # runs them would allow (`init --allow-gateway`); a test of the policy passes its own.
        cmd += [f"--allow-gateway={gateway}" for gateway in SAMPLE_GATEWAYS]
    logf = log_path.open("ab")
    proc = subprocess.Popen(
        cmd, cwd=REPO, stdin=subprocess.DEVNULL, stdout=logf, stderr=logf, env=os.environ.copy()
    )
    logf.close()
    agent = AgentProcess(proc, log_path, signal_inner=bool(command))

    def bound_port() -> int:
        if proc.poll() is not None:
            raise AssertionError(f"agent exited {proc.returncode}: {log_path.read_text()[-2000:]}")
        for line in agent.lines():
            if "port" in line and str(line.get("msg", "")).startswith("listening"):
                return int(line["port"])
        return 0

    agent.port = wait_for("the agent's listen line", bound_port, timeout=30)
    return agent


@contextmanager
def running_agent(
    kubeconfig: Path, log_path: Path, *extra: str, **kw: Any
) -> Iterator[AgentProcess]:
    agent = start_agent(kubeconfig, log_path, *extra, **kw)
    try:
        yield agent
    finally:
        agent.stop()


class ClusterView:
    """A thin test-side view of a cluster (through the same adapter as the agent): the
    sandbox (`Cluster`) or a real API server (tests/realcluster)."""

    def __init__(self, kubeconfig: Path) -> None:
        self.kubeconfig = kubeconfig
        self.client = KubeClient.from_kubeconfig(str(kubeconfig))

    def apply(self, obj: dict[str, Any]) -> dict[str, Any]:
        meta = obj["metadata"]
        live = self.client.get(
            obj["apiVersion"], obj["kind"], meta.get("namespace", ""), meta["name"]
        )
        if live is None:
            return self.client.create(obj)
        obj = {**obj, "metadata": {**meta, "resourceVersion": live["metadata"]["resourceVersion"]}}
        return self.client.replace(obj)

    def get(self, api_version: str, kind: str, ns: str, name: str) -> dict[str, Any] | None:
        return self.client.get(api_version, kind, ns, name)

    def canary(self, ns: str, name: str) -> dict[str, Any]:
        obj = self.client.get(CANARY_API, "Canary", ns, name)
        assert obj is not None, f"Canary {ns}/{name} not found"
        return obj

    def status(self, ns: str, name: str) -> dict[str, Any]:
        return dict(self.canary(ns, name).get("status") or {})

    def phase(self, ns: str, name: str) -> str:
        return str(self.status(ns, name).get("phase", ""))

    def wait_phase(
        self, ns: str, name: str, phase: str, timeout: float = 60.0, interval: float = 0.1
    ) -> None:
        """Poll until Canary `ns/name` reaches `phase`."""
        wait_for(
            f"Canary {ns}/{name} {phase}", lambda: self.phase(ns, name) == phase, timeout, interval
        )

    def events(self, ns: str, name: str) -> list[dict[str, Any]]:
        """The Events about Canary `ns/name` (a real cluster's controllers also write Events
        about the Deployment of the same name)."""
        items, _ = self.client.list("v1", "Event", ns)
        mine = [
            e
            for e in items
            if (e.get("involvedObject") or {}).get("name") == name
            and (e.get("involvedObject") or {}).get("kind") == "Canary"
        ]
        return sorted(mine, key=lambda e: e["metadata"].get("creationTimestamp", ""))

    def set_image(self, ns: str, name: str, image: str) -> None:
        # A JSON patch, not a read-then-replace: the Deployment controller writes the status
        # meanwhile, and a replace would then fail with 409 now and then.
        ops = [{"op": "replace", "path": "/spec/template/spec/containers/0/image", "value": image}]
        self.client.patch_json("apps/v1", "Deployment", ns, name, ops)


class Cluster(ClusterView):
    """The sandbox, seen through the agent's adapter, with its traffic ConfigMap."""

    def __init__(self, sandbox: SandboxHandle) -> None:
        self.sandbox = sandbox
        super().__init__(sandbox.kubeconfig)

    def traffic(self, apps: list[dict[str, Any]], profiles: dict[str, Any]) -> None:
        self.apply(
            {
                "apiVersion": "v1",
                "kind": "ConfigMap",
                "metadata": {"name": "sandbox-traffic", "namespace": "kube-system"},
                "data": {"apps": yaml.safe_dump(apps), "profiles": yaml.safe_dump(profiles)},
            }
        )


def namespace(name: str) -> dict[str, Any]:
    return {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": name}}


def deployment(ns: str, name: str, image: str, replicas: int = 2) -> dict[str, Any]:
    return {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {"name": name, "namespace": ns, "labels": {"app": name}},
        "spec": {
            "replicas": replicas,
            "selector": {"matchLabels": {"app": name}},
            "template": {
                "metadata": {"labels": {"app": name}},
                "spec": {
                    "containers": [
                        {"name": name, "image": image, "ports": [{"containerPort": 9898}]}
                    ]
                },
            },
        },
    }


def sample(name: str) -> dict[str, Any]:
    path = REPO / "kubectl_canary" / "manifests" / "samples" / name
    return dict(yaml.safe_load(path.read_text()))


@contextmanager
def sandbox(workdir: Path, speed: float = 1.0) -> Iterator[SandboxHandle]:
    handle = start_sandbox(workdir, speed=speed, bookmark_interval=2.0)
    try:
        yield handle
    finally:
        handle.stop()


AGENT_MANIFESTS = REPO / "kubectl_canary" / "manifests" / "agent"


def agent_rbac_rules() -> list[dict[str, Any]]:
    """The rules of the agent's ClusterRole and leader-election Role, as shipped."""
    rules: list[dict[str, Any]] = []
    for name in ("clusterrole.yaml", "role-leader-election.yaml"):
        for doc in yaml.safe_load_all((AGENT_MANIFESTS / name).read_text()):
            if doc and doc["kind"] in ("ClusterRole", "Role"):
                rules += doc["rules"]
    return rules


def rbac_allows(rules: list[dict[str, Any]], verb: str, resource: str) -> bool:
    """Whether `rules` allow `verb` on `resource` ('group/plural[/sub]' or 'plural[/sub]')."""
    parts = resource.split("/")
    # A core resource has no group: 'services' or 'services/status'; others start with a dot-name.
    group = parts[0] if "." in parts[0] or parts[0] in ("apps", "autoscaling") else ""
    name = "/".join(parts[1:] if group else parts)
    for rule in rules:
        if (
            group in rule.get("apiGroups", [])
            and name in rule.get("resources", [])
            and verb in rule.get("verbs", [])
        ):
            return True
    return False


def metric_samples(metrics_text: str) -> list[tuple[str, dict[str, str], float]]:
    """Every sample of the agent's /metrics, read by prometheus_client's own parser."""
    return [
        (sample.name, sample.labels, sample.value)
        for family in text_string_to_metric_families(metrics_text)
        for sample in family.samples
    ]


def held_shards(agent: AgentProcess) -> set[int]:
    """The shards an agent run with --shards holds now, from its /metrics (none while it
    cannot answer: stopped, or not started yet)."""
    try:
        samples = metric_samples(agent.metrics())
    except OSError:
        return set()
    return {
        int(labels["shard"])
        for series, labels, value in samples
        if series == "kubectl_canary_shard_held" and value == 1
    }


def one_shard_each(
    agents: dict[str, AgentProcess], timeout: float, interval: float
) -> dict[int, str]:
    """Wait until each agent holds exactly one shard; which agent holds which shard."""
    wait_for(
        "one shard per agent",
        lambda: sorted(len(held_shards(a)) for a in agents.values()) == [1] * len(agents),
        timeout=timeout,
        interval=interval,
    )
    return {next(iter(held_shards(a))): ident for ident, a in agents.items()}


def heir_of(
    shard: int, survivors: dict[str, AgentProcess], why: str, since: float, interval: float
) -> tuple[str, float]:
    """Wait (30 s at most) until one of `survivors` holds `shard`, whose holder was lost `why`
    (a kill, a pause) at monotonic time `since`: that agent and the seconds it took."""
    heir = wait_for(
        f"shard {shard} taken over {why}",
        lambda: next((i for i, a in survivors.items() if shard in held_shards(a)), None),
        timeout=30,
        interval=interval,
    )
    took = time.monotonic() - since
    print(f"shard {shard} taken over by {heir} {took:.1f}s {why}")
    return heir, took


def logged_canaries(agent: AgentProcess, ns: str, since_line: int = 0) -> set[str]:
    """The canaries of `ns` this agent wrote a log line about (every line of a tick names it)."""
    prefix = f"{ns}/"
    return {
        str(line["canary"])[len(prefix) :]
        for line in agent.lines()[since_line:]
        if str(line.get("canary", "")).startswith(prefix)
    }


def metric_value(metrics_text: str, series: str, /, **labels: str) -> float | None:
    """The value of the sample of `series` with exactly these labels, None when absent."""
    for name, found, value in metric_samples(metrics_text):
        if name == series and found == labels:
            return value
    return None


def api_requests(metrics_text: str) -> dict[tuple[str, str], int]:
    """(verb, resource) -> count from the agent's /metrics."""
    return {
        (labels["verb"], labels["resource"]): int(value)
        for name, labels, value in metric_samples(metrics_text)
        if name == "kubectl_canary_api_requests_total"
    }


def istio_canary(ns: str, name: str, threshold: int | None = None) -> dict[str, Any]:
    """The istio sample for `ns/name`, time-compressed: 2 s interval, 10 s metric windows."""
    canary = sample("canary-istio.yaml")
    canary["metadata"] = {"name": name, "namespace": ns}
    canary["spec"]["targetRef"]["name"] = name
    canary["spec"]["service"]["hosts"] = [f"{name}.example.com"]
    analysis = canary["spec"]["analysis"]
    analysis["interval"] = "2s"
    if threshold is not None:
        analysis["threshold"] = threshold
    for metric in analysis["metrics"]:
        metric["interval"] = "10s"
    return canary


def stepping_canary(ns: str, name: str, steps: int, interval: str) -> dict[str, Any]:
    """An Istio Canary without metrics: its analysis is `steps` weight steps of 10, one per
    `interval`, then the promotion (the pace of a release, nothing else)."""
    return {
        "apiVersion": CANARY_API,
        "kind": "Canary",
        "metadata": {"name": name, "namespace": ns},
        "spec": {
            "provider": "istio",
            "targetRef": {"apiVersion": "apps/v1", "kind": "Deployment", "name": name},
            "progressDeadlineSeconds": 120,
            "service": {"port": 9898, "targetPort": 9898, "hosts": [f"{name}.example.com"]},
            "analysis": {
                "interval": interval,
                "threshold": 2,
                "stepWeight": 10,
                "maxWeight": 10 * steps,
            },
        },
    }


def leader_gauge(agent: AgentProcess) -> int | None:
    """1 when the agent leads, 0 when it follows, None when it does not answer."""
    try:
        text = agent.metrics()
    except OSError:
        return None
    value = metric_value(text, "kubectl_canary_leader")
    return None if value is None else int(value)


def canary_traffic_gone(prom: Any, ns: str, workload: str, window: str = "10s") -> bool:
    """True when Prometheus holds no request to `workload` within `window`: a new revision's
    checks will then judge only its own traffic, not the previous canary's."""
    query = (
        "sum(rate(istio_requests_total{"
        f'reporter="destination",destination_workload_namespace="{ns}",'
        f'destination_workload="{workload}"}}[{window}]))'
    )
    result = prom.query(query)["data"]["result"]
    return not result or float(result[0]["value"][1]) == 0.0
