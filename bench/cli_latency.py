#!/usr/bin/env python3
"""CLI latency: `kubectl canary status -A` against `kubectl get canaries -A`, in the same run.

    python3 bench/cli_latency.py [--runs 15] [--sizes 10,200] [--adapters] [--launcher PATH]
                                 [--kubeconfig PATH]

Creates N Canaries (with a status, as the agent would leave them) and reports the median wall
time of each command run through the real `kubectl` (the plugin is found on PATH as
`kubectl-canary`, like a krew install; `--launcher` measures an unpacked krew archive's
`kubectl-canary` instead of the checkout), and their ratio. By default on a throwaway sandbox;
`--kubeconfig` runs on that cluster instead, e.g. the real API server of ../shared/k8s
(`--kubeconfig ${K8S_RUN:-/tmp/k8s-realcp}/kubeconfig`): the CRDs are applied, the Canaries
go into `bench-*` namespaces, which are deleted at the end. With --adapters it also compares
two ways of listing from Python, each in a fresh interpreter: the plugin's client
(kubectl_canary.kube over kr8s) and the `kubernetes` package's kubeconfig loader + REST client.
Prints only; a benchmark, not a test.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from agent.kube import KubeClient  # noqa: E402
from kubectl_canary.api.model import API_VERSION  # noqa: E402
from kubectl_canary.resources import AlreadyExistsError  # noqa: E402
from kubectl_canary.sandbox.process import start_sandbox  # noqa: E402

NAMESPACES = ("bench-shop", "bench-web", "bench-payments", "bench-search")
CRDS = ROOT / "kubectl_canary" / "manifests" / "crds"

OWN_CLIENT = """
from kubectl_canary import kube
kube.connect().list("kubectl-canary.dev/v1alpha1", "Canary", None)
"""
# The alternative: the official package's kubeconfig loader and its REST client (urllib3 pool),
# reading plain JSON: the cheapest way to use that library.
KUBERNETES_CLIENT = """
import json
from kubernetes import client, config
from kubernetes.client import rest
cfg = client.Configuration()
config.load_kube_config(client_configuration=cfg)
headers = {s["key"]: s["value"] for s in cfg.auth_settings().values() if s.get("value")}
pool = rest.RESTClientObject(cfg).pool_manager
resp = pool.request("GET", cfg.host + "/apis/kubectl-canary.dev/v1alpha1/canaries",
                    headers=headers)
