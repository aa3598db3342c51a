"""What only a real API server can show: `kubectl wait` on the Promoted condition, names and
labels the server would refuse, server-side apply next to the agent's status writes, and that
the RBAC the agent runs under is exactly what `init` renders. No metrics are involved, so this
runs on any cluster.
"""

from __future__ import annotations

import time
import urllib.error
import urllib.request
from pathlib import Path
from typing import Any

import pytest
import yaml

from tests.e2e.agent_harness import ClusterView, deployment, start_agent, wait_for
from tests.realcluster.bed import AGENT_ACCOUNT, AGENT_NAMESPACE, Bed, plain_canary
from tests.realcluster.bed import image as tagged

pytestmark = [pytest.mark.realcluster]

CANARY = "canaries.kubectl-canary.dev"


def condition(c: ClusterView, ns: str, name: str, kind: str) -> dict[str, Any]:
    found = [x for x in c.status(ns, name).get("conditions", []) if x["type"] == kind]
    return found[0] if found else {}


@pytest.mark.timeout(300)
def test_kubectl_wait_for_the_promoted_condition(bed: Bed, ns: str, tmp_path: Path) -> None:
    """Applied server-side (managedFields, field ownership) while the agent writes status:
    `kubectl wait --for=condition=Promoted` blocks through a release and returns at its end;
    `=False` does the same for a release that never gets ready (rolled back at the deadline)."""
    c = bed.view()
    c.apply(deployment(ns, "api", tagged("1.1.1")))
    manifest = yaml.safe_dump(plain_canary(ns, "api"))
    bed.kubectl("apply", "--server-side", "--field-manager=gitops", "-f", "-", input=manifest)
    with bed.agent(tmp_path / "agent.log"):
        c.wait_phase(ns, "api", "Initialized", 90, 0.5)
        c.set_image(ns, "api", tagged("1.1.2"))
        wait_for(
            "Promoted=Unknown",
            lambda: condition(c, ns, "api", "Promoted").get("status") == "Unknown",
            30,
            0.2,
        )
        began = time.monotonic()
        bed.kubectl(
            "wait",
            f"{CANARY}/api",
            "-n",
            ns,
            "--for=condition=Promoted",
            "--timeout=120s",
            timeout=150,
        )
        assert time.monotonic() - began > 1, "kubectl waited for the release"
        assert c.phase(ns, "api") == "Succeeded"

        # The owner of the spec re-applies it server-side: no conflict with the status writer.
        changed = plain_canary(ns, "api")
        changed["spec"]["analysis"]["threshold"] = 3
        again = bed.kubectl(
            "apply",
            "--server-side",
            "--field-manager=gitops",
            "-f",
            "-",
            input=yaml.safe_dump(changed),
        )
        assert "conflict" not in again.stderr.lower()

        c.set_image(ns, "api", tagged("crashloop"))  # never Ready
        bed.kubectl(
            "wait",
            f"{CANARY}/api",
            "-n",
            ns,
            "--for=condition=Promoted=False",
            "--timeout=120s",
            timeout=150,
        )
        assert c.phase(ns, "api") == "Failed"
        assert any("progress deadline" in m.lower() for m in messages(c, ns, "api"))


def messages(c: ClusterView, ns: str, name: str) -> list[str]:
    return [h["message"] for h in c.status(ns, name).get("history", [])]


@pytest.mark.timeout(180)
def test_names_the_api_server_would_refuse(bed: Bed, ns: str, tmp_path: Path) -> None:
    """A target whose selector label leaves no room for `-primary` gets an Invalid condition and
    one Warning, and nothing is created; a Canary name longer than a label value is refused at
    the door by the CRD; a canary beside them progresses all the same."""
    c = bed.view()
    long_name = "a" * 60  # the primary's selector label would be 68 characters
    c.apply(deployment(ns, long_name, tagged("1.1.1")))
    c.apply(plain_canary(ns, "long", target=long_name, service_name="short"))
    c.apply(deployment(ns, "fine", tagged("1.1.1")))
    c.apply(plain_canary(ns, "fine"))
    refused = bed.kubectl(
        "apply",
        "-f",
        "-",
        input=yaml.safe_dump(plain_canary(ns, "n" * 64, target="fine")),
        check=False,
    )
    assert refused.returncode != 0
    assert "metadata.name in body should be at most 63 chars long" in refused.stderr
    with bed.agent(tmp_path / "agent.log"):
        wait_for(
            "the Valid=False condition",
            lambda: condition(c, ns, "long", "Valid").get("status") == "False",
            30,
            0.3,
        )
        valid = condition(c, ns, "long", "Valid")
        assert valid["reason"] == "InvalidSpec"
        assert f"app={long_name}-primary would have 68 characters" in valid["message"]
        c.wait_phase(ns, "fine", "Initialized", 60, 0.3)
        time.sleep(4)  # two more ticks of the invalid canary: still one Warning, no writes
        warnings = [e for e in c.events(ns, "long") if e["type"] == "Warning"]
        assert len(warnings) == 1 and "would have 68 characters" in warnings[0]["message"]
        assert c.get("apps/v1", "Deployment", ns, f"{long_name}-primary") is None
        assert c.get("v1", "Service", ns, "short") is None
        assert (c.get("apps/v1", "Deployment", ns, long_name) or {})["spec"]["replicas"] == 2


