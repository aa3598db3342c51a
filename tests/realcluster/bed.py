"""The real-API-server tier's bed: which cluster the tier runs on, the product installed on it
exactly as `kubectl canary init` renders it, and the agent run out of cluster under its own
ServiceAccount token, so real RBAC checks every request it makes.

Where the tier runs, in order (docs: README, "Development"):
1. `KUBECTL_CANARY_E2E_CLUSTER=1` with `KUBECONFIG`: that cluster (kind, k3d, a dev cluster).
   Only "pods become Ready" is assumed; tests that need the shared bed's traffic simulator
   (Istio metrics in Prometheus) say they did not run and why.
2. `../shared/k8s/cluster.sh` beside the checkout (or `KUBECTL_CANARY_K8S_BED`): a real
   kube-apiserver + kube-controller-manager with a fake kubelet, a mesh traffic simulator and a
   real Prometheus, all on 127.0.0.1; started when it is not running and stopped again after.
3. Neither: the tier does not run, and says why in the pytest summary.
`KUBECTL_CANARY_E2E_CLUSTER=0` turns the tier off.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import time
import urllib.parse
import urllib.request
import uuid
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from tests.e2e.agent_harness import (
    AgentProcess,
    ClusterView,
    canary_traffic_gone,
    start_agent,
    wait_for,
)

REPO = Path(__file__).resolve().parents[2]
ENV_CLUSTER = "KUBECTL_CANARY_E2E_CLUSTER"
ENV_BED = "KUBECTL_CANARY_K8S_BED"
ENV_PROMETHEUS = "KUBECTL_CANARY_E2E_PROMETHEUS"
ENV_IMAGE = "KUBECTL_CANARY_E2E_IMAGE"
AGENT_NAMESPACE = "kubectl-canary"
AGENT_ACCOUNT = "kubectl-canary-agent"
# Versions are image tags; the bed's simulator judges requests by them. 1.1.3 fails half its
# requests everywhere in the tier (the seed story's bad release).
IMAGE = os.environ.get(ENV_IMAGE, "eexit/mirror-http-server")
BAD_TAG = "1.1.3"
TRAFFIC_VERSIONS = {BAD_TAG: {"error_rate": 0.5}}
# Fixed by the shared bed (../shared/k8s/README.md, "Ports and files").
BED_PROMETHEUS = "http://127.0.0.1:19090"
BED_MESH = "http://127.0.0.1:19091"
UP_ATTEMPTS = 3
KUBELET_LOG_LIMIT = 32 * 1024


def image(tag: str) -> str:
    return f"{IMAGE}:{tag}"


def shared_bed_dir() -> Path:
    return Path(os.environ.get(ENV_BED) or REPO.parent / "shared" / "k8s")


def bed_run_dir() -> Path:
    """$K8S_RUN as cluster.sh computes it."""
    default = Path(os.environ.get("TMPDIR") or "/tmp") / "k8s-realcp"
    return Path(os.environ.get("K8S_RUN") or default)


def in_ci() -> bool:
    return os.environ.get("CI", "").lower() in ("1", "true", "yes")


@dataclass(frozen=True)
class Choice:
    """Where the tier runs ('shared' or 'external'), or why it does not ('none')."""

    mode: str
    reasons: tuple[str, ...] = ()


def choose() -> Choice:
    """Decide where the tier runs; never starts anything."""
    flag = os.environ.get(ENV_CLUSTER, "")
    if flag == "0":
        return Choice("none", (f"turned off by {ENV_CLUSTER}=0",))
    if flag == "1":
        if not os.environ.get("KUBECONFIG"):
            return Choice("none", (f"{ENV_CLUSTER}=1 needs KUBECONFIG to name the cluster",))
        return Choice("external")
    script = shared_bed_dir() / "cluster.sh"
    if not script.exists():
        return Choice(
            "none",
            (
                f"no real API server: {script} not found and {ENV_CLUSTER}=1 with KUBECONFIG "
                "not set (README, Development: three ways to run the tier)",
            ),
        )
    missing = [b for b in ("etcd", "prometheus") if shutil.which(b) is None]
    if missing:
        # .ci/run installs them; on a development machine say how.
        return Choice(
            "none",
            tuple(
                f"the shared bed needs `{b}` on PATH (apt-get install etcd-server prometheus)"
                for b in missing
            ),
        )
    return Choice("shared")


def kubectl_binary() -> str:
    found = shutil.which("kubectl")
    assert found, "the real-cluster tier drives the cluster with kubectl: put it on PATH"
    return found


@dataclass
class Bed:
    """A real cluster with the product's CRDs and RBAC installed."""

    mode: str
    admin_kubeconfig: Path
    workdir: Path
    prometheus_url: str = ""
    mesh_url: str = ""  # the traffic simulator ('' outside the shared bed)
    traffic_file: Path | None = None
    started_here: bool = False
    audit_offset: int = -1  # where this run starts in the audit log (-1: no audit log)
    agent_kubeconfig: Path = field(init=False)
    rendered: list[dict[str, Any]] = field(init=False, default_factory=list)
    _apps: dict[tuple[str, str], dict[str, Any]] = field(init=False, default_factory=dict)

    @property
    def mesh_metrics(self) -> str:
        return f"{self.mesh_url}/metrics"

    def kubectl(
        self, *args: str, input: str | None = None, timeout: float = 120, check: bool = True
    ) -> subprocess.CompletedProcess[str]:
        """The real kubectl as the cluster admin (the plugin on its PATH)."""
        env = {**os.environ, "KUBECONFIG": str(self.admin_kubeconfig)}
        env["PATH"] = f"{self.workdir / 'bin'}{os.pathsep}{env['PATH']}"
        done = subprocess.run(
            [kubectl_binary(), *args],
            env=env,
            input=input,
            capture_output=True,
            text=True,
            timeout=timeout,
        )
        if check:
            assert done.returncode == 0, f"kubectl {' '.join(args)}:\n{done.stdout}{done.stderr}"
        return done

    def view(self) -> ClusterView:
        return ClusterView(self.admin_kubeconfig)

    def namespace(self, purpose: str) -> str:
        """A fresh namespace for one test: unique per run, so neither a previous run's objects
        (etcd keeps them) nor its metrics (Prometheus keeps them) can be mistaken for ours."""
        name = f"rc-{purpose}-{uuid.uuid4().hex[:5]}"
        self.kubectl("create", "namespace", name)
        return name

    def drop_namespace(self, name: str) -> None:
        """Delete the test's Canaries, then (in the background) its namespace: the next test's
        agent must find no Canary in a terminating namespace, where every write is refused
        with a 403 that has nothing to do with RBAC. The test's agent is gone by now, and
        every Canary it managed holds its finalizer: the test is over, so it is dropped here
        (with no agent to hand the apps back, a deletion would wait for one)."""
        kind = "canaries.kubectl-canary.dev"
        left = self.kubectl("get", kind, "-n", name, "-o", "name", check=False).stdout.split()
        for canary in left:
            self.kubectl(
                "patch",
                canary,
                "-n",
                name,
                "--type=merge",
                "-p",
                '{"metadata":{"finalizers":null}}',
                check=False,
            )
        self.kubectl("delete", kind, "--all", "-n", name, "--timeout=60s")
        self.kubectl("delete", "namespace", name, "--wait=false", "--ignore-not-found")

    # ----- the product, as init installs it -----

    def install(self) -> None:
        """Apply what `kubectl canary init --dry-run -o yaml` renders, minus the agent's
        Deployment (the agent runs here as a process), and mint the agent's token."""
        done = subprocess.run(
            [sys.executable, "-m", "kubectl_canary", "init", "--dry-run", "-o", "yaml"],
            cwd=REPO,
            capture_output=True,
            text=True,
            timeout=60,
            env={**os.environ, "KUBECONFIG": str(self.admin_kubeconfig)},
        )
        assert done.returncode == 0, done.stderr
        docs = [d for d in yaml.safe_load_all(done.stdout) if d]
        self.rendered = [d for d in docs if d["kind"] != "Deployment"]
        self.kubectl(
            "apply",
            "--server-side",
            "--force-conflicts",
            "--field-manager=kubectl-canary-tests",
            "-f",
            "-",
            input=yaml.safe_dump_all(self.rendered),
        )
        crds = [f"crd/{d['metadata']['name']}" for d in docs if d["kind"].startswith("CustomRes")]
        self.kubectl("wait", "--for=condition=Established", "--timeout=60s", *crds)
        self.agent_kubeconfig = self.kubeconfig_for(AGENT_NAMESPACE, AGENT_ACCOUNT)
        if self.mode == "shared" and audit_log().exists():
            self.audit_offset = audit_log().stat().st_size
        self._install_plugin_shim()

    def kubeconfig_for(self, namespace: str, account: str) -> Path:
        """A kubeconfig holding a fresh token of ServiceAccount `namespace/account`."""
        token = self.kubectl(
            "-n", namespace, "create", "token", account, "--duration=4h"
        ).stdout.strip()
        path = self.workdir / f"{namespace}.{account}.kubeconfig"
        path.write_text(yaml.safe_dump(token_kubeconfig(self.admin_kubeconfig, token)))
        path.chmod(0o600)
        return path

    def _install_plugin_shim(self) -> None:
        """`kubectl canary` runs this checkout, as after a krew install."""
        bin_dir = self.workdir / "bin"
        bin_dir.mkdir(parents=True, exist_ok=True)
        shim = bin_dir / "kubectl-canary"
        shim.write_text(
            f'#!/bin/sh\nPYTHONPATH={REPO} exec {sys.executable} -m kubectl_canary "$@"\n'
        )
        shim.chmod(0o755)

    def agent_api_use(self) -> dict[tuple[str, str, str], int]:
        """(apiGroup, resource[/subresource], verb) → requests the agent's ServiceAccount made
        in this run and the API server did not refuse, from the audit log."""
        assert self.audit_offset >= 0, "the API server writes no audit log"
        user = f"system:serviceaccount:{AGENT_NAMESPACE}:{AGENT_ACCOUNT}"
        used: dict[tuple[str, str, str], int] = {}
        with audit_log().open("rb") as log:
            log.seek(self.audit_offset)
            for raw in log:
                try:
                    event = json.loads(raw)
                except ValueError:
                    continue  # a line being written right now
                if (event.get("user") or {}).get("username") != user:
                    continue
                if (event.get("responseStatus") or {}).get("code") in (401, 403):
                    continue
                ref = event.get("objectRef") or {}
                if not ref.get("resource"):
                    continue  # discovery and other non-resource URLs
                resource = ref["resource"] + (
                    f"/{ref['subresource']}" if ref.get("subresource") else ""
                )
                key = (ref.get("apiGroup", ""), resource, event["verb"])
                used[key] = used.get(key, 0) + 1
        return used

    # ----- the agent -----

    @contextmanager
    def agent(
        self,
        log_path: Path,
        *extra: str,
        provider: str = "kubernetes",
        command: Sequence[str] = (),
        kubeconfig: str = "",
    ) -> Iterator[AgentProcess]:
        """The agent as a process under its ServiceAccount token (`command`: see
        `start_agent`; `kubeconfig`: where that command finds agent_kubeconfig). On the way
        out it must not have met a single 403: RBAC is exactly what init installs, and it
        must be enough."""
        agent = start_agent(
            Path(kubeconfig) if kubeconfig else self.agent_kubeconfig,
            log_path,
            "--lease-duration",
            "2s",
            *extra,
            metrics_server=self.prometheus_url,
            provider=provider,
            command=command,
        )
        try:
            yield agent
            refused = forbidden_requests(agent)
        finally:
            code = agent.stop()
        assert refused == [], f"the agent was refused by RBAC: {refused}"
        assert code == 0, f"the agent exited {code}: {log_path.read_text()[-2000:]}"

    # ----- the shared bed's traffic simulator -----

    def require_mesh(self) -> None:
        if not self.mesh_url:
            import pytest

            pytest.skip(
                "needs the shared bed's traffic simulator (Istio metrics in Prometheus); "
                f"{self.mode} cluster has none"
            )

    def traffic(self, ns: str, service: str, rps: int = 20) -> None:
        """Simulated clients calling `ns/service` at `rps`; waits until the simulator took it."""
        self.require_mesh()
        self._apps[(ns, service)] = {"namespace": ns, "service": service, "rps": rps}
        self._write_traffic()

    def wait_canary_traffic_gone(self, ns: str, name: str) -> None:
        """Checks judge the canary Deployment's recent requests (as Flagger's do): before the
        next release of `name`, let the last canary's traffic leave the metric window."""
        prom = Prometheus(self.prometheus_url)
        wait_for(
            f"{ns}/{name}'s last canary traffic out of the metric window",
            lambda: canary_traffic_gone(prom, ns, name),
            60,
            0.5,
        )

    def stop_traffic(self, ns: str) -> None:
        for key in [k for k in self._apps if k[0] == ns]:
            del self._apps[key]
        if self.traffic_file is not None:
            self._write_traffic()

    def _write_traffic(self) -> None:
        assert self.traffic_file is not None
        before = mesh_state(self.mesh_url)["config_version"]
        config = {"seed": 7, "versions": TRAFFIC_VERSIONS, "apps": list(self._apps.values())}
        tmp = self.traffic_file.with_suffix(".tmp")
        tmp.write_text(yaml.safe_dump(config))
        tmp.replace(self.traffic_file)  # whole, never half a file
        wait_for(
            "the traffic simulator to load its new config",
            lambda: mesh_state(self.mesh_url)["config_version"] != before,
            15,
            0.2,
        )
        error = mesh_state(self.mesh_url).get("config_error")
        assert not error, f"the traffic simulator refused its config: {error}"


