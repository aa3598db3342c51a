"""The shared resource protocol's contract on a real API server: the very checks the sandbox
tier runs (tests/contract/resources_contract.py), over both adapters (the agent's over
`kubernetes`, the plugin's over kr8s), each in a namespace of its own."""

from __future__ import annotations

import pytest

from kubectl_canary.resources import ResourceClient
from tests.contract.resources_contract import CHECKS, Check, clients
from tests.realcluster.bed import Bed

pytestmark = [pytest.mark.realcluster]


@pytest.fixture(scope="module")
def adapters(bed: Bed) -> dict[str, ResourceClient]:
    return clients(str(bed.admin_kubeconfig))


@pytest.mark.parametrize("adapter", ["agent", "plugin"])
@pytest.mark.parametrize("check", CHECKS, ids=lambda c: c.__name__.removeprefix("check_"))
def test_resource_contract_on_a_real_api_server(
    adapters: dict[str, ResourceClient], ns: str, adapter: str, check: Check
) -> None:
    check(adapters[adapter], ns)
