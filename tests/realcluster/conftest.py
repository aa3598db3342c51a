"""Fixtures of the real-API-server tier (see bed.py for where it runs).

One bed per session: the cluster is brought up (or found up), the product's CRDs and RBAC are
applied as `init` renders them, and the agent's token is minted once. Each test gets its own
namespace, dropped afterwards; the agent is started by the test itself, under that token.
Every module marks itself `realcluster` and `xdist_group("realcluster")`: one cluster, fixed
ports and one agent Lease, so the tier runs test after test on one xdist worker while the pure
and sandbox tests share the others.
"""

from __future__ import annotations

import re
from collections.abc import Iterator

import pytest

from tests.realcluster.bed import Bed, choose, close_bed, in_ci, open_bed


@pytest.fixture(scope="session")
def bed(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Bed]:
    choice = choose()
    if choice.mode == "none":
        if in_ci():
            pytest.fail("the real-cluster tier must run in CI: " + "; ".join(choice.reasons))
        pytest.skip("real-cluster tier did not run: " + "; ".join(choice.reasons))
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
