"""`kubectl canary offboard` under simulated traffic, through the real kubectl and agent.

The plugin's promise: offboarding loses no request to missing endpoints and leaves a plain
Deployment running the last good version (the primary's) with the primary's replicas, after a
Succeeded release and after a Failed one. Two apps share one sandbox and one agent:
- `good` (provider kubernetes: the apex Service's selector moves) released to Succeeded;
- `bad` (provider istio: a VirtualService routes) whose new version fails half its requests,
  so its checks fail and the release ends Failed with the old version on the primary.
While each is offboarded, the sandbox's mesh counts requests that found no ready endpoint
(503 UH) and a thread samples the apex Service's Endpoints every ~50 ms.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.cli.kubectl_env import (
    CANARY,
    KubectlEnv,
    init_command,
    install_plugin,
    local_agent,
    plugin_environment,
    require_kubectl,
    sandbox_traffic,
    stop_agent,
)
from tests.e2e.agent_harness import wait_for
from tests.e2e.traffic_watch import (
    App,
    EndpointsSampler,
    app_canary,
    assert_nothing_lost,
    mesh_counts,
    ready_addresses,
    sandbox_mesh,
    served_after,
)

pytestmark = [pytest.mark.e2e, pytest.mark.kubectl]

IMAGE = "ghcr.io/acme/shop:"
ISTIO = "networking.istio.io"
RPS = 25  # per simulated second, per app; the sandbox runs at SPEED
SPEED = 2


GOOD = App("offboard-succeeded", "good", "kubernetes", 3, "1.1.2", "Succeeded")
BAD = App("offboard-failed", "bad", "istio", 2, "1.1.3", "Failed")


class Cluster(KubectlEnv):
    """Real kubectl (the plugin on its PATH) against the sandbox, plus the sandbox's URL."""

    def __init__(self, env: dict[str, str], kubectl: str, url: str, kubeconfig: Path) -> None:
        super().__init__(env, kubectl)
        self.url, self.kubeconfig = url, kubeconfig

    def phase(self, app: App) -> str:
        obj = self.get(CANARY, app.name, app.namespace) or {}
        return str((obj.get("status") or {}).get("phase", ""))


def deployment(app: App, tag: str) -> dict[str, Any]:
    return {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {"name": app.name, "namespace": app.namespace},
        "spec": {
            "replicas": app.replicas,
            "selector": {"matchLabels": {"app": app.name}},
            "template": {
                "metadata": {"labels": {"app": app.name}},
                "spec": {"containers": [{"name": "app", "image": IMAGE + tag}]},
            },
        },
    }


@pytest.fixture(scope="module")
def cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Cluster]:
    """Sandbox + the agent (`init --agent-process`, metrics from the sandbox's own query
    endpoint) + both apps released: `good` Succeeded on 1.1.2, `bad` Failed on 1.1.3."""
    from kubectl_canary.sandbox.process import start_sandbox

    kubectl = require_kubectl()
    tmp = tmp_path_factory.mktemp("e2e-offboard")
    install_plugin(tmp / "bin")
    with start_sandbox(tmp / "sandbox", speed=SPEED) as sandbox:
        env = plugin_environment(tmp / "bin", sandbox.kubeconfig)
        c = Cluster(env, kubectl, sandbox.url, sandbox.kubeconfig)
        try:
            c.ok(*init_command(tmp, metrics_server=f"{sandbox.url}/sandbox/prometheus"))
            release_both(c)
            yield c
        finally:
            stop_agent(local_agent(sandbox.kubeconfig))


