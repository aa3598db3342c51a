"""The pace of a release through the agent (sandbox, agent process): the analysis interval paces
the weight steps only; the waits for the canary's and the primary's rollouts end on the watch
events that end them, and Finalising finishes at once. Measured from status.history.
"""

from __future__ import annotations

from datetime import datetime
from pathlib import Path

import pytest

from .agent_harness import (
    IMAGE_PREFIX,
    Cluster,
    deployment,
    namespace,
    running_agent,
    sandbox,
    stepping_canary,
    wait_for,
)
from .scenario_helpers import event_messages

pytestmark = [pytest.mark.e2e]

NS, NAME = "pace", "app"
STEPS, INTERVAL = 5, 5
# Both rollouts (under a second each on the sandbox at 5x) and the second precision of the
# history's times at both ends. Flagger's pace would take three intervals more.
SLACK = 4


def at(entry: dict) -> float:
    return datetime.fromisoformat(entry["time"]).timestamp()


def test_a_release_takes_its_steps_and_its_rollouts_and_no_idle_interval(tmp_path: Path) -> None:
    with sandbox(tmp_path / "sandbox", speed=5) as sb:
        c = Cluster(sb)
        for ns in (NS, "kubectl-canary"):
            c.apply(namespace(ns))
        c.apply(deployment(NS, NAME, IMAGE_PREFIX + "1.1.1"))
        c.apply(stepping_canary(NS, NAME, STEPS, f"{INTERVAL}s"))
        with running_agent(sb.kubeconfig, tmp_path / "agent.log", "--lease-duration", "2s"):
            c.wait_phase(NS, NAME, "Initialized", 60)
            c.set_image(NS, NAME, IMAGE_PREFIX + "1.1.2")
            limit = STEPS * INTERVAL + 4 * INTERVAL
            wait_for("the release to succeed", lambda: c.phase(NS, NAME) == "Succeeded", limit)
            history = c.status(NS, NAME)["history"]
            messages = [h["message"] for h in history]
            # Each Event follows the status write that records it.
            wait_for("the Events", lambda: event_messages(c, NS, NAME) == messages, 10)
    display = f"{NAME}.{NS}"
    release = history[
        [h["message"] for h in history].index(f"Initialization done! {display}") + 1 :
    ]
    assert [h["message"] for h in release] == [
        f"New revision detected! Scaling up {display}",
        f"Starting canary analysis for {display}",
        *(f"Advance {display} canary weight {w}" for w in range(10, 10 * STEPS + 1, 10)),
        f"Copying {display} template spec to {NAME}-primary.{NS}",
        "Routing all traffic to primary",
        f"Promotion completed! Scaling down {display}",
    ], "Flagger's events, and no wait worth reporting"
    detected, first, *_ = release
    steps = [h for h in release if h["message"].startswith(f"Advance {display}")]
    copied, back, done = release[-3:]
    assert at(first) - at(detected) <= 2, "the first step as soon as the canary is ready"
    paced = [*steps, copied]
    gaps = [at(b) - at(a) for a, b in zip(paced, paced[1:], strict=False)]
    assert all(INTERVAL - 1 <= gap <= INTERVAL + 1 for gap in gaps), gaps
    assert at(back) - at(copied) <= 2, "traffic back as soon as the primary is rolled out"
    assert at(done) - at(back) <= 1, "Finalising finishes at once"
    assert at(done) - at(detected) <= STEPS * INTERVAL + SLACK
