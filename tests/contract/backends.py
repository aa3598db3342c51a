"""Clusters the router contract runs against: the test client over the sandbox's store
(tests/store_client.py), or the sandbox API server through the agent's real client
(agent/kube.py), each with a namespace of its own."""

from __future__ import annotations

import time
from dataclasses import dataclass, field

from kubectl_canary.api.model import AnalysisSpec, Canary, CanarySpec, ServiceSpec, TargetRef
from kubectl_canary.objects.builders import primary_deployment, services
from kubectl_canary.objects.writer import ensure
from kubectl_canary.resources import Obj, ResourceClient
from tests.store_client import StoreClient

NAMESPACE = "contract"
READY_TIMEOUT = 60.0


@dataclass
class CountingClient:
    """Wraps a ResourceClient and counts writes, to prove that a no-op writes nothing."""

    inner: ResourceClient
    writes: list[str] = field(default_factory=list)

    def get(self, api_version: str, kind: str, namespace: str, name: str) -> Obj | None:
        return self.inner.get(api_version, kind, namespace, name)

    def get_live(self, api_version: str, kind: str, namespace: str, name: str) -> Obj | None:
        return self.inner.get_live(api_version, kind, namespace, name)

    def create(self, obj: Obj) -> Obj:
        self.writes.append(f"create {obj['kind']}/{obj['metadata']['name']}")
        return self.inner.create(obj)

    def replace(self, obj: Obj) -> Obj:
        self.writes.append(f"replace {obj['kind']}/{obj['metadata']['name']}")
        return self.inner.replace(obj)

    def patch_json(
        self, api_version: str, kind: str, namespace: str, name: str, ops: list[Obj]
    ) -> Obj:
        self.writes.append(f"patch {kind}/{name}")
        return self.inner.patch_json(api_version, kind, namespace, name, ops)

    def patch_merge(
        self, api_version: str, kind: str, namespace: str, name: str, patch: Obj
    ) -> Obj:
        self.writes.append(f"patch {kind}/{name}")
        return self.inner.patch_merge(api_version, kind, namespace, name, patch)

    def delete(
        self,
        api_version: str,
        kind: str,
        namespace: str,
        name: str,
        resource_version: str | None = None,
    ) -> bool:
        self.writes.append(f"delete {kind}/{name}")
        return self.inner.delete(
            api_version, kind, namespace, name, resource_version=resource_version
        )


@dataclass
class Backend:
    """A cluster to run the contract against, with a namespace of its own."""

    name: str
    raw: ResourceClient
    client: CountingClient
    namespace: str = NAMESPACE

    def canary(
        self, provider: str, analysis: AnalysisSpec | None = None, **service: object
    ) -> Canary:
        return Canary(
            namespace=self.namespace,
            name="podinfo",
            uid="canary-uid-1",
            spec=CanarySpec(
                target_ref=TargetRef(name="podinfo"),
                service=ServiceSpec(port=9898, **service),  # type: ignore[arg-type]
                analysis=analysis or AnalysisSpec(),
                provider=provider,
            ),
        )

    def set_ready(self, deployment: str, ready: int) -> None:
        """Make `ready` replicas of a Deployment ready: written into the fake's status, or
        scaled and awaited on the sandbox, whose simulated controllers start the pods."""
        if isinstance(self.raw, StoreClient):
            status = {
                "replicas": ready,
                "readyReplicas": ready,
                "updatedReplicas": ready,
                "availableReplicas": ready,
            }
            self.raw.edit("Deployment", deployment, lambda d: d.update(status=status))
            return
        self.raw.patch_merge(
            "apps/v1", "Deployment", self.namespace, deployment, {"spec": {"replicas": ready}}
        )
        self.settle(deployment)

    def settle(self, deployment: str) -> None:
        """Wait until a Deployment's rollout is complete (no-op on the fake, which has no
        controllers): all replicas updated and ready, no old pods left."""
        if isinstance(self.raw, StoreClient):
            return
        deadline = time.monotonic() + READY_TIMEOUT
        status: Obj = {}
        while time.monotonic() < deadline:
            live = self.raw.get("apps/v1", "Deployment", self.namespace, deployment) or {}
            status = live.get("status") or {}
            wanted = int(live.get("spec", {}).get("replicas") or 0)
            observed = int(status.get("observedGeneration") or 0)
            counts = [
                int(status.get(k) or 0) for k in ("replicas", "updatedReplicas", "readyReplicas")
            ]
            if observed >= live["metadata"].get("generation", 0) and counts == [wanted] * 3:
                return
            time.sleep(0.1)  # polling the simulated controller, bounded by READY_TIMEOUT
        raise AssertionError(f"{deployment} not rolled out after {READY_TIMEOUT}s: {status}")

    def install(self, canary: Canary) -> None:
        """What the runtime's Initialize does before the router: target, primary, Services."""
        target = self.raw.create(target_deployment(self.namespace))
        ensure(self.raw, primary_deployment(target, canary), create_only=("replicas",))
        for svc in services(target, canary):
            ensure(self.raw, svc, detect_drift=True)
        self.set_ready("podinfo", 2)
        self.set_ready("podinfo-primary", 2)


def target_deployment(namespace: str, name: str = "podinfo", replicas: int = 2) -> Obj:
    labels = {"app": name}
    return {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {"name": name, "namespace": namespace, "labels": {"team": "web"}},
        "spec": {
            "replicas": replicas,
            "selector": {"matchLabels": labels},
            "template": {
                "metadata": {"labels": dict(labels)},
                "spec": {"containers": [{"name": "app", "image": "podinfo:1.1.1"}]},
            },
        },
    }


def fake_backend() -> Backend:
    raw = StoreClient(namespace=NAMESPACE)
    return Backend(name="fake", raw=raw, client=CountingClient(raw))
