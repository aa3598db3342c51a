"""The agent killed mid-analysis and started again continues the release where it stood.

State lives in the Canary's status (weight, last analysis time), not in the process: a new
agent must neither repeat a step nor move traffic back, and must promote exactly once.
"""

from __future__ import annotations

import signal
from pathlib import Path

import pytest

from .agent_harness import IMAGE_PREFIX, istio_canary, start_agent, wait_for
from .scenario_helpers import (
    advanced_weights,
    event_messages,
    history,
    http_routes,
    image,
    install_app,
    release_stack,
    route_weights,
)

pytestmark = [pytest.mark.e2e, pytest.mark.prometheus]

NS, NAME = "application", "mhs"


def test_killed_agent_resumes_the_release(tmp_path: Path) -> None:
    with release_stack(tmp_path) as stack:
        c = stack.cluster
        install_app(c, NS, NAME)
        c.traffic([{"namespace": NS, "service": NAME, "rps": 20}], {})
        c.apply(istio_canary(NS, NAME))
        # (phase, status weight, VirtualService canary weight) as seen while polling.
        samples: list[tuple[str, int, int]] = []

        def sample() -> tuple[str, int]:
            status = c.status(NS, NAME)
            phase = str(status.get("phase", ""))
            routed = route_weights(http_routes(c, NS, NAME)[-1]).get(f"{NAME}-canary", 0)
            samples.append((phase, int(status.get("canaryWeight", 0)), routed))
            return phase, int(status.get("canaryWeight", 0))

        kubeconfig = stack.cluster.sandbox.kubeconfig
        lease = ("--lease-duration", "2s")
        first = start_agent(
            kubeconfig,
            tmp_path / "first.log",
            *lease,
            metrics_server=stack.prometheus.url,
            provider="istio",
        )
        try:
            c.wait_phase(NS, NAME, "Initialized")
            c.set_image(NS, NAME, IMAGE_PREFIX + "1.1.2")
            wait_for("weight 20", lambda: sample()[1] >= 20, timeout=60, interval=0.2)
        finally:
            first.stop(signal.SIGKILL)
        assert first.proc.returncode == -signal.SIGKILL
        at_kill = c.status(NS, NAME)
        assert at_kill["phase"] == "Progressing", at_kill
        second = start_agent(
            kubeconfig,
            tmp_path / "second.log",
            *lease,
            metrics_server=stack.prometheus.url,
            provider="istio",
        )
        try:
            wait_for("Succeeded", lambda: sample()[0] == "Succeeded", timeout=100, interval=0.2)
            assert any(x.get("msg") == "became leader" for x in second.lines())
        finally:
            second.stop()
        assert second.proc.returncode == 0, "SIGTERM should stop the agent cleanly"

        messages = history(c, NS, NAME)
        display = f"{NAME}.{NS}"
        assert advanced_weights(messages, NS, NAME) == [10, 20, 30, 40, 50], messages
        assert c.status(NS, NAME)["phase"] == "Succeeded"
        events = event_messages(c, NS, NAME)
        assert events == messages, "every step recorded once, in Events as in history"
        advances = [m for m in events if m.startswith(f"Advance {display} canary weight")]
        assert len(advances) == len(set(advances)), f"a step was repeated: {advances}"
        promoted = [m for m in events if m.startswith("Promotion completed!")]
        assert promoted == [f"Promotion completed! Scaling down {display}"], events
        progressing = [s for s in samples if s[0] == "Progressing"]
        status_weights = [s[1] for s in progressing]
        routed_weights = [s[2] for s in progressing]
        assert status_weights == sorted(status_weights), f"weight went back: {progressing}"
        assert routed_weights == sorted(routed_weights), f"traffic went back: {progressing}"
        assert max(status_weights) >= 20
        assert image(c, NS, f"{NAME}-primary") == IMAGE_PREFIX + "1.1.2"
