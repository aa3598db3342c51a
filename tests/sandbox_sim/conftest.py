"""Shared helpers for the simulation tests: object builders and a bounded poller."""

from __future__ import annotations

import time
import uuid
from collections.abc import Callable, Iterator
from types import SimpleNamespace
from typing import Any, TypeVar

import pytest

from kubectl_canary.sandbox import simulation
from kubectl_canary.sandbox.simulation import Simulation
from kubectl_canary.sandbox.store import Store

T = TypeVar("T")


def wait_for(probe: Callable[[], T | None], timeout: float = 20.0, what: str = "") -> T:
    """Poll `probe` until it returns something truthy; fail with `what` after `timeout` s."""
    deadline = time.monotonic() + timeout
    last = None
    while time.monotonic() < deadline:
        last = probe()
        if last:
            return last
        time.sleep(0.05)
    pytest.fail(f"timed out after {timeout}s waiting for {what or probe}; last: {last!r}")


def deployment(
    name: str, image: str, replicas: int = 2, namespace: str = "test", **spec: Any
) -> dict[str, Any]:
    labels = {"app": name}
    return {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {"name": name, "namespace": namespace},
        "spec": {
            "replicas": replicas,
            "selector": {"matchLabels": labels},
            "template": {
                "metadata": {"labels": labels},
                "spec": {
                    "containers": [
                        {
                            "name": "app",
                            "image": image,
                            "ports": [{"name": "http", "containerPort": 9898}],
                        }
                    ]
                },
            },
            **spec,
        },
    }


def service(name: str, app: str | None = None, namespace: str = "test") -> dict[str, Any]:
    return {
        "apiVersion": "v1",
        "kind": "Service",
        "metadata": {"name": name, "namespace": namespace},
        "spec": {
            "selector": {"app": app or name},
            "ports": [{"name": "http", "port": 80, "targetPort": "http"}],
        },
    }


def virtual_service(
    name: str, routes: list[tuple[str, int]], namespace: str = "test", **http: Any
) -> dict[str, Any]:
    return {
        "apiVersion": "networking.istio.io/v1beta1",
        "kind": "VirtualService",
        "metadata": {"name": name, "namespace": namespace, "uid": str(uuid.uuid4())},
        "spec": {
            "hosts": [name],
            "http": [
                {
                    "route": [
                        {"destination": {"host": host}, "weight": weight} for host, weight in routes
                    ],
                    **http,
                }
            ],
        },
    }


@pytest.fixture
def h() -> SimpleNamespace:
    """The helpers above, for test modules (importlib mode cannot import conftest)."""
    return SimpleNamespace(
        wait_for=wait_for,
        deployment=deployment,
        service=service,
        virtual_service=virtual_service,
    )


@pytest.fixture
def store() -> Store:
    store = Store()
    store.create({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "test"}})
    return store


@pytest.fixture
def start_simulation(store: Store) -> Iterator[Callable[..., Simulation]]:
    """Start the simulation on the test's store (options as keywords); stopped at teardown."""
    started: list[Simulation] = []

    def start(**options: Any) -> Simulation:
        sim = simulation.start(store, {"seed": 7, **options})
        started.append(sim)
        return sim

    yield start
    for sim in started:
        sim.stop()