def release_both(c: Cluster) -> None:
    apps = (GOOD, BAD)
    services = [(app.namespace, app.name) for app in apps]
    c.apply(sandbox_traffic(services, RPS, {BAD.new_tag: {"errorRate": 0.5}}))
    for app in apps:
        c.apply(
            {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": app.namespace}},
            deployment(app, "1.1.1"),
            app_canary(app),
        )
    phases = lambda: tuple(c.phase(app) for app in apps)  # noqa: E731
    wait_for("both Initialized", lambda: phases() == ("Initialized",) * 2, 90, 0.5)
    c.apply(*(deployment(app, app.new_tag) for app in apps))
    outcomes = tuple(app.outcome for app in apps)
    wait_for(f"the releases to end {outcomes}", lambda: phases() == outcomes, 120, 0.5)


def offboard_under_traffic(c: Cluster, app: App, last_good: str) -> None:
    primary = c.get("deployment", f"{app.name}-primary", app.namespace)
    assert primary is not None
    containers = primary["spec"]["template"]["spec"]["containers"]
    assert containers[0]["image"] == IMAGE + last_good, "the primary serves the last good version"
    replicas = primary["spec"]["replicas"]
    # Traffic flows before we start: the counters below measure a live app.
    served_after(sandbox_mesh(c.url), app.namespace, f"{app.name}-primary", 20, 30)

    before = mesh_counts(sandbox_mesh(c.url), app.namespace)
    with EndpointsSampler(c.kubeconfig, app.namespace, app.name) as sampler:
        done = c.run(
            "canary", "offboard", app.name, "-n", app.namespace, "--timeout", "90", timeout=300
        )
        assert done.returncode == 0, done.stdout + done.stderr
        assert "did not confirm the suspension" not in done.stderr, done.stderr
        # Keep measuring until the target's pods have answered more requests after the
        # offboard: the end state is covered too, not only the steps.
        served_after(sandbox_mesh(c.url), app.namespace, app.name, 20, 30)
    after = mesh_counts(sandbox_mesh(c.url), app.namespace)
    print(  # shown with -s: how much the measurements saw
        f"{app.name}: {after.total - before.total} requests, {len(sampler.counts)} Endpoints "
        f"samples, watched ready counts {sampler.watched}"
    )

    assert_nothing_lost(before, after, sampler, f"during the offboard:\n{done.stdout}")

    target = c.get("deployment", app.name, app.namespace)
    assert target is not None
    spec, status = target["spec"], target.get("status") or {}
    assert spec["template"]["spec"]["containers"][0]["image"] == IMAGE + last_good
    assert spec["replicas"] == replicas
    assert status.get("readyReplicas") == replicas and status.get("updatedReplicas") == replicas
    assert not target["metadata"].get("ownerReferences")

    svc = c.get("service", app.name, app.namespace)
    assert svc is not None and svc["spec"]["selector"] == spec["selector"]["matchLabels"]
    assert not svc["metadata"].get("ownerReferences")
    pods = json.loads(
        c.ok("get", "pods", "-n", app.namespace, "-l", f"app={app.name}", "-o", "json")
    )
    target_pods = {p["metadata"]["name"] for p in pods["items"]}
    endpoints = c.get("endpoints", app.name, app.namespace)
    serving = {a["targetRef"]["name"] for a in ready_addresses(endpoints)}
    assert serving and serving <= target_pods, (serving, target_pods)

    generated = [
        ("deployment", f"{app.name}-primary"),
        ("service", f"{app.name}-primary"),
        ("service", f"{app.name}-canary"),
        (CANARY, app.name),
    ]
    if app.provider == "istio":
        generated += [
            (f"virtualservices.{ISTIO}", app.name),
            (f"destinationrules.{ISTIO}", f"{app.name}-primary"),
            (f"destinationrules.{ISTIO}", f"{app.name}-canary"),
        ]
    left = [f"{kind}/{name}" for kind, name in generated if c.get(kind, name, app.namespace)]
    assert not left, f"left behind: {left}"


@pytest.mark.timeout(420)
def test_offboard_after_a_succeeded_release(cluster: Cluster) -> None:
    """kubernetes provider: the apex selector moves from the primary's pods to the target's."""
    offboard_under_traffic(cluster, GOOD, last_good=GOOD.new_tag)


@pytest.mark.timeout(300)
def test_offboard_after_a_failed_release(cluster: Cluster) -> None:
    """istio provider: the target is restored to the primary's 1.1.1, not the failed 1.1.3,
    and the VirtualService goes so callers reach the apex Service directly."""
    offboard_under_traffic(cluster, BAD, last_good="1.1.1")
