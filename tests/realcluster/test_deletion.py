"""Removing the product never takes an app down and never touches what is not ours, on a real
API server (real garbage collection, finalizers, endpoints):

- `kubectl canary uninstall --force` with two Canaries (istio and kubernetes providers) under
  traffic: every app is handed back the way `offboard` does before the agent goes; no request
  finds a Service without a ready endpoint, and each app is served by its own Deployment at
  the primary's scale afterwards. (Before, it deleted the Canaries: garbage collection took
  the primaries, and the apex Service we created, while the targets sat at zero replicas.)
- `kubectl canary offboard`, and the agent's own hand-back when the Canary is then deleted,
  leave a VirtualService named like the apex alone when it carries someone else's
  ownerReference and none of our marks.
"""

from __future__ import annotations

import socket
import threading
from pathlib import Path

import pytest

from tests.e2e.agent_harness import deployment, start_agent, wait_for
from tests.e2e.scenario_helpers import image
from tests.e2e.traffic_watch import (
    App,
    EndpointsSampler,
    app_canary,
    assert_nothing_lost,
    mesh_counts,
    ready_addresses,
    served_after,
)
from tests.realcluster.bed import AGENT_ACCOUNT, AGENT_NAMESPACE, Bed, forbidden_requests
from tests.realcluster.bed import image as tagged

pytestmark = [pytest.mark.realcluster]

CANARY_API = "kubectl-canary.dev/v1alpha1"
ISTIO = "networking.istio.io/v1beta1"
CRDS = ("canaries.kubectl-canary.dev", "metrictemplates.kubectl-canary.dev")
RPS = 25


def register_local_agent(bed: Bed, pid: int, log_path: Path) -> None:
    """Record the test's agent process as `init --agent-process` records its own, so that
    uninstall finds and stops it (the bed runs the agent as a process, not a Deployment)."""
    bed.view().apply(
        {
            "apiVersion": "v1",
            "kind": "ConfigMap",
            "metadata": {"name": "canary-agent-process", "namespace": AGENT_NAMESPACE},
            "data": {
                "identity": f"{socket.gethostname()}_{pid}",
                "pid": str(pid),
                "host": socket.gethostname(),
                "logFile": str(log_path),
                "version": "test",
            },
        }
    )


def reinstall(bed: Bed) -> None:
    """The product back as the session's bed had it, for the tests after this one (the audit
    log is read from where the session started, for the RBAC usage check)."""
    wait_for(
        "the uninstalled CRDs to be gone",
        lambda: (
            not [
                n for n in CRDS if n in bed.kubectl("get", "crd", "-o", "name", check=False).stdout
            ]
        ),
        120,
        1,
    )
    offset = bed.audit_offset
    bed.install()
    bed.audit_offset = offset


@pytest.mark.timeout(720)
def test_uninstall_force_hands_every_app_back_under_traffic(
    bed: Bed, ns: str, tmp_path: Path
) -> None:
    bed.require_mesh()
    apps = [
        App(ns, "cart", "kubernetes", 2, "1.1.2", "Succeeded"),
        App(ns, "shop", "istio", 3, "1.1.2", "Succeeded"),
    ]
    c = bed.view()
    log_path = tmp_path / "agent.log"
    agent = start_agent(
        bed.agent_kubeconfig,
        log_path,
        "--lease-duration",
        "2s",
        metrics_server=bed.prometheus_url,
    )
    # uninstall stops the agent from another process: reap it here at once, so it does not
    # linger as a zombie that uninstall would take for alive.
    threading.Thread(target=agent.proc.wait, daemon=True).start()
    try:
        for app in apps:
            c.apply(deployment(ns, app.name, tagged("1.1.1"), replicas=app.replicas))
            c.apply(app_canary(app))
            bed.traffic(ns, app.name, RPS)
        for app in apps:
            c.wait_phase(ns, app.name, "Initialized", 90, 0.5)
            c.set_image(ns, app.name, tagged(app.new_tag))
        for app in apps:
            c.wait_phase(ns, app.name, "Succeeded", 150, 0.5)
            served_after(bed.mesh_metrics, ns, f"{app.name}-primary", 20, 30)
        replicas = {
            a.name: c.get("apps/v1", "Deployment", ns, f"{a.name}-primary")["spec"]["replicas"]  # type: ignore[index]
            for a in apps
        }
        register_local_agent(bed, agent.proc.pid, log_path)
        refused = forbidden_requests(agent)  # while it still answers on /metrics

        before = mesh_counts(bed.mesh_metrics, ns)
        with (
            EndpointsSampler(bed.admin_kubeconfig, ns, "cart") as cart,
            EndpointsSampler(bed.admin_kubeconfig, ns, "shop") as shop,
        ):
            done = bed.kubectl("canary", "uninstall", "--force", "--timeout", "120", timeout=600)
            for app in apps:
                served_after(bed.mesh_metrics, ns, app.name, 20, 30)
        after = mesh_counts(bed.mesh_metrics, ns)

        during = f"during `kubectl canary uninstall --force`:\n{done.stdout}"
        assert_nothing_lost(before, after, cart, during)
        assert shop.empty_samples == 0, f"shop had no ready endpoint: {shop.counts}"
        for app in apps:
            assert f"canary/{ns}/{app.name} handed back and deleted" in done.stdout
            target = c.get("apps/v1", "Deployment", ns, app.name)
            assert target is not None
            assert image(c, ns, app.name) == tagged(app.new_tag)
            assert target["spec"]["replicas"] == replicas[app.name]
            assert (target.get("status") or {}).get("readyReplicas") == replicas[app.name]
            apex = c.get("v1", "Service", ns, app.name)
            assert apex is not None, "the apex Service keeps serving"
            assert apex["spec"]["selector"] == target["spec"]["selector"]["matchLabels"]
            assert not apex["metadata"].get("ownerReferences")
            endpoints = c.get("v1", "Endpoints", ns, app.name)
            serving = {a["targetRef"]["name"] for a in ready_addresses(endpoints)}
            assert serving and all("-primary-" not in p for p in serving), serving
            assert c.get("apps/v1", "Deployment", ns, f"{app.name}-primary") is None
        assert c.get(ISTIO, "VirtualService", ns, "shop") is None, "mesh-only: deleted"
        # The agent is gone: stopped by uninstall (cleanly), its account and the CRDs deleted.
        wait_for("the agent to exit", lambda: agent.proc.poll() is not None, 30)
        assert agent.proc.returncode == 0, log_path.read_text()[-2000:]
        assert c.get("v1", "ServiceAccount", AGENT_NAMESPACE, AGENT_ACCOUNT) is None
        assert done.stdout.endswith("kubectl-canary uninstalled\n")
        assert refused == [], f"the agent was refused by RBAC: {refused}"
    finally:
        agent.stop()
        bed.stop_traffic(ns)
        reinstall(bed)


