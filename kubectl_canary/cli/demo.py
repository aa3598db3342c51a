"""`kubectl canary demo`: the product's story (DESIGN §1) on a throwaway sandbox, narrated.

Nothing needs to be installed: a sandbox API server with simulated pods and Istio traffic
starts in a temporary directory, the agent runs as a local process, and the release is
time-compressed (checks every few seconds). Metrics come from a real Prometheus when one is
on PATH, otherwise from the sandbox's own query endpoint, and the demo says which.
Everything it started is stopped at the end, also on Ctrl-C.
"""

from __future__ import annotations

import contextlib
import shutil
import sys
import tempfile
import time
from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path
from typing import Any

import click

from kubectl_canary.api.durations import format_duration
from kubectl_canary.api.model import API_VERSION
from kubectl_canary.cli.agent_info import DEFAULT_NAMESPACE, read_local
from kubectl_canary.cli.apply import apply
from kubectl_canary.cli.durations import DURATION
from kubectl_canary.cli.errors import CliError
from kubectl_canary.cli.init import init, stop_local_agent
from kubectl_canary.cli.options import KubeFlags, Session, current_runtime, no_color_option
from kubectl_canary.cli.reads import get_canary
from kubectl_canary.cli.status import render_list, render_one
from kubectl_canary.objects.names import primary_deployment_name

Obj = dict[str, Any]

NS = "application"
APP = "mhs"
IMAGE = "ghcr.io/stefanprodan/podinfo"
FRAME_SECONDS = 0.5
STAGE_TIMEOUT = 120.0


