"""`kubectl canary offboard` and deleting a Canary with revertOnDeletion hand the app back
through the same functions (kubectl_canary/objects/handback.py), so they must leave the same
objects behind: for every provider, with routing objects the agent created and with ones it
took over (docs/release-semantics.md, "The hand-back").

Each story runs twice on one sandbox with one agent, in two namespaces that differ only in how
the Canary goes: `<story>-offboard` by the plugin (`python -m kubectl_canary offboard`, what
`kubectl canary offboard` runs), `<story>-revert` by `delete canary`. Then every remaining
object of the kinds a Canary touches is compared between the two, with what the API server
assigns (uid, resourceVersion, timestamps, managedFields, generation, status, cluster IPs)
left out.
"""

from __future__ import annotations

import copy
import os
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

import pytest

from kubectl_canary.resources import ResourceTypeMissingError

from .agent_harness import (
    CANARY_API,
    IMAGE_PREFIX,
    REPO,
    Cluster,
    deployment,
    namespace,
    running_agent,
    sandbox,
    wait_for,
)

pytestmark = [pytest.mark.e2e]

ISTIO = "networking.istio.io/v1beta1"
GATEWAY = "gateway.networking.k8s.io/v1"
APP = "shop"
WAYS = ("offboard", "revert")
# Kinds a Canary creates, takes over or leaves behind (pods, ReplicaSets and Endpoints are the
# controllers' business).
KINDS = (
    ("apps/v1", "Deployment"),
    ("v1", "Service"),
    ("v1", "ConfigMap"),
    (ISTIO, "VirtualService"),
    (ISTIO, "DestinationRule"),
    (GATEWAY, "HTTPRoute"),
    (CANARY_API, "Canary"),
)
ASSIGNED_METADATA = (
    "uid",
    "resourceVersion",
    "creationTimestamp",
    "managedFields",
    "generation",
    "namespace",
    "selfLink",
)


@dataclass(frozen=True)
class Story:
    name: str
    provider: str
    service: dict[str, Any] = field(default_factory=dict)  # the Canary's spec.service extras
    taken_over: bool = False  # the apex Service and routing object exist before onboarding

    def namespace(self, way: str) -> str:
        return f"{self.name}-{way}"


STORIES = (
    Story("istio-mesh", "istio"),
    Story("istio-gateway", "istio", {"gateways": ["istio-system/public-gateway"]}),
    Story(
        "gatewayapi",
        "gatewayapi",
        {"gatewayRefs": [{"name": "public", "namespace": "gateway-system"}]},
    ),
    Story("kubernetes", "kubernetes"),
    Story("istio-taken", "istio", {"gateways": ["istio-system/public-gateway"]}, taken_over=True),
    Story(
        "gatewayapi-taken",
        "gatewayapi",
        {"gatewayRefs": [{"name": "public", "namespace": "gateway-system"}]},
        taken_over=True,
    ),
    Story("kubernetes-taken", "kubernetes", taken_over=True),
)


def app_objects(story: Story, ns: str) -> list[dict[str, Any]]:
    """The app as it ran before onboarding: a Deployment reading a ConfigMap (so the primary
    gets a copy), and, for a take-over story, its own Service and routing object."""
    app = deployment(ns, APP, IMAGE_PREFIX + "1.1.1", replicas=2)
    container = app["spec"]["template"]["spec"]["containers"][0]
    container["envFrom"] = [{"configMapRef": {"name": f"{APP}-settings"}}]
    settings = {
        "apiVersion": "v1",
        "kind": "ConfigMap",
        "metadata": {"name": f"{APP}-settings", "namespace": ns},
        "data": {"GREETING": "hello"},
    }
    objects = [namespace(ns), settings, app]
    if not story.taken_over:
        return objects
    user = {"owner": "team-shop"}
    objects.append(
        {
            "apiVersion": "v1",
            "kind": "Service",
            "metadata": {"name": APP, "namespace": ns, "labels": user},
            "spec": {"selector": {"app": APP}, "ports": [{"port": 9898, "targetPort": 9898}]},
        }
    )
    if story.provider == "istio":
        objects.append(
            {
                "apiVersion": ISTIO,
                "kind": "VirtualService",
                "metadata": {"name": APP, "namespace": ns, "labels": user},
                "spec": {
                    "hosts": [APP],
                    "gateways": ["istio-system/public-gateway"],
                    "http": [{"route": [{"destination": {"host": APP}}]}],
                },
            }
        )
    elif story.provider == "gatewayapi":
        objects.append(
            {
                "apiVersion": GATEWAY,
                "kind": "HTTPRoute",
                "metadata": {"name": APP, "namespace": ns, "labels": user},
                "spec": {
                    "parentRefs": [{"name": "public", "namespace": "gateway-system"}],
                    "rules": [{"backendRefs": [{"name": APP, "port": 9898}]}],
                },
            }
        )
    return objects


