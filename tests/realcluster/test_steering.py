"""Steering a release through the plugin, run by the real kubectl as the cluster admin, while the
agent acts under its own RBAC: pause holds the weight, resume moves on, abort rolls back,
retry re-runs the same revision, promote finishes it; a request that makes no sense is refused
in one line with a non-zero exit, and `status --wait` gives CI its exit code.
No metrics are involved (the kubernetes provider, no checks), so this runs on any cluster.
"""

from __future__ import annotations

import time
from pathlib import Path

import pytest

from tests.e2e.agent_harness import ClusterView, deployment, wait_for
from tests.e2e.scenario_helpers import image
from tests.realcluster.bed import Bed, plain_canary
from tests.realcluster.bed import image as tagged

pytestmark = [pytest.mark.realcluster]

NAME = "web"
INTERVAL = 3  # seconds: long enough to act between two steps


def weight(c: ClusterView, ns: str) -> int:
    return int(c.status(ns, NAME).get("canaryWeight", 0))


@pytest.mark.timeout(300)
def test_pause_resume_abort_retry_promote(bed: Bed, ns: str, tmp_path: Path) -> None:
    c = bed.view()
    c.apply(deployment(ns, NAME, tagged("1.1.1")))
    c.apply(plain_canary(ns, NAME, interval=f"{INTERVAL}s", step_weight=10, deadline=120))

    def plugin(*args: str) -> str:
        return bed.kubectl("canary", *args, NAME, "-n", ns).stdout

    with bed.agent(tmp_path / "agent.log"):
        c.wait_phase(ns, NAME, "Initialized", 90, 0.5)
        refused = bed.kubectl("canary", "retry", NAME, "-n", ns, check=False)
        assert refused.returncode == 1 and refused.stderr.count("\n") == 1, refused.stderr
        assert refused.stderr.startswith(f"error: canary {NAME} is Initialized, not Failed")

        c.set_image(ns, NAME, tagged("1.1.2"))
        wait_for("the first step", lambda: weight(c, ns) >= 10, 60, 0.3)
        assert plugin("pause").startswith(f"canary {NAME}: pause accepted")
        held = weight(c, ns)
        time.sleep(3 * INTERVAL)
        assert weight(c, ns) == held, "a paused release does not advance"
        assert "Progressing (paused)" in bed.kubectl("canary", "status", "-n", ns).stdout

        assert plugin("resume").startswith(f"canary {NAME}: resume accepted")
        wait_for("an advance after resume", lambda: weight(c, ns) > held, 6 * INTERVAL, 0.3)

        assert plugin("abort").startswith(f"canary {NAME}: abort accepted")
        c.wait_phase(ns, NAME, "Failed", 60, 0.3)
        assert weight(c, ns) == 0
        assert image(c, ns, f"{NAME}-primary") == tagged("1.1.1"), "abort keeps 1.1.1 serving"
        failed = bed.kubectl(
            "canary", "status", NAME, "-n", ns, "--wait", "--timeout", "30", check=False
        )
        assert failed.returncode == 1, failed.stderr
        assert failed.stderr.splitlines()[-1].startswith(f"error: canary {NAME} failed")

        assert plugin("retry").startswith(f"canary {NAME}: retry accepted")
        c.wait_phase(ns, NAME, "Progressing", 60, 0.3)
        assert image(c, ns, NAME) == tagged("1.1.2"), "retry re-runs the same revision"
        # Promote judges what the analysis saw: it needs a first step.
        wait_for("the first step of the retry", lambda: weight(c, ns) >= 10, 60, 0.3)
        assert plugin("promote").startswith(f"canary {NAME}: promote accepted")
        done = bed.kubectl(
            "canary", "status", NAME, "-n", ns, "--wait", "--timeout", "120", timeout=150
        )
        assert done.returncode == 0
        assert c.phase(ns, NAME) == "Succeeded"
        assert image(c, ns, f"{NAME}-primary") == tagged("1.1.2")
