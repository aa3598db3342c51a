"""Crash safety: the agent (or the plugin, for offboard) SIGKILLed at every boundary between
two of its actions in initialise, promote, rollback, revert and offboard, restarted, ends
exactly where an uninterrupted run ends, repeats no step, promotes once and loses no request.

The harness is tests/e2e/crash_points.py (what is judged) over tests/e2e/crash_proxy.py (how a
process is killed at one request). The boundaries are discovered by a clean run of each
scenario, so a new write anywhere in these paths is covered without changing this file. Each
test prints its counts (`pytest -s`), and the run's terminal summary repeats them.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from .agent_harness import (
    CANARY_API,
    IMAGE_PREFIX,
    Cluster,
    deployment,
    namespace,
    sandbox,
    wait_for,
)
from .crash_points import APP, Bed, Scenario, crash_every_boundary
from .scenario_helpers import GateServer

pytestmark = [pytest.mark.e2e]

# CRASH_POINTS_FULL=1: also crash after every boundary, not a sample of them (about twice
# the time; the default keeps the suite's wall time down).
FULL = os.environ.get("CRASH_POINTS_FULL") == "1"
SPEED = 5  # simulated seconds per second: pods get ready within a fraction of a second


def canary(ns: str, **spec: Any) -> dict[str, Any]:
    """Istio (weights in a VirtualService), 1 s steps of 25 up to 50, no metrics: the checks
    pass unless a webhook says otherwise, so every run takes the same steps."""
    return {
        "apiVersion": CANARY_API,
        "kind": "Canary",
        "metadata": {"name": APP, "namespace": ns},
        "spec": {
            "provider": "istio",
            "targetRef": {"apiVersion": "apps/v1", "kind": "Deployment", "name": APP},
            "progressDeadlineSeconds": 60,
            "service": {"port": 9898, "targetPort": 9898},
            "analysis": {"interval": "1s", "threshold": 1, "stepWeight": 25, "maxWeight": 50},
            **spec,
        },
    }


def phase(c: Cluster, ns: str) -> str:
    obj = c.get(CANARY_API, "Canary", ns, APP)
    return str(((obj or {}).get("status") or {}).get("phase", ""))


def initialized(spec: dict[str, Any]) -> Any:
    def prepare(c: Cluster, ns: str) -> None:
        c.apply(namespace(ns))
        c.apply(deployment(ns, APP, IMAGE_PREFIX + "1.1.1"))
        c.apply(canary(ns, **spec))
        wait_for(f"{ns} Initialized", lambda: phase(c, ns) == "Initialized", 60)
        # The agent records the Event just after the status write: wait for it too, so it is
        # not counted as the scenario's.
        done = f"Initialization done! {APP}.{ns}"
        wait_for(f"{ns}: {done}", lambda: done in [e["message"] for e in c.events(ns, APP)], 30)

    return prepare


def app_only(c: Cluster, ns: str) -> None:
    c.apply(namespace(ns))
    c.apply(deployment(ns, APP, IMAGE_PREFIX + "1.1.1"))


def ship(c: Cluster, ns: str) -> None:
    c.set_image(ns, APP, IMAGE_PREFIX + "1.1.2")


def in_phase(want: str) -> Any:
    return lambda c, ns: phase(c, ns) == want


def handed_back(c: Cluster, ns: str) -> bool:
    """The Canary is gone and garbage collection took what it owned."""
    return (
        c.get(CANARY_API, "Canary", ns, APP) is None
        and c.get("apps/v1", "Deployment", ns, f"{APP}-primary") is None
    )


def delete_canary(c: Cluster, ns: str) -> None:
    c.client.delete(CANARY_API, "Canary", ns, APP)


@pytest.fixture(scope="module")
def gate() -> Iterator[GateServer]:
    """A rollout webhook that fails every check: the release rolls back at its first step."""
    with GateServer(500) as server:
        yield server


@pytest.fixture(scope="module")
def bed(tmp_path_factory: pytest.TempPathFactory, gate: GateServer) -> Iterator[Bed]:
    workdir = tmp_path_factory.mktemp("crash-points")
    with sandbox(workdir / "sandbox", speed=SPEED) as sb:
        c = Cluster(sb)
        yield Bed(c, workdir, ("--allow-egress", gate.url), f"{sb.url}/sandbox/prometheus")


def scenarios(gate_url: str) -> dict[str, Scenario]:
    failing = {
        "analysis": {
            **canary("")["spec"]["analysis"],
            "webhooks": [{"name": "load-test", "type": "rollout", "url": gate_url}],
        }
    }
    return {
        s.name: s
        for s in (
            Scenario(
                "initialise",
                app_only,
                lambda c, ns: c.apply(canary(ns)),
                in_phase("Initialized"),
                False,
            ),
            Scenario("promote", initialized({}), ship, in_phase("Succeeded"), True),
            Scenario("rollback", initialized(failing), ship, in_phase("Failed"), True),
            Scenario(
                "revert", initialized({"revertOnDeletion": True}), delete_canary, handed_back, True
            ),
            Scenario(
                "offboard",
                initialized({}),
                lambda c, ns: None,
                handed_back,
                True,
                crashes="plugin",
                plugin_args=("offboard", APP, "--timeout", "60"),
            ),
        )
    }


@pytest.mark.timeout(900)
@pytest.mark.parametrize("name", ["initialise", "promote", "rollback", "revert", "offboard"])
def test_crash_at_every_boundary(
    bed: Bed, gate: GateServer, name: str, request: pytest.FixtureRequest, tmp_path: Path
) -> None:
    report = crash_every_boundary(bed, scenarios(gate.url)[name], full=FULL)
    print(report.line())
    request.node.user_properties.append(("crash points", report.line()))
    for where in report.unreached:
        print(f"  unreached: {where}")
    assert report.boundaries > 0
    assert not report.wrong, "\n".join(report.wrong)