def canary(story: Story, ns: str) -> dict[str, Any]:
    return {
        "apiVersion": CANARY_API,
        "kind": "Canary",
        "metadata": {"name": APP, "namespace": ns},
        "spec": {
            "provider": story.provider,
            "revertOnDeletion": True,
            "progressDeadlineSeconds": 60,
            "targetRef": {"apiVersion": "apps/v1", "kind": "Deployment", "name": APP},
            "service": {"port": 9898, "targetPort": 9898, **story.service},
            "analysis": {"interval": "2s", "threshold": 2, "stepWeight": 25, "maxWeight": 50},
        },
    }


def normalised(obj: dict[str, Any]) -> dict[str, Any]:
    """`obj` without what the API server assigns, so the two namespaces' copies compare."""
    result = copy.deepcopy(obj)
    result.pop("status", None)
    meta = result["metadata"]
    for key in ASSIGNED_METADATA:
        meta.pop(key, None)
    for ref in meta.get("ownerReferences") or []:
        ref.pop("uid", None)
    if result["kind"] == "Service":
        for key in ("clusterIP", "clusterIPs"):
            result["spec"].pop(key, None)
    return result


def remaining(c: Cluster, ns: str) -> dict[tuple[str, str], dict[str, Any]]:
    """Every object of KINDS in `ns`, by (kind, name), normalised."""
    found = {}
    for api_version, kind in KINDS:
        try:
            items, _ = c.client.list(api_version, kind, ns)
        except ResourceTypeMissingError:
            continue
        for item in items:
            if kind == "ConfigMap" and item["metadata"]["name"] == "kube-root-ca.crt":
                continue  # every namespace's, not the app's
            found[(kind, item["metadata"]["name"])] = normalised(item)
    return found


@pytest.fixture(scope="module")
def handed_back(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Cluster]:
    """Every story onboarded twice, then offboarded in one namespace and reverted in the
    other; yields once both are done."""
    tmp = tmp_path_factory.mktemp("handback")
    with sandbox(tmp / "sandbox", speed=2) as sb:
        c = Cluster(sb)
        c.apply(namespace("kubectl-canary"))
        for story in STORIES:
            for way in WAYS:
                ns = story.namespace(way)
                for obj in app_objects(story, ns):
                    c.apply(obj)
                c.apply(canary(story, ns))
        with running_agent(sb.kubeconfig, tmp / "agent.log", "--lease-duration", "2s"):
            namespaces = [story.namespace(way) for story in STORIES for way in WAYS]
            wait_for(
                "every Canary Initialized",
                lambda: all(c.phase(ns, APP) == "Initialized" for ns in namespaces),
                120,
                0.5,
            )
            env = {**os.environ, "KUBECONFIG": str(sb.kubeconfig)}
            offboards = [
                subprocess.Popen(
                    [sys.executable, "-m", "kubectl_canary", "offboard", APP]
                    + ["-n", story.namespace("offboard"), "--timeout", "90"],
                    cwd=REPO,
                    env=env,
                    stdout=subprocess.PIPE,
                    stderr=subprocess.STDOUT,
                    text=True,
                )
                for story in STORIES
            ]
            for story in STORIES:
                c.client.delete(CANARY_API, "Canary", story.namespace("revert"), APP)
            for story, proc in zip(STORIES, offboards, strict=True):
                out, _ = proc.communicate(timeout=240)
                assert proc.returncode == 0, f"offboard of {story.name}:\n{out}"

            def reverted() -> bool:
                return all(
                    c.get(CANARY_API, "Canary", story.namespace("revert"), APP) is None
                    and c.get("apps/v1", "Deployment", story.namespace("revert"), f"{APP}-primary")
                    is None
                    for story in STORIES
                )

            # The finalizer goes once the apex Service's endpoints are the target's pods; the
            # generated objects then go by garbage collection.
            wait_for("every reverted Canary and its primary gone", reverted, 150, 0.5)
            yield c


@pytest.mark.timeout(600)
@pytest.mark.parametrize("story", STORIES, ids=lambda s: s.name)
def test_offboard_and_revert_leave_the_same_objects(handed_back: Cluster, story: Story) -> None:
    c = handed_back
    offboarded = remaining(c, story.namespace("offboard"))
    reverted = remaining(c, story.namespace("revert"))

    assert sorted(offboarded) == sorted(reverted)
    for key, obj in offboarded.items():
        assert obj == reverted[key], key
    # And what is left is the plain app: its Deployment, ConfigMap and apex Service, plus a
    # routing object that still serves a gateway (or the user's own, restored).
    names = sorted(offboarded)
    assert ("Canary", APP) not in names and ("Deployment", f"{APP}-primary") not in names
    target = offboarded[("Deployment", APP)]
    assert target["spec"]["replicas"] == 2
    apex = offboarded[("Service", APP)]
    assert apex["spec"]["selector"] == {"app": APP}
    assert not [k for k in (apex["metadata"].get("labels") or {}) if "kubectl-canary" in k]
    routing = {k for k in names if k[0] in ("VirtualService", "HTTPRoute")}
    expect_routing = story.provider == "gatewayapi" or (
        story.provider == "istio" and "gateways" in story.service
    )
    assert bool(routing) == expect_routing, names