def plain_canary(
    ns: str,
    name: str,
    *,
    target: str = "",
    service_name: str = "",
    interval: str = "2s",
    step_weight: int = 50,
    max_weight: int = 50,
    deadline: int = 20,
) -> dict[str, Any]:
    """A Canary without metrics on the kubernetes provider: runs on any cluster."""
    service: dict[str, Any] = {"port": 9898, "targetPort": 9898}
    if service_name:
        service["name"] = service_name
    return {
        "apiVersion": "kubectl-canary.dev/v1alpha1",
        "kind": "Canary",
        "metadata": {"name": name, "namespace": ns},
        "spec": {
            "provider": "kubernetes",
            "targetRef": {"apiVersion": "apps/v1", "kind": "Deployment", "name": target or name},
            "progressDeadlineSeconds": deadline,
            "service": service,
            "analysis": {
                "interval": interval,
                "threshold": 2,
                "stepWeight": step_weight,
                "maxWeight": max_weight,
            },
        },
    }


def token_kubeconfig(admin_kubeconfig: Path, token: str) -> dict[str, Any]:
    """A kubeconfig for the admin's current cluster (server, CA or insecure) with `token`."""
    config = yaml.safe_load(admin_kubeconfig.read_text())
    current = config.get("current-context")
    context = next(c["context"] for c in config["contexts"] if c["name"] == current)
    cluster = next(c["cluster"] for c in config["clusters"] if c["name"] == context["cluster"])
    ca = cluster.get("certificate-authority")
    if ca and not os.path.isabs(ca):  # relative to the file that named it
        cluster = {**cluster, "certificate-authority": str(admin_kubeconfig.parent / ca)}
    return {
        "apiVersion": "v1",
        "kind": "Config",
        "clusters": [{"name": "bed", "cluster": cluster}],
        "users": [{"name": AGENT_ACCOUNT, "user": {"token": token}}],
        "contexts": [{"name": "agent", "context": {"cluster": "bed", "user": AGENT_ACCOUNT}}],
        "current-context": "agent",
    }


