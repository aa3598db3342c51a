"""doctor run by someone without cluster-admin: what they may not read is a warning per area,
and the areas they can read are still checked."""

from __future__ import annotations

import json

from kubectl_canary.resources import ForbiddenError
from tests.cli import samples


def test_forbidden_areas_are_warnings_and_the_rest_is_checked(run, fake):
    fake.add(samples.deployment("mhs", "ghcr.io/acme/mhs:1.1.3"))
    canary = samples.canary("mhs", provider="kubernetes")
    del canary["status"]
    fake.add(canary)
    denied = ForbiddenError('clusterroles.rbac.authorization.k8s.io "x" is forbidden', 403)
    fake.fail("get", "ClusterRole", denied, times=None)
    fake.fail("get", "CustomResourceDefinition", denied, times=None)
    result = run("doctor", "-o", "json")
    checks = {c["name"]: c for c in json.loads(result.stdout)}
    for area in ("crds", "rbac"):
        assert checks[area]["result"] == "warn", checks[area]
        assert checks[area]["detail"].startswith("cannot check (forbidden): clusterroles")
    assert checks["canary test/mhs references"]["result"] == "ok"
    assert checks["canary test/mhs"]["result"] == "warn"  # no status: the agent is missing