json.loads(resp.data)
"""


def canary(i: int) -> dict[str, object]:
    return {
        "apiVersion": API_VERSION,
        "kind": "Canary",
        "metadata": {"name": f"app-{i:03d}", "namespace": NAMESPACES[i % len(NAMESPACES)]},
        "spec": {
            "targetRef": {"apiVersion": "apps/v1", "kind": "Deployment", "name": f"app-{i:03d}"},
            "service": {"port": 8080},
            "analysis": {"interval": "1m", "threshold": 5, "maxWeight": 50, "stepWeight": 10},
        },
    }


def status(i: int) -> dict[str, object]:
    return {
        "phase": "Progressing" if i % 3 else "Succeeded",
        "canaryWeight": (i % 5) * 10,
        "failedChecks": i % 2,
        "lastTransitionTime": "2026-11-27T09:00:00Z",
        "history": [
            {
                "time": "2026-11-27T09:00:00Z",
                "type": "Normal",
                "reason": "Synced",
                "message": f"Advance app-{i:03d} canary weight {(i % 5) * 10}",
            }
        ],
    }


def populate(client: KubeClient, start: int, stop: int) -> None:
    """Through the agent's client, which writes the status subresource as the agent does."""
    for ns in NAMESPACES:
        with contextlib.suppress(AlreadyExistsError):
            client.create({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": ns}})
    for i in range(start, stop):
        created = client.create(canary(i))
        created["status"] = status(i)
        client.update_status(created)


def median_seconds(cmd: list[str], env: dict[str, str], runs: int) -> float:
    times = []
    for _ in range(runs):
        start = time.perf_counter()
        subprocess.run(
            cmd,
            env=env,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            check=True,
            timeout=60,
        )
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def drop_namespaces(kubectl: str, env: dict[str, str], wait: bool = False) -> None:
    subprocess.run(
        [kubectl, "delete", "namespace", *NAMESPACES, "--ignore-not-found", f"--wait={wait}"],
        env=env, check=True, capture_output=True, timeout=300,
    )  # fmt: skip


def plugin_shim(folder: Path, launcher: Path | None) -> Path:
    """A `kubectl-canary` on PATH running this checkout (or a krew archive's launcher)."""
    shim = folder / "kubectl-canary"
    if launcher is not None:
        shim.write_text(f'#!/bin/sh\nexec {sys.executable} {launcher.resolve()} "$@"\n')
    else:
        shim.write_text(
            f"#!/bin/sh\nexec {sys.executable} -c "
            "'from kubectl_canary.cli.main import main; main()' \"$@\"\n"
        )
    shim.chmod(0o755)
    return folder


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--runs", type=int, default=15)
    parser.add_argument("--sizes", default="10,200")
    parser.add_argument("--adapters", action="store_true", help="compare Python client libraries")
    parser.add_argument(
        "--launcher",
        type=Path,
        help="measure this unpacked krew archive's kubectl-canary (scripts/build_release.py)",
    )
    parser.add_argument(
        "--kubeconfig", type=Path, help="run on this cluster instead of a throwaway sandbox"
    )
    args = parser.parse_args()
    sizes = sorted(int(s) for s in args.sizes.split(","))
    kubectl = shutil.which("kubectl")
    if kubectl is None:
        print("kubectl is not on PATH", file=sys.stderr)
        return 1
    with contextlib.ExitStack() as stack:
        tmp = Path(stack.enter_context(tempfile.TemporaryDirectory(prefix="cli-latency-")))
        if args.kubeconfig is None:
            sandbox = stack.enter_context(start_sandbox(tmp / "sandbox", simulation=False))
            kubeconfig, where = sandbox.kubeconfig, "the sandbox"
        else:
            kubeconfig, where = args.kubeconfig.resolve(), f"the cluster of {args.kubeconfig}"
        env = dict(os.environ)
        env["KUBECONFIG"] = str(kubeconfig)
        env["PATH"] = f"{plugin_shim(tmp, args.launcher)}{os.pathsep}{env['PATH']}"
        env["PYTHONPATH"] = str(ROOT)
        client = KubeClient.from_kubeconfig(str(kubeconfig))
        if args.kubeconfig is not None:
            apply = [kubectl, "apply", "--server-side", "-f", str(CRDS)]
            subprocess.run(apply, env=env, check=True, capture_output=True, timeout=120)
            subprocess.run(
                [kubectl, "wait", "--for=condition=Established", "-f", str(CRDS)],
                env=env, check=True, capture_output=True, timeout=120,
            )  # fmt: skip
            stack.callback(drop_namespaces, kubectl, env)
            drop_namespaces(kubectl, env, wait=True)  # a previous run's leftovers
        made = 0
        print(f"on {where}")
        print(f"{'canaries':>8}  {'plugin status -A':>17}  {'kubectl get -A':>15}  ratio")
        for size in sizes:
            populate(client, made, size)
            made = size
            plugin = median_seconds([kubectl, "canary", "status", "-A"], env, args.runs)
            get = median_seconds([kubectl, "get", "canaries", "-A"], env, args.runs)
            print(
                f"{size:>8}  {plugin * 1000:>14.0f} ms  {get * 1000:>12.0f} ms  {plugin / get:5.2f}"
            )
        if args.adapters:
            print("\nlisting all canaries from a fresh Python process (median):")
            for label, code in (
                ("kubectl_canary.kube", OWN_CLIENT),
                ("kubernetes package", KUBERNETES_CLIENT),
            ):
                t = median_seconds([sys.executable, "-c", code], env, args.runs)
                print(f"  {label:<20} {t * 1000:6.0f} ms")
            t = median_seconds([sys.executable, "-c", "pass"], env, args.runs)
            print(f"  {'python3 -c pass':<20} {t * 1000:6.0f} ms")
    return 0


if __name__ == "__main__":
    sys.exit(main())
