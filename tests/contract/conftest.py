"""Fixtures for the router contract.

Every contract test runs twice: against tests/store_client.py (the sandbox's store in process,
without its controllers) and against the sandbox API server (kubectl_canary/sandbox, with the
real Istio and Gateway API CRDs, their schemas and defaults) through the agent's real client,
agent/kube.py.
"""

from __future__ import annotations

import itertools
from collections.abc import Iterator
from pathlib import Path

import pytest

from agent.kube import KubeClient
from kubectl_canary.sandbox.process import SandboxHandle, start_sandbox

from .backends import Backend, CountingClient, fake_backend

_namespaces = itertools.count(1)


@pytest.fixture(scope="session")
def sandbox(tmp_path_factory: pytest.TempPathFactory) -> Iterator[SandboxHandle]:
    workdir: Path = tmp_path_factory.mktemp("contract-sandbox")
    with start_sandbox(workdir, speed=20.0) as handle:
        yield handle


@pytest.fixture(params=["fake", "sandbox"])
def backend(request: pytest.FixtureRequest) -> Backend:
    if request.param == "fake":
        return fake_backend()
    handle: SandboxHandle = request.getfixturevalue("sandbox")
    raw = KubeClient.from_kubeconfig(str(handle.kubeconfig))
    namespace = f"contract-{next(_namespaces)}"  # a clean slate per test
    raw.create({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": namespace}})
    return Backend(name="sandbox", raw=raw, client=CountingClient(raw), namespace=namespace)