def forbidden_requests(agent: AgentProcess) -> list[str]:
    """Every request the API server refused with 403, from the agent's /metrics and log."""
    found = [
        line
        for line in agent.metrics().splitlines()
        if line.startswith("kubectl_canary_api_request_errors_total") and 'code="403"' in line
    ]
    for entry in agent.lines():
        text = json.dumps(entry)
        if entry.get("status") == 403 or " 403 " in text or "forbidden" in text.lower():
            found.append(str(entry.get("msg", text))[:300])
    return found


@dataclass(frozen=True)
class Prometheus:
    """The bed's Prometheus, queried as the agent queries it."""

    url: str

    def query(self, promql: str) -> dict[str, Any]:
        address = f"{self.url}/api/v1/query?" + urllib.parse.urlencode({"query": promql})
        with urllib.request.urlopen(address, timeout=10) as resp:
            return dict(json.load(resp))


def mesh_state(mesh_url: str) -> dict[str, Any]:
    with urllib.request.urlopen(f"{mesh_url}/debug/state", timeout=10) as resp:
        return dict(json.load(resp))


# ----- bringing a bed up -----


def open_bed(choice: Choice, workdir: Path) -> Bed:
    """The bed for `choice` (started when needed), with the product installed."""
    if choice.mode == "external":
        bed = Bed(
            "external",
            Path(os.environ["KUBECONFIG"].split(os.pathsep)[0]),
            workdir,
            prometheus_url=os.environ.get(ENV_PROMETHEUS, ""),
        )
    else:
        started = start_shared_bed(workdir)
        run = bed_run_dir()
        bed = Bed(
            "shared",
            run / "kubeconfig",
            workdir,
            prometheus_url=BED_PROMETHEUS,
            mesh_url=BED_MESH,
            traffic_file=run / "traffic.yaml",
            started_here=started,
        )
    bed.install()
    return bed


