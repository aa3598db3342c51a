"""DESIGN §1 on a real API server, the agent under its own RBAC, Istio routing, and checks judged
by a real Prometheus over the simulated mesh's Istio metrics:

1. Deployment `mhs` 1.1.1 and its Canary: initialised without analysis (primary, Services,
   VirtualService at 100/0, target scaled to 0);
2. 1.1.2: weights 10..50 one interval apart, promoted, Succeeded, served by the primary;
3. 1.1.3 (fails half its requests): halted checks, rolled back at the threshold, Failed, and
   1.1.2 keeps serving.
Events match status.history one for one; the agent meets no 403.
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from tests.e2e.agent_harness import ClusterView, deployment, wait_for
from tests.e2e.scenario_helpers import (
    advanced_weights,
    compressed_sample,
    event_messages,
    history,
    http_routes,
    image,
    replicas,
    route_weights,
)
from tests.realcluster.bed import BAD_TAG, Bed
from tests.realcluster.bed import image as tagged

pytestmark = [pytest.mark.realcluster]

NAME = "mhs"


@pytest.mark.timeout(420)
def test_seed_story(bed: Bed, ns: str, tmp_path: Path) -> None:
    bed.require_mesh()
    c = bed.view()
    c.apply(deployment(ns, NAME, tagged("1.1.1")))
    c.apply(compressed_sample("canary-istio.yaml", ns, NAME))
    bed.traffic(ns, NAME)
    with bed.agent(tmp_path / "agent.log", provider="istio"):
        _initialised(c, ns)
        _promoted(c, ns)
        bed.wait_canary_traffic_gone(ns, NAME)
        _rolled_back(c, ns)
        assert event_messages(c, ns, NAME) == history(c, ns, NAME)


def _initialised(c: ClusterView, ns: str) -> None:
    c.wait_phase(ns, NAME, "Initialized", 90, 0.5)
    # A primary rollout that outlasts an interval (a loaded machine) records Flagger's waiting
    # message first; nothing else may precede.
    *waits, done = history(c, ns, NAME)
    assert done == f"Initialization done! {NAME}.{ns}"
    assert all(m.startswith(f"{NAME}-primary.{ns} not ready: ") for m in waits), waits
    wait_for("the target scaled to 0", lambda: replicas(c, ns, NAME) == 0, 30)
    assert replicas(c, ns, f"{NAME}-primary") == 2
    assert image(c, ns, f"{NAME}-primary") == tagged("1.1.1")
    for svc in (NAME, f"{NAME}-primary", f"{NAME}-canary"):
        assert c.get("v1", "Service", ns, svc) is not None, f"Service {svc} missing"
    assert route_weights(http_routes(c, ns, NAME)[-1]) == {
        f"{NAME}-primary": 100,
        f"{NAME}-canary": 0,
    }


def _promoted(c: ClusterView, ns: str) -> None:
    c.set_image(ns, NAME, tagged("1.1.2"))
    c.wait_phase(ns, NAME, "Succeeded", 180, 0.5)
    messages = history(c, ns, NAME)
    assert f"New revision detected! Scaling up {NAME}.{ns}" in messages
    assert advanced_weights(messages, ns, NAME) == [10, 20, 30, 40, 50]
    assert messages[-1] == f"Promotion completed! Scaling down {NAME}.{ns}"
    assert image(c, ns, f"{NAME}-primary") == tagged("1.1.2")
    assert route_weights(http_routes(c, ns, NAME)[-1])[f"{NAME}-primary"] == 100
    wait_for("the canary scaled down", lambda: replicas(c, ns, NAME) == 0, 30)
    conditions = {x["type"]: x["status"] for x in c.status(ns, NAME).get("conditions", [])}
    assert conditions.get("Promoted") == "True"


def _rolled_back(c: ClusterView, ns: str) -> None:
    before = len(history(c, ns, NAME))
    c.set_image(ns, NAME, tagged(BAD_TAG))
    c.wait_phase(ns, NAME, "Failed", 180, 0.5)
    new = history(c, ns, NAME)[before:]
    halts = [m for m in new if m.startswith(f"Halt {NAME}.{ns} advancement")]
    assert any(re.search(r"success rate [0-9.]+% < 99%", m) for m in halts), new
    assert any(
        m.startswith(f"Rolling back {NAME}.{ns} failed checks threshold reached") for m in new
    )
    # Prometheus ignores a new series' first sample: one check may miss the first 500s (one
    # more step may pass), never the checks after it.
    assert max(advanced_weights(new, ns, NAME), default=0) <= 20, new
    assert not any(m.startswith(f"Copying {NAME}.{ns} template") for m in new), new
    assert image(c, ns, f"{NAME}-primary") == tagged("1.1.2"), "1.1.2 keeps serving"
    assert route_weights(http_routes(c, ns, NAME)[-1]) == {
        f"{NAME}-primary": 100,
        f"{NAME}-canary": 0,
    }
    wait_for("the canary scaled down", lambda: replicas(c, ns, NAME) == 0, 30)
    last = {m["name"]: m for m in c.status(ns, NAME).get("lastMetrics", [])}
    assert last["request-success-rate"]["value"] < 99, last
