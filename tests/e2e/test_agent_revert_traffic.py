"""revertOnDeletion under simulated traffic: `kubectl delete canary` gives the app back to its
own Deployment without a moment where the apex Service has no ready endpoint.

Two apps share one sandbox and one agent (metrics from the sandbox's own query endpoint):
- `good` (provider kubernetes: the apex selector moves) after a Succeeded release;
- `bad` (provider istio: a VirtualService routes) after a Failed one (its new version fails
  half its requests): the target gets its last promoted template back before it serves.
Around each deletion, the mesh's count of requests that found no ready endpoint (503 UH) must
not grow, and the apex Service's Endpoints, polled every ~50 ms and watched, never empty.
"""

from __future__ import annotations

import os
import subprocess
from collections.abc import Iterator
from dataclasses import dataclass

import pytest

from .agent_harness import (
    IMAGE_PREFIX,
    AgentProcess,
    Cluster,
    agent_rbac_rules,
    api_requests,
    deployment,
    namespace,
    rbac_allows,
    require_binary,
    running_agent,
    sandbox,
    wait_for,
)
from .scenario_helpers import install_app
from .traffic_watch import (
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

ISTIO = "networking.istio.io/v1beta1"
RPS = 25  # per simulated second, per app
SPEED = 2


GOOD = App("revert-succeeded", "good", "kubernetes", 3, "1.1.2", "Succeeded")
BAD = App("revert-failed", "bad", "istio", 2, "1.1.3", "Failed")


@dataclass
class Stack:
    cluster: Cluster
    kubectl: str
    agent: AgentProcess

    @property
    def url(self) -> str:
        return self.cluster.sandbox.url

    def kubectl_run(self, *args: str, timeout: float = 180) -> subprocess.CompletedProcess[str]:
        env = {**os.environ, "KUBECONFIG": str(self.cluster.sandbox.kubeconfig)}
        return subprocess.run(
            [self.kubectl, *args], env=env, capture_output=True, text=True, timeout=timeout
        )


@pytest.fixture(scope="module")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    """Sandbox + agent + both apps released: `good` Succeeded on 1.1.2, `bad` Failed on 1.1.3."""
    kubectl = require_binary("kubectl")
    tmp = tmp_path_factory.mktemp("revert-traffic")
    with sandbox(tmp / "sandbox", speed=SPEED) as sb:
        c = Cluster(sb)
        c.apply(namespace("kubectl-canary"))
        apps = (GOOD, BAD)
        c.traffic(
            [{"namespace": a.namespace, "service": a.name, "rps": RPS} for a in apps],
            {BAD.new_tag: {"errorRate": 0.5}},
        )
        for app in apps:
            install_app(c, app.namespace, app.name, replicas=app.replicas)
            c.apply(app_canary(app, revertOnDeletion=True))
        with running_agent(
            sb.kubeconfig,
            tmp / "agent.log",
            "--lease-duration",
            "2s",
            metrics_server=f"{sb.url}/sandbox/prometheus",
        ) as agent:

            def phases() -> tuple[str, ...]:
                return tuple(c.phase(a.namespace, a.name) for a in apps)

            wait_for("both Initialized", lambda: phases() == ("Initialized",) * 2, 90, 0.5)
            for app in apps:
                # A merge patch, not a read-then-replace that races the simulated
                # Deployment controller's status writes (409).
                new = deployment(app.namespace, app.name, IMAGE_PREFIX + app.new_tag)
                patch = {"spec": {"template": new["spec"]["template"]}}
                c.client.patch_merge("apps/v1", "Deployment", app.namespace, app.name, patch)
            outcomes = tuple(a.outcome for a in apps)
            wait_for(f"the releases to end {outcomes}", lambda: phases() == outcomes, 120, 0.5)
            yield Stack(c, kubectl, agent)


def delete_under_traffic(s: Stack, app: App) -> None:
    c, ns = s.cluster, app.namespace
    primary = c.get("apps/v1", "Deployment", ns, f"{app.name}-primary")
    assert primary is not None
    replicas = primary["spec"]["replicas"]
    target = c.get("apps/v1", "Deployment", ns, app.name)
    assert target is not None and target["spec"]["replicas"] == 0, "parked between releases"
    template = target["spec"]["template"]
    promoted_images = [c["image"] for c in primary["spec"]["template"]["spec"]["containers"]]
    served_after(
        sandbox_mesh(s.url), ns, f"{app.name}-primary", 20, 30
    )  # a live app before we start

    before = mesh_counts(sandbox_mesh(s.url), ns)
    with EndpointsSampler(c.sandbox.kubeconfig, ns, app.name) as sampler:
        # kubectl waits for the deletion to finish, i.e. for the agent's finalizer to go.
        done = s.kubectl_run(
            "delete", "canaries.kubectl-canary.dev", app.name, "-n", ns, "--timeout=150s"
        )
        assert done.returncode == 0, done.stdout + done.stderr
        # The Canary's generated objects go by garbage collection; measure until then, and
        # until the target's pods have answered more requests after it.
        wait_for(
            f"{app.name}-primary garbage-collected",
            lambda: c.get("apps/v1", "Deployment", ns, f"{app.name}-primary") is None,
            30,
        )
        served_after(sandbox_mesh(s.url), ns, app.name, 20, 30)
    after = mesh_counts(sandbox_mesh(s.url), ns)

    assert_nothing_lost(before, after, sampler, f"while canary {app.name} was deleted")

    # The finalizer (and with it the primary) went only after the agent had seen the apex
    # Service's endpoints move to the target's pods, one tick after it changed the selector.
    where = f"{app.name}.{ns}"
    messages = [e["message"] for e in c.events(ns, app.name)]
    waiting = (
        f"Waiting for the endpoints of service {where} to be the pods of {where} "
        "before reverting the routing"
    )
    finished = f"Reverted {where}: finalizer removed"
    assert waiting in messages and finished in messages, messages
    assert messages.index(waiting) < messages.index(finished), messages
    # It read them live, and the shipped RBAC grants those reads.
    requests = api_requests(s.agent.metrics())
    assert requests.get(("get", "endpoints"), 0) >= 1 and requests.get(("list", "pods"), 0) >= 1
    rules = agent_rbac_rules()
    denied = [k for k in requests if k[1] and not rbac_allows(rules, *k)]
    assert denied == [], f"the agent used verbs its RBAC does not grant: {denied}"

    reverted = c.get("apps/v1", "Deployment", ns, app.name)
    assert reverted is not None
    status = reverted.get("status") or {}
    assert reverted["spec"]["replicas"] == replicas, "the primary's replica count"
    assert status.get("readyReplicas") == replicas
    images = [c["image"] for c in reverted["spec"]["template"]["spec"]["containers"]]
    if app.outcome == "Succeeded":
        # The target already holds the promoted revision: its template is left as it is.
        assert reverted["spec"]["template"] == template
    else:
        # The failed revision was never promoted: the target gets the primary's (last good)
        # template back rather than serving the failed version to everyone.
        assert images == promoted_images and images != [
            c["image"] for c in template["spec"]["containers"]
        ], (images, promoted_images)
    apex = c.get("v1", "Service", ns, app.name)
    assert apex is not None, "the apex Service keeps serving"
    assert apex["spec"]["selector"] == reverted["spec"]["selector"]["matchLabels"]
    assert not apex["metadata"].get("ownerReferences")
    pods, _ = c.client.list("v1", "Pod", ns)
    target_pods = {
        p["metadata"]["name"]
        for p in pods
        if (p["metadata"].get("labels") or {}).get("app") == app.name
    }
    serving = {
        a["targetRef"]["name"] for a in ready_addresses(c.get("v1", "Endpoints", ns, app.name))
    }
    assert serving and serving <= target_pods, (serving, target_pods)
    left = [
        f"{kind}/{name}"
        for api, kind, name in [
            ("v1", "Service", f"{app.name}-primary"),
            ("v1", "Service", f"{app.name}-canary"),
            (ISTIO, "VirtualService", app.name),
            (ISTIO, "DestinationRule", f"{app.name}-primary"),
            (ISTIO, "DestinationRule", f"{app.name}-canary"),
        ]
        if c.get(api, kind, ns, name) is not None
    ]
    assert not left, f"left behind: {left}"


@pytest.mark.timeout(420)
def test_revert_after_a_succeeded_release(stack: Stack) -> None:
    """kubernetes provider: the apex selector moves from the primary's pods to the target's."""
    delete_under_traffic(stack, GOOD)


@pytest.mark.timeout(300)
def test_revert_after_a_failed_release(stack: Stack) -> None:
    """istio provider: the VirtualService goes once the apex Service selects the target."""
    delete_under_traffic(stack, BAD)