@pytest.mark.timeout(300)
def test_offboard_leaves_a_virtual_service_owned_by_someone_else_alone(
    bed: Bed, ns: str, tmp_path: Path
) -> None:
    bed.require_mesh()
    c = bed.view()
    name = "shelf"
    with bed.agent(tmp_path / "agent.log"):
        c.apply(deployment(ns, name, tagged("1.1.1"), replicas=2))
        c.apply(app_canary(App(ns, name, "istio", 2, "1.1.2", "Succeeded")))
        c.wait_phase(ns, name, "Initialized", 90, 0.5)
        # The Canary is suspended; another operator replaces the VirtualService with its own.
        bed.kubectl(
            "patch",
            f"canaries.kubectl-canary.dev/{name}",
            "-n",
            ns,
            "--type=merge",
            "-p",
            '{"spec":{"suspend":true}}',
        )
        generation = c.canary(ns, name)["metadata"]["generation"]
        wait_for(
            "the agent to see the suspension",
            lambda: c.status(ns, name).get("observedGeneration") == generation,
            30,
        )
        owner = c.apply(
            {
                "apiVersion": "v1",
                "kind": "ConfigMap",
                "metadata": {"name": "other-operator", "namespace": ns},
                "data": {"owns": f"virtualservice/{name}"},
            }
        )
        bed.kubectl("delete", "virtualservice", name, "-n", ns)
        foreign = c.apply(
            {
                "apiVersion": ISTIO,
                "kind": "VirtualService",
                "metadata": {
                    "name": name,
                    "namespace": ns,
                    "labels": {"owner": "other-operator"},
                    "ownerReferences": [
                        {
                            "apiVersion": "v1",
                            "kind": "ConfigMap",
                            "name": "other-operator",
                            "uid": owner["metadata"]["uid"],
                            "controller": True,
                        }
                    ],
                },
                "spec": {
                    "hosts": [name],
                    "http": [
                        {"route": [{"destination": {"host": name, "port": {"number": 9898}}}]}
                    ],
                },
            }
        )

        done = bed.kubectl("canary", "offboard", name, "-n", ns, "--timeout", "90", timeout=300)
        # The agent saw the deletion too (it still holds the finalizer until offboard drops
        # it): its hand-back must leave the VirtualService alone as well.
        wait_for("the Canary gone", lambda: c.get(CANARY_API, "Canary", ns, name) is None, 60)

    assert "VirtualService shelf no longer belongs to the canary" in done.stdout, done.stdout
    live = c.get(ISTIO, "VirtualService", ns, name)
    assert live is not None, "someone else's VirtualService was deleted"
    assert live["metadata"]["resourceVersion"] == foreign["metadata"]["resourceVersion"], (
        "someone else's VirtualService was rewritten"
    )
    # What was ours went.
    for kind, generated in (
        ("DestinationRule", f"{name}-primary"),
        ("DestinationRule", f"{name}-canary"),
    ):
        assert c.get(ISTIO, kind, ns, generated) is None
    assert c.get("apps/v1", "Deployment", ns, f"{name}-primary") is None
