"""offboard step 3 verifies the switch itself, not Endpoints left over from before it.

Right after the apex Service's selector changes, its Endpoints still list the old pods (the
primary's) until the endpoints controller catches up — seconds on a busy cluster. Counting
those as "ready endpoints" would let offboarding delete the primary while the Service still
routes only to its pods. Here the fake cluster's endpoints controller lags: offboarding must
wait until the Endpoints hold the target's pods before anything of the primary goes.
"""

from __future__ import annotations

from typing import Any

from kubectl_canary.api.model import MANAGED_BY_LABEL
from tests.cli import samples

LAG_SECONDS = 5.0  # virtual time the endpoints controller takes to follow a selector change
OURS = {MANAGED_BY_LABEL: "mhs"}


def pod(name: str, labels: dict[str, str]) -> dict[str, Any]:
    return {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {"name": name, "labels": labels},
        "spec": {"containers": [{"name": "app", "image": "ghcr.io/acme/mhs:1.1.2"}]},
    }


def service(fake: Any, name: str, selector: dict[str, str]) -> dict[str, Any]:
    return {
        "apiVersion": "v1",
        "kind": "Service",
        "metadata": {"name": name, "labels": dict(OURS), "ownerReferences": samples.owner(fake)},
        "spec": {"selector": selector, "ports": [{"port": 9898}]},
    }


class LaggingCluster:
    """Plays the Deployment controller (a replaced Deployment is ready at once, with pods) and
    an endpoints controller that follows the apex selector only LAG_SECONDS later."""

    def __init__(self, fake: Any, clock: Any) -> None:
        self.fake = fake
        self.clock = clock
        self.due: float | None = None
        self.endpoints_when_primary_deleted: set[str] | None = None
        fake.on_write.append(self.react)
        clock.on_sleep.append(self.catch_up)

    def apex_pods(self) -> set[str]:
        ep = self.fake.find("Endpoints", "mhs") or {}
        return {a["targetRef"]["name"] for s in ep.get("subsets") or [] for a in s.get("addresses")}

    def react(self, fake: Any, verb: str, obj: dict[str, Any]) -> None:
        kind, name = obj["kind"], obj["metadata"]["name"]
        if kind == "Canary" and verb == "patch":  # the agent acknowledges the suspension

            def observed(stored: dict[str, Any]) -> None:
                stored.setdefault("status", {})["observedGeneration"] = stored["metadata"][
                    "generation"
                ]

            fake.edit("Canary", "mhs", observed)
        if kind == "Deployment" and verb == "update":
            want = obj["spec"]["replicas"]

            def rolled_out(stored: dict[str, Any]) -> None:
                stored["status"] = {
                    "replicas": want,
                    "readyReplicas": want,
                    "updatedReplicas": want,
                    "observedGeneration": stored["metadata"].get("generation", 1),
                }

            fake.edit("Deployment", name, rolled_out)
            labels = obj["spec"]["template"]["metadata"]["labels"]
            for i in range(want):
                fake.add(pod(f"{name}-new-{i}", labels))
        if kind == "Service" and name == "mhs" and verb == "update":
            self.due = self.clock.t + LAG_SECONDS
        if kind == "Deployment" and name == "mhs-primary" and verb == "delete":
            self.endpoints_when_primary_deleted = self.apex_pods()

    def catch_up(self, now: float) -> None:
        if self.due is None or now < self.due:
            return
        self.due = None
        svc = self.fake.find("Service", "mhs")
        selector = svc["spec"]["selector"]
        addresses = [
            {"ip": "10.2.0.1", "targetRef": {"kind": "Pod", "name": p["metadata"]["name"]}}
            for p in self.fake.all("Pod")
            if all(p["metadata"]["labels"].get(k) == v for k, v in selector.items())
        ]
        self.fake.edit("Endpoints", "mhs", lambda ep: ep.update(subsets=[{"addresses": addresses}]))


def succeeded_release(fake: Any) -> None:
    """mhs (kubernetes provider) after a Succeeded release: 2 primary pods serve the apex."""
    fake.add(samples.canary(phase="Succeeded", weight=0, failed=0, provider="kubernetes"))
    fake.add(samples.deployment("mhs", "ghcr.io/acme/mhs:1.1.2", replicas=0, ready=0))
    primary = samples.deployment("mhs-primary", "ghcr.io/acme/mhs:1.1.2", app="mhs-primary")
    primary["metadata"].update(labels=dict(OURS), ownerReferences=samples.owner(fake))
    fake.add(primary)
    for name in ("mhs", "mhs-primary"):
        fake.add(service(fake, name, {"app": "mhs-primary"}))
    fake.add(service(fake, "mhs-canary", {"app": "mhs"}))
    for i in range(2):
        fake.add(pod(f"mhs-primary-old-{i}", {"app": "mhs-primary"}))
    fake.add(
        {
            "apiVersion": "v1",
            "kind": "Endpoints",
            "metadata": {"name": "mhs"},
            "subsets": [
                {
                    "addresses": [
                        {
                            "ip": f"10.1.0.{i}",
                            "targetRef": {"kind": "Pod", "name": f"mhs-primary-old-{i}"},
                        }
                        for i in range(2)
                    ]
                }
            ],
        }
    )


def test_the_primary_goes_only_once_the_endpoints_hold_the_target(run, fake, clock):
    succeeded_release(fake)
    cluster = LaggingCluster(fake, clock)
    result = run("offboard", "mhs")
    assert result.exit_code == 0, result.output
    assert fake.find("Deployment", "mhs-primary") is None
    assert cluster.endpoints_when_primary_deleted == {"mhs-new-0", "mhs-new-1"}, (
        "the primary was deleted while the apex Endpoints still listed "
        f"{cluster.endpoints_when_primary_deleted}"
    )