def audit_log() -> Path:
    return bed_run_dir() / "audit.log"


def _audit_env() -> dict[str, str]:
    """The API server's audit flags (../shared/k8s/audit-policy.yaml: every request by a
    ServiceAccount, at Metadata level), so the tier can tell which verbs the agent used."""
    policy = shared_bed_dir() / "audit-policy.yaml"
    flags = f"--audit-policy-file={policy} --audit-log-path={audit_log()} --audit-log-maxsize=2000"
    return {**os.environ, "APISERVER_EXTRA_ARGS": flags}


def _auditing() -> bool:
    """Whether the running API server writes the audit log the tier reads."""
    done = subprocess.run(["pgrep", "-af", "kube-apiserver"], capture_output=True, text=True)
    return f"--audit-log-path={audit_log()}" in done.stdout


def start_shared_bed(workdir: Path) -> bool:
    """`cluster.sh up` unless every component is healthy already; True if it started any.
    A bed found running without the audit log gets its API server restarted with it."""
    script = shared_bed_dir() / "cluster.sh"
    if subprocess.run([script, "status"], capture_output=True, timeout=60).returncode == 0:
        if not _auditing():
            _up(script, workdir, "restart", "apiserver")
        return False
    began = time.monotonic()
    _rotate_kubelet_log(script)
    _up(script, workdir, "up")
    print(f"real-cluster bed started in {time.monotonic() - began:.0f} s", file=sys.stderr)
    return True