def test_agent_rbac_is_exactly_what_init_renders(bed: Bed) -> None:
    """The roles on the cluster are init's, and the agent's token is bound to nothing else."""
    c = bed.view()
    for doc in bed.rendered:
        if doc["kind"] not in ("ClusterRole", "Role"):
            continue
        ns = doc["metadata"].get("namespace", "")
        live = c.get("rbac.authorization.k8s.io/v1", doc["kind"], ns, doc["metadata"]["name"])
        assert live is not None and live["rules"] == doc["rules"], doc["metadata"]["name"]
    subject = {"kind": "ServiceAccount", "name": AGENT_ACCOUNT, "namespace": AGENT_NAMESPACE}
    bound = []
    for kind in ("ClusterRoleBinding", "RoleBinding"):
        items, _ = c.client.list("rbac.authorization.k8s.io/v1", kind, None)
        bound += [
            (kind, b["metadata"]["name"])
            for b in items
            if any(
                s.get("kind") == "ServiceAccount"
                and s.get("name") == subject["name"]
                and s.get("namespace") == subject["namespace"]
                for s in b.get("subjects") or []
            )
        ]
    rendered = sorted(
        (d["kind"], d["metadata"]["name"]) for d in bed.rendered if d["kind"].endswith("Binding")
    )
    assert sorted(bound) == rendered
    # And real RBAC holds the line: the token cannot read what the agent was never granted.
    denied = bed.kubectl(
        "auth",
        "can-i",
        "create",
        "clusterroles",
        f"--as=system:serviceaccount:{AGENT_NAMESPACE}:{AGENT_ACCOUNT}",
        check=False,
    )
    assert denied.stdout.strip() == "no"


@pytest.mark.timeout(180)
def test_the_primary_carries_no_gitops_tracking_metadata(bed: Bed, ns: str, tmp_path: Path) -> None:
    """Argo CD (tracking label and annotation), Flux and Helm keys on the target are not copied:
    on the primary they would make those tools prune or adopt it."""
    c = bed.view()
    target = deployment(ns, "shop", tagged("1.1.1"))
    target["metadata"]["labels"].update(
        {"app.kubernetes.io/instance": "shop", "kustomize.toolkit.fluxcd.io/name": "apps"}
    )
    target["metadata"]["annotations"] = {
        "argocd.argoproj.io/tracking-id": f"shop:apps/Deployment:{ns}/shop",
        "meta.helm.sh/release-name": "shop",
        "team": "web",
    }
    c.apply(target)
    c.apply(plain_canary(ns, "shop"))
    with bed.agent(tmp_path / "agent.log"):
        c.wait_phase(ns, "shop", "Initialized", 60, 0.3)
    primary = c.get("apps/v1", "Deployment", ns, "shop-primary")
    assert primary is not None
    meta = primary["metadata"]
    assert meta["labels"] == {"app": "shop", "kubectl-canary.dev/canary": "shop"}
    assert meta["annotations"]["team"] == "web"
    tracking = [k for k in meta["annotations"] if k.startswith(("argocd.", "meta.helm.sh/"))]
    assert tracking == []


@pytest.mark.timeout(180)
def test_a_users_hpa_in_the_way_is_a_condition_not_a_takeover(
    bed: Bed, ns: str, tmp_path: Path
) -> None:
    """The user already has an HPA named `<hpa>-primary` (for another app): the agent does not
    retarget it; the Canary says what is in the way, and proceeds once it is gone."""
    c = bed.view()
    c.apply(deployment(ns, "api", tagged("1.1.1")))
    c.apply(hpa(ns, "api", "api"))
    c.apply(hpa(ns, "api-primary", "billing"))
    spec = plain_canary(ns, "api")
    spec["spec"]["autoscalerRef"] = {
        "apiVersion": "autoscaling/v2",
        "kind": "HorizontalPodAutoscaler",
        "name": "api",
    }
    c.apply(spec)
    with bed.agent(tmp_path / "agent.log"):
        wait_for(
            "Valid=False ObjectInTheWay",
            lambda: condition(c, ns, "api", "Valid").get("reason") == "ObjectInTheWay",
            60,
            0.3,
        )
        assert "HorizontalPodAutoscaler" in condition(c, ns, "api", "Valid")["message"]
        theirs = c.get("autoscaling/v2", "HorizontalPodAutoscaler", ns, "api-primary")
        assert theirs is not None
        assert theirs["spec"]["scaleTargetRef"]["name"] == "billing", "never retargeted"
        assert "kubectl-canary.dev/canary" not in (theirs["metadata"].get("labels") or {})
        bed.kubectl("delete", "hpa", "api-primary", "-n", ns)
        c.wait_phase(ns, "api", "Initialized", 60, 0.3)
        assert condition(c, ns, "api", "Valid").get("status") == "True"
        ours = c.get("autoscaling/v2", "HorizontalPodAutoscaler", ns, "api-primary")
        assert ours is not None and ours["spec"]["scaleTargetRef"]["name"] == "api-primary"


