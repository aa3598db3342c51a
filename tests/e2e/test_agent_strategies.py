"""Release strategies and waits through the agent, end to end (sandbox, real Prometheus, agent
process): blue/green iterations, A/B on a header, stepWeights, a new revision mid-analysis, a
canary that never gets ready, and a confirm-promotion gate held closed then opened.

Each test plays one release of the shipped sample (time-compressed to 2 s intervals and 10 s
metric windows, the sandbox at 5x) and checks the timeline in status.history and Events and the
final routing, replicas and image of the primary.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from .agent_harness import IMAGE_PREFIX, Cluster, istio_canary, wait_for
from .scenario_helpers import (
    GateServer,
    advanced_weights,
    compressed_sample,
    event_messages,
    history,
    http_routes,
    image,
    install_app,
    release_stack,
    replicas,
    requests_served,
    route_weights,
)

pytestmark = [pytest.mark.e2e, pytest.mark.prometheus]


def events_follow(c: Cluster, ns: str, name: str, messages: list[str]) -> None:
    """The Events are the history's entries: the agent creates them right after the status
    write that records them, so the last may still be on its way when the phase is seen."""
    wait_for("the Events of the history", lambda: event_messages(c, ns, name) == messages, 10)


def in_order(messages: list[str], expected: list[str]) -> bool:
    """Whether `expected` occurs in `messages` as a subsequence (other messages may interleave)."""
    remaining = iter(messages)
    return all(any(m == e for m in remaining) for e in expected)


def test_blue_green_iterations_then_switch(tmp_path: Path) -> None:
    ns, name = "shop", "checkout"
    iterations = 3
    with release_stack(tmp_path) as stack, GateServer(200) as load_test:
        c = stack.cluster
        install_app(c, ns, name)
        # The canary Service gets its own test traffic, as the sample's load tester would send.
        c.traffic(
            [
                {"namespace": ns, "service": name, "rps": 20},
                {"namespace": ns, "service": f"{name}-canary", "rps": 20, "source": "loadtester"},
            ],
            {},
        )
        canary = compressed_sample("canary-blue-green.yaml", ns, name)
        analysis = canary["spec"]["analysis"]
        analysis["iterations"] = iterations
        # The first iteration is taken as soon as the canary is ready and checked one 2 s
        # interval later: the canary pods' series may not be in Prometheus yet (no values),
        # which a real 30 s interval never meets. Allow for two such checks.
        analysis["threshold"] = 4
        analysis["webhooks"] = [{"name": "load-test", "type": "rollout", "url": load_test.url}]
        analysis["metrics"] = [
            {"name": "request-success-rate", "thresholdRange": {"min": 99}, "interval": "10s"}
        ]
        c.apply(canary)
        # Status and the apex Service's selector are sampled separately: the agent moves
        # traffic before it writes status, so one poll may see the two out of step.
        states: list[tuple[str, int, int]] = []
        selectors: list[dict[str, str]] = []

        def succeeded() -> bool:
            status = c.status(ns, name)
            phase = str(status.get("phase", ""))
            states.append(
                (phase, int(status.get("iterations", 0)), int(status.get("canaryWeight", 0)))
            )
            apex = c.get("v1", "Service", ns, name)
            selector = dict((apex or {}).get("spec", {}).get("selector") or {})
            if not selectors or selectors[-1] != selector:
                selectors.append(selector)
            return phase == "Succeeded"

        with stack.agent("agent.log", "--allow-egress", load_test.url, provider="kubernetes"):
            c.wait_phase(ns, name, "Initialized")
            c.set_image(ns, name, IMAGE_PREFIX + "1.1.2")
            wait_for("Succeeded", succeeded, timeout=100, interval=0.2)
            messages = history(c, ns, name)
            display = f"{name}.{ns}"
            assert in_order(
                messages,
                [
                    f"New revision detected! Scaling up {display}",
                    f"Starting canary analysis for {display}",
                    *(f"Advance {display} canary iteration {i}/{iterations}" for i in (1, 2, 3)),
                    "Routing all traffic to canary",
                    f"Copying {display} template spec to {name}-primary.{ns}",
                    "Routing all traffic to primary",
                    f"Promotion completed! Scaling down {display}",
                ],
            ), messages
            assert advanced_weights(messages, ns, name) == [], "blue/green never steps weights"
            events_follow(c, ns, name, messages)
            # A check may land before Prometheus has scraped the fresh canary pods' first requests
            # ("no values found"): that is a fair failed check. A halt on a measured value is not.
            judged = [m for m in messages if m.startswith("Halt ") and "no values found" not in m]
            assert not judged, f"the healthy canary failed a check: {judged}"
            testing = [s for s in states if s[0] == "Progressing" and 1 <= s[1] <= iterations]
            assert testing, f"no sample taken during the iterations: {states}"
            assert all(s[2] == 0 for s in testing), f"weight during iterations: {testing}"
            assert any(s[2] == 100 for s in states), f"never switched to the canary: {states}"
            primary_only = {"app": f"{name}-primary"}
            assert selectors == [primary_only, {"app": name}, primary_only], selectors
            assert load_test.calls >= iterations, "the rollout hook runs on every iteration"
            assert c.get("v1", "Service", ns, name)["spec"]["selector"] == primary_only
            assert image(c, ns, f"{name}-primary") == IMAGE_PREFIX + "1.1.2"
            assert replicas(c, ns, f"{name}-primary") == 2
            wait_for("canary scaled to 0", lambda: replicas(c, ns, name) == 0, 30)


def test_ab_testing_routes_the_header_to_the_canary(tmp_path: Path) -> None:
    ns, name = "web", "frontend"
    iterations = 4
    with release_stack(tmp_path) as stack:
        c = stack.cluster
        install_app(c, ns, name)
        insiders = {"share": 0.5, "headers": {"x-canary": "insider"}}
        c.traffic([{"namespace": ns, "service": name, "rps": 40, "requests": [insiders]}], {})
        canary = compressed_sample("canary-ab-testing.yaml", ns, name)
        canary["spec"]["analysis"]["iterations"] = iterations
        c.apply(canary)
        primary_host, canary_host = f"{name}-primary", f"{name}-canary"
        during: list[list[dict[str, Any]]] = []

        def iterating() -> bool:
            status = c.status(ns, name)
            if status.get("phase") == "Progressing" and int(status.get("iterations", 0)) >= 1:
                during.append(http_routes(c, ns, name))
                return True
            return False

        with stack.agent():
            c.wait_phase(ns, name, "Initialized")
            c.set_image(ns, name, IMAGE_PREFIX + "1.1.2")
            wait_for("the first iteration", iterating, timeout=60, interval=0.2)
            first, default = during[0][0], during[0][-1]
            assert {"headers": {"x-canary": {"exact": "insider"}}} in first["match"], first
            assert route_weights(first) == {primary_host: 0, canary_host: 100}, first
            assert "match" not in default and route_weights(default) == {primary_host: 100}
            wait_for(
                "the canary serving the insiders",
                lambda: requests_served(stack.prometheus, ns, name) > 0,
                timeout=30,
                interval=0.5,
            )
            c.wait_phase(ns, name, "Succeeded", 100, 0.5)
            messages = history(c, ns, name)
            display = f"{name}.{ns}"
            iterations_seen = [m for m in messages if m.startswith(f"Advance {display} canary")]
            assert iterations_seen == [
                f"Advance {display} canary iteration {i}/{iterations}"
                for i in range(1, iterations + 1)
            ]
            assert not any(m.startswith(f"Halt {display}") for m in messages), messages
            assert in_order(
                messages,
                [
                    f"Copying {display} template spec to {name}-primary.{ns}",
                    f"Promotion completed! Scaling down {display}",
                ],
            ), messages
            assert image(c, ns, f"{name}-primary") == IMAGE_PREFIX + "1.1.2"
            for route in http_routes(c, ns, name):
                assert route_weights(route).get(canary_host, 0) == 0, route
            wait_for("canary scaled to 0", lambda: replicas(c, ns, name) == 0, 30)


def test_step_weights_are_followed_exactly(tmp_path: Path) -> None:
    ns, name = "pay", "payments"
    with release_stack(tmp_path) as stack:
        c = stack.cluster
        install_app(c, ns, name)
        # 1% of the traffic must still give the canary requests in every metric window.
        c.traffic([{"namespace": ns, "service": name, "rps": 80}], {})
        c.apply(compressed_sample("canary-step-weights.yaml", ns, name))
        seen: set[int] = set()

        def succeeded() -> bool:
            status = c.status(ns, name)
            seen.add(int(status.get("canaryWeight", 0)))
            return bool(status.get("phase") == "Succeeded")

        with stack.agent():
            c.wait_phase(ns, name, "Initialized")
            c.set_image(ns, name, IMAGE_PREFIX + "1.1.2")
            wait_for("Succeeded", succeeded, timeout=100, interval=0.2)
            messages = history(c, ns, name)
            display = f"{name}.{ns}"
            assert advanced_weights(messages, ns, name) == [1, 5, 10, 25, 50], messages
            assert seen <= {0, 1, 5, 10, 25, 50}, f"a weight outside stepWeights: {seen}"
            # stepWeightPromotion 25: the primary takes traffic back 25% per interval.
            assert in_order(
                messages,
                [
                    f"Advance {display} canary weight 50",
                    f"Copying {display} template spec to {name}-primary.{ns}",
                    f"Advance {display} primary weight 75",
                    f"Advance {display} primary weight 100",
                    f"Promotion completed! Scaling down {display}",
                ],
            ), messages
            routes = http_routes(c, ns, name)
            assert route_weights(routes[-1]) == {f"{name}-primary": 100, f"{name}-canary": 0}
            assert image(c, ns, f"{name}-primary") == IMAGE_PREFIX + "1.1.2"
            wait_for("canary scaled to 0", lambda: replicas(c, ns, name) == 0, 30)


def test_new_revision_restarts_the_analysis(tmp_path: Path) -> None:
    ns, name = "application", "mhs"
    with release_stack(tmp_path) as stack:
        c = stack.cluster
        install_app(c, ns, name)
        c.traffic([{"namespace": ns, "service": name, "rps": 20}], {})
        c.apply(istio_canary(ns, name))
        weights_after_change: list[tuple[str, int]] = []

        with stack.agent():
            c.wait_phase(ns, name, "Initialized")
            c.set_image(ns, name, IMAGE_PREFIX + "1.1.2")
            wait_for(
                "weight 20 for 1.1.2",
                lambda: int(c.status(ns, name).get("canaryWeight", 0)) >= 20,
                timeout=60,
                interval=0.2,
            )
            c.set_image(ns, name, IMAGE_PREFIX + "1.1.3")

            def succeeded() -> bool:
                status = c.status(ns, name)
                phase = str(status.get("phase", ""))
                weights_after_change.append((phase, int(status.get("canaryWeight", 0))))
                return phase == "Succeeded"

            wait_for("Succeeded", succeeded, timeout=100, interval=0.2)
            messages = history(c, ns, name)
            display = f"{name}.{ns}"
            restart = f"New revision detected! Restarting analysis for {display}"
            assert messages.count(restart) == 1, messages
            before, after = messages[: messages.index(restart)], messages[messages.index(restart) :]
            assert 20 in advanced_weights(before, ns, name), before
            assert advanced_weights(after, ns, name) == [10, 20, 30, 40, 50], after
            assert ("Progressing", 0) in weights_after_change, "the restart goes back to 0"
            assert f"Promotion completed! Scaling down {display}" == messages[-1]
            assert image(c, ns, f"{name}-primary") == IMAGE_PREFIX + "1.1.3"
            events_follow(c, ns, name, messages)


def test_never_ready_canary_rolls_back_at_the_deadline(tmp_path: Path) -> None:
    ns, name = "application", "mhs"
    with release_stack(tmp_path) as stack:
        c = stack.cluster
        install_app(c, ns, name)
        c.traffic([{"namespace": ns, "service": name, "rps": 20}], {})
        canary = istio_canary(ns, name)
        canary["spec"]["progressDeadlineSeconds"] = 8
        c.apply(canary)

        with stack.agent():
            c.wait_phase(ns, name, "Initialized")
            c.set_image(ns, name, IMAGE_PREFIX + "1.1.2-crashloop")
            c.wait_phase(ns, name, "Failed", 60, 0.2)
            status = c.status(ns, name)
            messages = history(c, ns, name)
            display = f"{name}.{ns}"
            deadline = [
                m
                for m in messages
                if m.startswith(f"Rolling back {display} progress deadline exceeded")
            ]
            assert len(deadline) == 1, messages
            assert f"canary deployment {display} not ready" in deadline[0]
            assert status.get("failedChecks", 0) == 0, "waiting for readiness is no failed check"
            assert not any(m.startswith("Halt ") for m in messages), messages
            assert advanced_weights(messages, ns, name) == []
            assert f"Canary failed! Scaling down {display}" in messages
            assert image(c, ns, f"{name}-primary") == IMAGE_PREFIX + "1.1.1"
            assert route_weights(http_routes(c, ns, name)[-1]) == {
                f"{name}-primary": 100,
                f"{name}-canary": 0,
            }
            wait_for("canary scaled to 0", lambda: replicas(c, ns, name) == 0, 30)
            wait_for(
                "the primary serving traffic after the rollback",
                lambda: requests_served(stack.prometheus, ns, f"{name}-primary") > 0,
                timeout=30,
                interval=0.5,
            )
            primary = c.get("apps/v1", "Deployment", ns, f"{name}-primary")
            assert primary is not None
            assert int(primary.get("status", {}).get("readyReplicas", 0)) == 2


def _stays_waiting(c: Cluster, ns: str, name: str, gate: GateServer, intervals: int) -> None:
    """Hold until the gate was asked `intervals` more times, failing if the canary moves on."""
    start = gate.calls

    def asked_enough() -> bool:
        phase = c.phase(ns, name)
        assert phase == "WaitingPromotion", (
            f"left WaitingPromotion while the gate is closed: {phase}"
        )
        assert image(c, ns, f"{name}-primary") == IMAGE_PREFIX + "1.1.1"
        return bool(gate.calls >= start + intervals)

    wait_for(f"{intervals} more questions to the closed gate", asked_enough, 60, 0.2)


def test_confirm_promotion_gate(tmp_path: Path) -> None:
    ns, name = "application", "mhs"
    with release_stack(tmp_path) as stack, GateServer(403) as gate:
        c = stack.cluster
        install_app(c, ns, name)
        c.traffic([{"namespace": ns, "service": name, "rps": 20}], {})
        canary = istio_canary(ns, name)
        canary["spec"]["analysis"]["webhooks"] = [
            {"name": "approve", "type": "confirm-promotion", "url": gate.url, "timeout": "5s"}
        ]
        c.apply(canary)

        with stack.agent("agent.log", "--allow-egress", gate.url):
            c.wait_phase(ns, name, "Initialized")
            c.set_image(ns, name, IMAGE_PREFIX + "1.1.2")
            c.wait_phase(ns, name, "WaitingPromotion", 90, 0.2)
            _stays_waiting(c, ns, name, gate, intervals=3)
            display = f"{name}.{ns}"
            halt = f"Halt {display} advancement waiting for promotion approval approve"
            messages = history(c, ns, name)
            assert messages.count(halt) == 1, "a wait is recorded once, not per question"
            assert advanced_weights(messages, ns, name) == [10, 20, 30, 40, 50]
            assert route_weights(http_routes(c, ns, name)[-1]) == {
                f"{name}-primary": 50,
                f"{name}-canary": 50,
            }
            gate.status = 200
            c.wait_phase(ns, name, "Succeeded", 60, 0.2)
            messages = history(c, ns, name)
            assert in_order(
                messages,
                [
                    halt,
                    "Confirm-promotion check approve passed",
                    f"Copying {display} template spec to {name}-primary.{ns}",
                    f"Promotion completed! Scaling down {display}",
                ],
            ), messages
            assert image(c, ns, f"{name}-primary") == IMAGE_PREFIX + "1.1.2"
            events_follow(c, ns, name, messages)
