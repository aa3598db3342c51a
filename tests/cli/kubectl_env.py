"""Running `kubectl canary ...` through the real kubectl in end-to-end tests.

kubectl finds the plugin as `kubectl-canary` on PATH, exactly as after a krew install; here
that is a shim running this checkout. The pieces every kubectl e2e module needs: the shim,
a runner with the right environment, bounded polling, and stopping the local agent that
`init --agent-process` started (the sandbox has no kubelet to run it as a pod).
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar

import yaml

if TYPE_CHECKING:
    from kubectl_canary.cli.agent_info import LocalAgent

ROOT = Path(__file__).resolve().parents[2]
CANARY = "canaries.kubectl-canary.dev"
# The header of `kubectl canary status -A` (-o wide adds TARGET, PROVIDER and MESSAGE).
STATUS_ALL_COLUMNS = ["NAMESPACE", "NAME", "PHASE", "WEIGHT", "FAILED", "LAST", "TRANSITION"]


def require_kubectl() -> str:
    kubectl = shutil.which("kubectl")
    assert kubectl, "these tests run `kubectl canary`: install kubectl and put it on PATH"
    return kubectl


def install_plugin(bin_dir: Path) -> None:
    """Put a `kubectl-canary` shim running this checkout into `bin_dir`."""
    bin_dir.mkdir(parents=True, exist_ok=True)
    shim = bin_dir / "kubectl-canary"
    shim.write_text(
        f"#!/bin/sh\nexec {sys.executable} -c "
        "'from kubectl_canary.cli.main import main; main()' \"$@\"\n"
    )
    shim.chmod(0o755)


def init_command(workdir: Path, metrics_server: str = "") -> tuple[str, ...]:
    """`kubectl canary init` with the agent as a local process logging to workdir/agent.log,
    reading metrics from `metrics_server` when one is given."""
    metrics = ("--metrics-server", metrics_server) if metrics_server else ()
    return (
        "canary",
        "init",
        "--agent-process",
        "--agent-log",
        str(workdir / "agent.log"),
        *metrics,
        "--timeout",
        "60",
    )


def sandbox_traffic(
    services: list[tuple[str, str]], rps: int, profiles: dict[str, Any]
) -> dict[str, Any]:
    """The sandbox's traffic ConfigMap: `rps` simulated requests a second to each
    (namespace, service), answered as `profiles` says per image tag."""
    apps = [{"namespace": ns, "service": name, "rps": rps} for ns, name in services]
    return {
        "apiVersion": "v1",
        "kind": "ConfigMap",
        "metadata": {"name": "sandbox-traffic", "namespace": "kube-system"},
        "data": {"apps": yaml.safe_dump(apps), "profiles": yaml.safe_dump(profiles)},
    }


def plugin_environment(bin_dir: Path, kubeconfig: Path) -> dict[str, str]:
    return {
        **os.environ,
        "KUBECONFIG": str(kubeconfig),
        "PATH": f"{bin_dir}{os.pathsep}{os.environ['PATH']}",
        "PYTHONPATH": str(ROOT),
    }


class KubectlEnv:
    """The real kubectl, with the plugin on its PATH, against one cluster."""

    def __init__(self, env: dict[str, str], kubectl: str) -> None:
        self.env = env
        self.kubectl = kubectl

    def run(
        self, *args: str, input: str | None = None, timeout: float = 120
    ) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [self.kubectl, *args],
            env=self.env,
            input=input,
            capture_output=True,
            text=True,
            timeout=timeout,
        )

    def ok(self, *args: str, input: str | None = None, timeout: float = 120) -> str:
        done = self.run(*args, input=input, timeout=timeout)
        assert done.returncode == 0, f"kubectl {' '.join(args)}: {done.stdout}\n{done.stderr}"
        return done.stdout

    def apply(self, *objs: dict[str, Any]) -> None:
        self.ok("apply", "-f", "-", input=yaml.safe_dump_all(objs))

    def get(self, kind: str, name: str, ns: str = "") -> dict[str, Any] | None:
        """The object as kubectl prints it with -o json, or None when it does not exist."""
        done = self.run("get", kind, name, *(["-n", ns] if ns else []), "-o", "json")
        if done.returncode != 0 and "NotFound" in done.stderr:
            return None
        assert done.returncode == 0, done.stderr
        return dict(json.loads(done.stdout))

    def canary_status(self, ns: str, name: str) -> dict[str, Any]:
        obj = self.get(CANARY, name, ns)
        assert obj is not None, f"Canary {ns}/{name} not found"
        return dict(obj.get("status") or {})

    def poll(self, what: str, check: Callable[[], bool], timeout: float = 60) -> None:
        """Wait until `check()` holds, at most `timeout` seconds."""
        deadline = time.monotonic() + timeout
        while not check():
            assert time.monotonic() < deadline, f"timed out after {timeout:.0f}s waiting for {what}"
            time.sleep(0.3)


def local_agent(kubeconfig: Path) -> LocalAgent | None:
    """The agent process `init --agent-process` recorded in the cluster, if any."""
    from kubectl_canary import kube
    from kubectl_canary.cli.agent_info import read_local

    return read_local(kube.connect(str(kubeconfig)), "kubectl-canary")


def stop_agent(agent: LocalAgent | None) -> None:
    """Stop a local agent process (SIGTERM, then SIGKILL); nothing if it is gone already."""
    from kubectl_canary.cli.init import stop_local_agent

    if agent is not None:
        stop_local_agent(agent, time.sleep)


E = TypeVar("E", bound=KubectlEnv)


@contextmanager
def plugin_on_sandbox(
    workdir: Path, make: Callable[[dict[str, str], str], E] = KubectlEnv
) -> Iterator[E]:
    """A sandbox with the plugin installed (its shim in workdir/bin) and the agent running as a
    local process; the agent is stopped and the sandbox removed at the end."""
    from kubectl_canary.sandbox.process import start_sandbox

    kubectl = require_kubectl()
    install_plugin(workdir / "bin")
    with start_sandbox(workdir / "sandbox") as sandbox:
        env = make(plugin_environment(workdir / "bin", sandbox.kubeconfig), kubectl)
        try:
            env.ok(*init_command(workdir))
            yield env
        finally:
            stop_agent(local_agent(sandbox.kubeconfig))