def hpa(ns: str, name: str, target: str) -> dict[str, Any]:
    return {
        "apiVersion": "autoscaling/v2",
        "kind": "HorizontalPodAutoscaler",
        "metadata": {"name": name, "namespace": ns},
        "spec": {
            "scaleTargetRef": {"apiVersion": "apps/v1", "kind": "Deployment", "name": target},
            "minReplicas": 2,
            "maxReplicas": 4,
        },
    }


@pytest.mark.timeout(180)
def test_an_agent_whose_caches_cannot_sync_does_not_act(bed: Bed, ns: str, tmp_path: Path) -> None:
    """An agent under RBAC that lacks list/watch on one kind it caches (HPAs): it must not act
    on a partial view of the cluster. /readyz names the kind, the log says why, and no Canary
    is touched; the same Canary initialises at once under init's RBAC."""
    c = bed.view()
    account = "partial-agent"
    rules = [
        r
        for d in bed.rendered
        if d["kind"] == "ClusterRole"
        for r in d["rules"]
        if "horizontalpodautoscalers" not in r.get("resources", [])
    ]
    lease_rules = [r for d in bed.rendered if d["kind"] == "Role" for r in d["rules"]]
    role = {"apiVersion": "rbac.authorization.k8s.io/v1", "metadata": {"name": account}}
    subject = [{"kind": "ServiceAccount", "name": account, "namespace": AGENT_NAMESPACE}]
    objects = [
        {
            "apiVersion": "v1",
            "kind": "ServiceAccount",
            "metadata": {"name": account, "namespace": AGENT_NAMESPACE},
        },
        {**role, "kind": "ClusterRole", "rules": rules},
        {
            **role,
            "kind": "ClusterRoleBinding",
            "subjects": subject,
            "roleRef": {
                "apiGroup": "rbac.authorization.k8s.io",
                "kind": "ClusterRole",
                "name": account,
            },
        },
        {
            **role,
            "kind": "Role",
            "metadata": {"name": account, "namespace": AGENT_NAMESPACE},
            "rules": lease_rules,
        },
        {
            **role,
            "kind": "RoleBinding",
            "metadata": {"name": account, "namespace": AGENT_NAMESPACE},
            "subjects": subject,
            "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "Role", "name": account},
        },
    ]
    manifest = yaml.safe_dump_all(objects)
    bed.kubectl("apply", "-f", "-", input=manifest)
    try:
        c.apply(deployment(ns, "web", tagged("1.1.1")))
        c.apply(plain_canary(ns, "web"))
        log = tmp_path / "partial-agent.log"
        agent = start_agent(
            bed.kubeconfig_for(AGENT_NAMESPACE, account),
            log,
            "--lease-duration",
            "2s",
            "--sync-timeout",
            "3s",
        )
        try:
            wait_for(
                "the not-acting log line",
                lambda: any("not acting on any canary" in str(x.get("msg")) for x in agent.lines()),
                30,
                0.3,
            )
            code, body = readyz(agent.port)
            assert code == 503 and "horizontalpodautoscaler" in body.lower(), body
        finally:
            assert agent.stop() == 0
        assert not c.status(ns, "web"), "nothing acted on the canary"
        assert (c.get("apps/v1", "Deployment", ns, "web") or {})["spec"]["replicas"] == 2
        assert c.get("apps/v1", "Deployment", ns, "web-primary") is None
    finally:
        bed.kubectl("delete", "-f", "-", "--ignore-not-found", input=manifest)
    with bed.agent(tmp_path / "agent.log"):
        c.wait_phase(ns, "web", "Initialized", 60, 0.3)


def readyz(port: int) -> tuple[int, str]:
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/readyz", timeout=5) as resp:
            return int(resp.status), resp.read().decode()
    except urllib.error.HTTPError as exc:
        return int(exc.code), exc.read().decode()
