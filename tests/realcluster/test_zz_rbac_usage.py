"""The agent's RBAC is exactly what it uses: after the whole tier ran (this module sorts last)
and one more release that walks the paths no other test takes (a fresh Lease, the primary's
ConfigMap/Secret/HPA copies created, updated and deleted, each provider's objects handed back on
deletion), every (resource, verb) `init` grants the agent must have been used by it, per the API
server's audit log, and it used nothing else (every agent context of the tier also fails on a
single 403). The few grants no request can show are listed in AUTHORIZATION_ONLY with why.
docs/security.md lists the same rules with the reason for each.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from tests.e2e.agent_harness import ClusterView, deployment, wait_for
from tests.realcluster.bed import AGENT_ACCOUNT, AGENT_NAMESPACE, Bed, plain_canary
from tests.realcluster.bed import image as tagged

pytestmark = [pytest.mark.realcluster]

HERE = Path(__file__).resolve().parent
LEASE = "kubectl-canary-agent"
ISTIO_API = "networking.istio.io/v1beta1"

# Grants that are checked by the API server without a request of that verb ever being made.
AUTHORIZATION_ONLY = {
    # Setting an ownerReference with blockOwnerDeletion on a Canary's objects: checked by the
    # OwnerReferencesPermissionEnforcement admission plugin where a cluster enables it.
    ("kubectl-canary.dev", "canaries/finalizers", "update"),
}


def granted(rendered: list[dict[str, Any]]) -> set[tuple[str, str, str]]:
    """(apiGroup, resource, verb) of every rule bound to the agent's ServiceAccount."""
    bound = set()
    for doc in rendered:
        if doc["kind"] in ("ClusterRoleBinding", "RoleBinding") and any(
            s.get("name") == AGENT_ACCOUNT for s in doc.get("subjects") or []
        ):
            bound.add((doc["roleRef"]["kind"], doc["roleRef"]["name"]))
    out = set()
    for doc in rendered:
        if (
            doc["kind"] not in ("ClusterRole", "Role")
            or (doc["kind"], doc["metadata"]["name"]) not in bound
        ):
            continue
        for rule in doc.get("rules") or []:
            for group in rule.get("apiGroups") or []:
                for resource in rule.get("resources") or []:
                    for verb in rule.get("verbs") or []:
                        out.add((group, resource, verb))
    return out


def whole_tier_ran(session: pytest.Session) -> list[str]:
    """The tier's modules this run did not include (the check needs every one of them)."""
    ran = {Path(str(item.path)).name for item in session.items}
    modules = sorted(p.name for p in HERE.glob("test_*.py"))
    return [m for m in modules if m not in ran]


@pytest.mark.timeout(600)
def test_the_agent_uses_every_verb_it_is_granted_and_no_other(
    bed: Bed, request: pytest.FixtureRequest, tmp_path: Path
) -> None:
    if bed.audit_offset < 0:
        pytest.skip(f"{bed.mode} cluster: no audit log to read the agent's requests from")
    missing_modules = whole_tier_ran(request.session)
    if missing_modules:
        pytest.skip(
            "needs the whole real-cluster tier in one run; not run: " + ", ".join(missing_modules)
        )
    exercise_the_rare_paths(bed, tmp_path)
    used = bed.agent_api_use()
    grants = granted(bed.rendered)
    unused = sorted(grants - set(used) - AUTHORIZATION_ONLY)
    beyond = sorted(set(used) - grants)
    print("agent requests by (group, resource, verb):")
    for key, count in sorted(used.items()):
        print(f"  {key}: {count}")
    assert not beyond, f"the agent used what it is not granted: {beyond}"
    assert not unused, f"granted to the agent but never used by it in the whole tier: {unused}"


def config_target(ns: str, name: str) -> dict[str, Any]:
    """A Deployment whose pods read a ConfigMap, an optional one and an optional Secret
    (tracked configs)."""
    dep = deployment(ns, name, tagged("1.1.1"))
    container = dep["spec"]["template"]["spec"]["containers"][0]
    container["envFrom"] = [
        {"configMapRef": {"name": f"{name}-settings"}},
        {"configMapRef": {"name": f"{name}-extra", "optional": True}},
        {"secretRef": {"name": f"{name}-creds", "optional": True}},
    ]
    return dep


def hpa(ns: str, name: str, top: int) -> dict[str, Any]:
    return {
        "apiVersion": "autoscaling/v2",
        "kind": "HorizontalPodAutoscaler",
        "metadata": {"name": name, "namespace": ns},
        "spec": {
            "scaleTargetRef": {"apiVersion": "apps/v1", "kind": "Deployment", "name": name},
            "minReplicas": 1,
            "maxReplicas": top,
            "metrics": [
                {
                    "type": "Resource",
                    "resource": {
                        "name": "cpu",
                        "target": {"type": "Utilization", "averageUtilization": 80},
                    },
                }
            ],
        },
    }


