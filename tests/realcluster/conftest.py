"""Fixtures of the real-API-server tier (see bed.py for where it runs).

One bed per session: the cluster is brought up (or found up), the product's CRDs and RBAC are
applied as `init` renders them, and the agent's token is minted once. Each test gets its own
namespace, dropped afterwards; the agent is started by the test itself, under that token.
Every module marks itself `realcluster`; tests/conftest.py keeps such tests on one xdist
worker, one after another (one cluster, fixed ports, one agent Lease).
"""

from __future__ import annotations

import re
from collections.abc import Iterator

import pytest

from tests.realcluster.bed import Bed, choose, close_bed, in_ci, open_bed, shared_bed_dir


@pytest.fixture(scope="session")
def bed(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Bed]:
    choice = choose()
    if choice.mode == "none":
        if in_ci() and (shared_bed_dir() / "cluster.sh").exists():
            # .ci/run installs what the shared bed needs: in CI it runs or the suite fails.
            pytest.fail("the real-cluster tier must run in CI: " + "; ".join(choice.reasons))
        pytest.skip("; ".join(choice.reasons))
    opened = open_bed(choice, tmp_path_factory.mktemp("realcluster"))
    try:
        yield opened
    finally:
        close_bed(opened)


@pytest.fixture
def ns(bed: Bed, request: pytest.FixtureRequest) -> Iterator[str]:
    """A fresh namespace for the test, with no simulated traffic left behind."""
    purpose = re.sub(r"[^a-z0-9]+", "-", request.node.name.removeprefix("test_").lower())
    name = bed.namespace(purpose[:24].strip("-"))
    try:
        yield name
    finally:
        bed.stop_traffic(name)
        bed.drop_namespace(name)
