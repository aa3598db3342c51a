"""The shared resource protocol over both adapters (agent/kube.py over `kubernetes`, the
plugin's over kr8s) against the sandbox API server: the same checks, each in a fresh namespace.
The real-API-server tier runs them too (tests/realcluster/test_resources.py)."""

from __future__ import annotations

import itertools

import pytest

from kubectl_canary.resources import ResourceClient
from kubectl_canary.sandbox.process import SandboxHandle

from .resources_contract import CHECKS, Check, clients

_namespaces = itertools.count(1)


@pytest.fixture(scope="module")
def adapters(sandbox: SandboxHandle) -> dict[str, ResourceClient]:
    return clients(str(sandbox.kubeconfig))


@pytest.mark.parametrize("adapter", ["agent", "plugin"])
@pytest.mark.parametrize("check", CHECKS, ids=lambda c: c.__name__.removeprefix("check_"))
def test_resource_contract(adapters: dict[str, ResourceClient], adapter: str, check: Check) -> None:
    client = adapters[adapter]
    namespace = f"resources-{next(_namespaces)}"
    client.create({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": namespace}})
    check(client, namespace)