def _up(script: Path, workdir: Path, *command: str) -> None:
    log = workdir / "cluster-up.log"
    # `up` is idempotent, and its check right after starting a component can miss a process
    # that is in fact running ("kcm: process exited", then healthy): try again before failing.
    for attempt in range(1, UP_ATTEMPTS + 1):
        with log.open("ab") as out:
            done = subprocess.run(
                [script, *command],
                stdout=out,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
                timeout=600,
                env=_audit_env(),
            )
        if done.returncode == 0:
            break
        time.sleep(2 * attempt)
    text = log.read_text(errors="replace")
    assert done.returncode == 0, (
        f"{script} {command[0]} failed ({done.returncode}):\n{text[-3000:]}"
    )
    # Right after an API server restart the fake kubelet reconnects: give it a few seconds.
    for attempt in range(1, UP_ATTEMPTS + 1):
        status = subprocess.run([script, "status"], capture_output=True, text=True, timeout=60)
        if status.returncode == 0:
            break
        time.sleep(3 * attempt)
    assert status.returncode == 0, f"{script} status after up:\n{status.stdout}{status.stderr}"


def _rotate_kubelet_log(script: Path) -> None:
    """The bed judges the fake kubelet's health by reading its log backwards through a pipe
    under `pipefail`; once the log outgrows the pipe that read fails and a healthy kubelet
    stays "UNHEALTHY" (seen here after a day of runs). Before starting, set a long log aside
    (stopping the kubelet first; it adopts its pods again when it comes back)."""
    log = bed_run_dir() / "fake-kubelet.log"
    if log.exists() and log.stat().st_size > KUBELET_LOG_LIMIT:
        subprocess.run([script, "down", "kubelet"], capture_output=True, timeout=120)
        log.replace(log.with_name(log.name + ".old"))


def close_bed(bed: Bed) -> None:
    if bed.traffic_file is not None:
        bed._apps.clear()
        bed._write_traffic()
    if bed.started_here:
        subprocess.run([shared_bed_dir() / "cluster.sh", "down"], capture_output=True, timeout=180)