def released(c: ClusterView, ns: str, name: str, image: str) -> None:
    c.set_image(ns, name, tagged(image))
    c.wait_phase(ns, name, "Succeeded", 150, 0.5)


def exercise_the_rare_paths(bed: Bed, tmp_path: Path) -> None:
    c = bed.view()
    ns = bed.namespace("rbac-paths")
    try:
        # No Lease yet: the first agent creates it.
        bed.kubectl("-n", AGENT_NAMESPACE, "delete", "lease", LEASE, "--ignore-not-found")
        c.apply(
            {
                "apiVersion": "v1",
                "kind": "ConfigMap",
                "metadata": {"name": "cfg-settings", "namespace": ns},
                "data": {"mode": "a"},
            }
        )
        c.apply(
            {
                "apiVersion": "v1",
                "kind": "Secret",
                "metadata": {"name": "cfg-creds", "namespace": ns},
                "stringData": {"key": "a"},
            }
        )
        c.apply(
            {
                "apiVersion": "v1",
                "kind": "ConfigMap",
                "metadata": {"name": "cfg-extra", "namespace": ns},
                "data": {"extra": "1"},
            }
        )
        c.apply(config_target(ns, "cfg"))
        c.apply(hpa(ns, "cfg", 3))
        canary = plain_canary(ns, "cfg")
        canary["spec"]["autoscalerRef"] = {
            "apiVersion": "autoscaling/v2",
            "kind": "HorizontalPodAutoscaler",
            "name": "cfg",
        }
        routed = {}
        for provider in ("istio", "gatewayapi"):
            name = f"rt-{provider}"
            c.apply(deployment(ns, name, tagged("1.1.1")))
            routed[name] = plain_canary(ns, name)
            routed[name]["spec"]["provider"] = provider
            routed[name]["spec"]["revertOnDeletion"] = True
        routed["rt-gatewayapi"]["spec"]["service"]["gatewayRefs"] = [
            {"name": "public", "namespace": ns}
        ]
        with bed.agent(tmp_path / "agent.log", provider="kubernetes"):
            c.apply(canary)
            for obj in routed.values():
                c.apply(obj)
            c.wait_phase(ns, "cfg", "Initialized", 90, 0.5)  # copies created
            # New data in both configs and a new HPA limit: promoted copies are updated.
            c.apply(
                {
                    "apiVersion": "v1",
                    "kind": "ConfigMap",
                    "metadata": {"name": "cfg-settings", "namespace": ns},
                    "data": {"mode": "b"},
                }
            )
            c.apply(
                {
                    "apiVersion": "v1",
                    "kind": "Secret",
                    "metadata": {"name": "cfg-creds", "namespace": ns},
                    "stringData": {"key": "b"},
                }
            )
            c.apply(hpa(ns, "cfg", 4))
            released(c, ns, "cfg", "1.1.2")
            # The optional Secret and ConfigMap are gone: the promoted release deletes copies.
            bed.kubectl("-n", ns, "delete", "secret", "cfg-creds")
            bed.kubectl("-n", ns, "delete", "configmap", "cfg-extra")
            released(c, ns, "cfg", "1.1.4")
            for kind, copy_name in (
                ("Secret", "cfg-creds-primary"),
                ("ConfigMap", "cfg-extra-primary"),
            ):
                wait_for(
                    f"the {kind} copy deleted",
                    lambda kind=kind, copy_name=copy_name: c.get("v1", kind, ns, copy_name) is None,
                    60,
                    0.5,
                )
            # A new trafficPolicy in the Canary: its DestinationRules are updated.
            c.wait_phase(ns, "rt-istio", "Initialized", 90, 0.5)
            policy = '{"spec":{"service":{"trafficPolicy":{"loadBalancer":{"simple":"RANDOM"}}}}}'
            bed.kubectl(
                "-n",
                ns,
                "patch",
                "canaries.kubectl-canary.dev",
                "rt-istio",
                "--type=merge",
                "-p",
                policy,
            )
            wait_for(
                "the DestinationRule updated",
                lambda: (
                    "RANDOM"
                    in str(
                        (c.get(ISTIO_API, "DestinationRule", ns, "rt-istio-canary") or {}).get(
                            "spec"
                        )
                    )
                ),
                90,
                0.5,
            )
            # Deleting the routed Canaries hands their objects back (revertOnDeletion).
            for name in routed:
                c.wait_phase(ns, name, "Initialized", 90, 0.5)
                bed.kubectl(
                    "-n", ns, "delete", "canaries.kubectl-canary.dev", name, "--timeout=120s"
                )
    finally:
        bed.drop_namespace(ns)