def objects(interval: str) -> list[Obj]:
    """The app of the story: namespace, traffic settings, Deployment mhs 1.1.1 and its Canary."""
    return [
        {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": NS}},
        {
            "apiVersion": "v1",
            "kind": "ConfigMap",
            "metadata": {"name": "sandbox-traffic", "namespace": "kube-system"},
            "data": {
                "apps": f"- {{namespace: {NS}, service: {APP}, rps: 40}}\n",
                # 1.1.3 is the bad release of the story: it fails half its requests.
                "profiles": "'1.1.3': {errorRate: 0.5}\n",
                "readyDelaySeconds": "1",
            },
        },
        deployment("1.1.1"),
        {
            "apiVersion": API_VERSION,
            "kind": "Canary",
            "metadata": {"name": APP, "namespace": NS},
            "spec": {
                "provider": "istio",
                "targetRef": {"apiVersion": "apps/v1", "kind": "Deployment", "name": APP},
                "progressDeadlineSeconds": 60,
                "service": {"port": 9898},
                "analysis": {
                    "interval": interval,
                    "threshold": 3,
                    "maxWeight": 50,
                    "stepWeight": 10,
                    "metrics": [
                        {
                            "name": "request-success-rate",
                            "thresholdRange": {"min": 99},
                            "interval": "10s",
                        },
                        {
                            "name": "request-duration",
                            "thresholdRange": {"max": 500},
                            "interval": "10s",
                        },
                    ],
                },
            },
        },
    ]


def deployment(tag: str) -> Obj:
    labels = {"app": APP}
    return {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {"name": APP, "namespace": NS, "labels": labels},
        "spec": {
            "replicas": 2,
            "selector": {"matchLabels": labels},
            "template": {
                "metadata": {"labels": labels},
                "spec": {
                    "containers": [
                        {
                            "name": "app",
                            "image": f"{IMAGE}:{tag}",
                            "ports": [{"containerPort": 9898}],
                        }
                    ]
                },
            },
        },
    }


def say(text: str) -> None:
    click.secho(f"\n==> {text}", bold=True)


class LiveView:
    """The status view of the story: redrawn in place on a terminal; elsewhere, new events only."""

    def __init__(self, session: Session) -> None:
        self.session = session
        self.tty = sys.stdout.isatty()
        self.shown = ""
        self.seen_events = 0

    def frame(self, obj: Obj) -> None:
        if self.tty:
            text = render_one(self.session, obj, None)
            if text != self.shown:
                click.echo("\x1b[H\x1b[2J" + text)
                self.shown = text
            return
        history = (obj.get("status") or {}).get("history") or []
        for entry in history[self.seen_events :]:
            click.echo(f"    {entry.get('type', ''):<8}{entry.get('message', '')}")
        self.seen_events = len(history)

    def until(self, phases: set[str], since_history: int | None = None) -> Obj:
        """Draw until the canary reaches one of `phases` (after history entry `since_history`)."""
        kube = self.session.kube
        deadline = time.monotonic() + STAGE_TIMEOUT
        while True:
            obj = get_canary(kube, NS, APP)
            self.frame(obj)
            status = obj.get("status") or {}
            fresh = since_history is None or len(status.get("history") or []) > since_history
            if status.get("phase") in phases and fresh:
                return obj
            if time.monotonic() > deadline:
                raise CliError(
                    f"the demo's canary did not reach {'/'.join(sorted(phases))} in "
                    f"{STAGE_TIMEOUT:g}s (phase {status.get('phase')})"
                )
            time.sleep(FRAME_SECONDS)


def bump(session: Session, tag: str) -> int:
    """Ship `tag`; returns the history length before, so waits look at what follows."""
    obj = get_canary(session.kube, NS, APP)
    before = len((obj.get("status") or {}).get("history") or [])
    apply(session.kube, deployment(tag))
    return before


@contextlib.contextmanager
def metrics_backend(sandbox_url: str, use_prometheus: bool) -> Iterator[tuple[str, str]]:
    """(metrics server URL, description): a real Prometheus when on PATH, else the sandbox's."""
    if not use_prometheus or shutil.which("prometheus") is None:
        why = "as asked" if not use_prometheus else "`prometheus` is not on PATH"
        yield (
            f"{sandbox_url}/sandbox/prometheus",
            f"{why}: the sandbox itself answers the built-in queries from its own counters",
        )
        return
    from kubectl_canary.sandbox.prometheus import start_prometheus

    handle = start_prometheus(sandbox_url.removeprefix("http://"))
    try:
        yield handle.url, f"a real Prometheus ({handle.url}) scrapes the simulated Istio metrics"
    finally:
        handle.stop()


@click.command(
    "demo",
    epilog="""\b
Examples:
  kubectl canary demo
  kubectl canary demo --interval 5s   # slower, easier to follow
""",
)
@click.option(
    "--interval",
    type=DURATION,
    default="3s",
    show_default=True,
    help="analysis.interval of the demo canary.",
)
@click.option("--keep", is_flag=True, help="Leave the sandbox running at the end (Ctrl-C stops).")
@click.option(
    "--no-prometheus",
    is_flag=True,
    help="Use the sandbox's built-in query endpoint even when prometheus is on PATH.",
)
@no_color_option
@click.pass_context
def demo(
    ctx: click.Context, interval: float, keep: bool, no_prometheus: bool, no_color: bool
) -> None:
    """Run the whole story on a local sandbox: install, release, roll back, in about a minute."""
    from kubectl_canary.cli.sandbox import require_full_install
    from kubectl_canary.sandbox.process import SandboxError, start_sandbox

    require_full_install("the demo")
    workdir = Path(tempfile.mkdtemp(prefix="kubectl-canary-demo-"))
    try:
        say("Starting a sandbox cluster (simulated API server, pods and Istio traffic)")
        try:
            sandbox = start_sandbox(workdir / "sandbox")
        except SandboxError as e:
            raise CliError(f"the sandbox did not start: {e}") from None
        with sandbox, metrics_backend(sandbox.url, not no_prometheus) as (metrics_url, how):
            click.echo(f"    API server {sandbox.url}; kubeconfig {sandbox.kubeconfig}")
            click.echo(f"    metrics: {how}")
            kubeconfig = str(sandbox.kubeconfig)
            flags = KubeFlags(kubeconfig=kubeconfig)
            session = Session(current_runtime(), flags, no_color=no_color)
            try:
                spec_interval = format_duration(interval)  # as the CRD writes it: 3 -> "3s"
                story(ctx, session, kubeconfig, metrics_url, spec_interval, workdir)
                if keep:
                    say(f"Sandbox kept running: export KUBECONFIG={kubeconfig}; Ctrl-C ends it")
                    while True:
                        time.sleep(3600)
            except KeyboardInterrupt:
                click.echo("\ninterrupted")
            finally:
                local = read_local(session.kube, DEFAULT_NAMESPACE)
                if local is not None:
                    stop_local_agent(local, time.sleep)
        say("Done: the sandbox, the agent and Prometheus are stopped")
    finally:
        shutil.rmtree(workdir, ignore_errors=True)


def story(
    ctx: click.Context,
    session: Session,
    kubeconfig: str,
    metrics_url: str,
    interval: str,
    workdir: Path,
) -> None:
    say(
        "kubectl canary init --provider istio --metrics-server ... "
        "(the agent runs as a local process: the sandbox has no kubelet)"
    )
    ctx.invoke(
        init,
        kubeconfig=kubeconfig,
        provider="istio",
        metrics_server=metrics_url,
        agent_process=True,
        agent_log=str(workdir / "agent.log"),
        timeout=60.0,
    )
    say(f"Deploying {APP} 1.1.1 (2 replicas) with a Canary: istio, +10% every {interval}")
    for obj in objects(interval):
        apply(session.kube, obj)
    view = LiveView(session)
    view.until({"Initialized", "Succeeded"})
    say(f"{primary_deployment_name(APP)} serves all traffic. Shipping 1.1.2, a good release")
    before = bump(session, "1.1.2")
    view.until({"Succeeded", "Failed"}, before)
    say("Shipping 1.1.3, which fails half of its requests")
    before = bump(session, "1.1.3")
    view.until({"Failed", "Succeeded"}, before)
    say("Rolled back: 1.1.2 keeps serving. The whole story, as `kubectl canary status mhs`:")
    obj = get_canary(session.kube, NS, APP)
    click.echo(render_one(session, obj, None))
    say("kubectl canary status -A")
    click.echo(render_list(replace(session, all_namespaces=True), [obj], None))
