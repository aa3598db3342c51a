"""The agent under failure: leader killed mid-release, Prometheus gone, a broken Canary.

Each test runs the sandbox, a real Prometheus and the agent(s) as separate processes.
"""

from __future__ import annotations

import signal
from pathlib import Path

import pytest

from .agent_harness import (
    IMAGE_PREFIX,
    Cluster,
    deployment,
    istio_canary,
    leader_gauge,
    namespace,
    running_agent,
    start_agent,
    wait_for,
)
from .scenario_helpers import release_stack

pytestmark = [pytest.mark.e2e, pytest.mark.prometheus]

NS = "application"


def prepare(c: Cluster, names: list[str], profiles: dict | None = None) -> None:
    c.apply(namespace(NS))
    apps = []
    for name in names:
        c.apply(deployment(NS, name, IMAGE_PREFIX + "1.1.1", replicas=2))
        apps.append({"namespace": NS, "service": name, "rps": 20})
    c.traffic(apps, profiles or {})


def weights_seen(c: Cluster, name: str) -> list[int]:
    prefix = f"Advance {name}.{NS} canary weight "
    history = c.status(NS, name).get("history", [])
    return [int(h["message"][len(prefix) :]) for h in history if h["message"].startswith(prefix)]


def test_follower_takes_over_when_the_leader_is_killed(tmp_path: Path) -> None:
    with release_stack(tmp_path) as stack:
        c, prom, sb = stack.cluster, stack.prometheus, stack.cluster.sandbox
        prepare(c, ["mhs"])
        c.apply(istio_canary(NS, "mhs"))
        common = ("--lease-duration", "2s")
        a = start_agent(
            sb.kubeconfig,
            tmp_path / "a.log",
            *common,
            "--identity",
            "a",
            metrics_server=prom.url,
        )
        try:
            wait_for("a leads", lambda: leader_gauge(a) == 1, timeout=30)
            with running_agent(
                sb.kubeconfig,
                tmp_path / "b.log",
                *common,
                "--identity",
                "b",
                metrics_server=prom.url,
            ) as b:
                wait_for("b ready as follower", lambda: b.get("/readyz") == 200, timeout=30)
                assert leader_gauge(b) == 0, "two replicas must never lead at once"
                c.wait_phase(NS, "mhs", "Initialized")
                c.set_image(NS, "mhs", IMAGE_PREFIX + "1.1.2")
                wait_for("weight 20", lambda: 20 in weights_seen(c, "mhs"), timeout=90)
                a.stop(signal.SIGKILL)
                wait_for("b leads", lambda: leader_gauge(b) == 1, timeout=30)
                c.wait_phase(NS, "mhs", "Succeeded", 120)
                weights = weights_seen(c, "mhs")
                assert weights == sorted(weights) and weights[-1] == 50, weights
                assert len(set(weights)) == len(weights), f"a step was repeated: {weights}"
                assert any(x.get("msg") == "became leader" for x in b.lines())
                b_ticks = [x for x in b.lines() if x.get("canary") == f"{NS}/mhs"]
                assert b_ticks, "the follower acted on the canary after taking over"
        finally:
            a.stop()


def test_no_metrics_never_promotes(tmp_path: Path) -> None:
    with release_stack(tmp_path) as stack:
        c, prom, sb = stack.cluster, stack.prometheus, stack.cluster.sandbox
        prepare(c, ["mhs"])
        c.apply(istio_canary(NS, "mhs", threshold=2))
        with running_agent(sb.kubeconfig, tmp_path / "agent.log", metrics_server=prom.url) as agent:
            c.wait_phase(NS, "mhs", "Initialized")
            prom.stop()
            c.set_image(NS, "mhs", IMAGE_PREFIX + "1.1.2")
            c.wait_phase(NS, "mhs", "Failed", 120)
            primary = c.get("apps/v1", "Deployment", NS, "mhs-primary")
            assert primary is not None
            image = primary["spec"]["template"]["spec"]["containers"][0]["image"]
            assert image == IMAGE_PREFIX + "1.1.1", "nothing unverified may be promoted"
            history = [h["message"] for h in c.status(NS, "mhs")["history"]]
            assert not any("Promotion completed" in m for m in history[1:]), history
            assert any(m.startswith("Rolling back mhs.application") for m in history)
            failed = [x for x in agent.lines() if x.get("metric") and x.get("error")]
            assert failed and all(x["canary"] == f"{NS}/mhs" for x in failed)


def test_a_broken_canary_is_reported_while_another_progresses(tmp_path: Path) -> None:
    with release_stack(tmp_path) as stack:
        c, prom, sb = stack.cluster, stack.prometheus, stack.cluster.sandbox
        prepare(c, ["good", "bad"])
        broken = istio_canary(NS, "bad")
        broken["spec"]["analysis"]["stepWeight"] = 60  # more than maxWeight 50
        c.apply(broken)
        c.apply(istio_canary(NS, "good"))
        with running_agent(sb.kubeconfig, tmp_path / "agent.log", metrics_server=prom.url):
            c.wait_phase(NS, "good", "Initialized")

            def invalid() -> dict | None:
                conds = c.status(NS, "bad").get("conditions", [])
                return next((x for x in conds if x["type"] == "Valid"), None)

            cond = wait_for("bad reported invalid", invalid, timeout=30)
            assert cond["status"] == "False" and "stepWeight" in cond["message"]
            c.set_image(NS, "good", IMAGE_PREFIX + "1.1.2")
            c.wait_phase(NS, "good", "Succeeded", 120)
            warnings = [e for e in c.events(NS, "bad") if e["type"] == "Warning"]
            assert len(warnings) == 1, "one Warning per problem, not one per tick"
            assert "stepWeight" in warnings[0]["message"]
            assert c.get("apps/v1", "Deployment", NS, "bad-primary") is None
            fixed = c.canary(NS, "bad")
            fixed["spec"]["analysis"]["stepWeight"] = 10
            c.client.replace(fixed)
            c.wait_phase(NS, "bad", "Initialized")
            conds = {x["type"]: x["status"] for x in c.status(NS, "bad").get("conditions", [])}
            assert conds.get("Valid") == "True"


def test_restart_after_sigkill_resumes_from_status(tmp_path: Path) -> None:
    with release_stack(tmp_path) as stack:
        c, prom, sb = stack.cluster, stack.prometheus, stack.cluster.sandbox
        prepare(c, ["mhs"])
        c.apply(istio_canary(NS, "mhs"))
        # A killed leader's Lease must expire before the new process may act.
        common = ("--lease-duration", "2s")
        first = start_agent(sb.kubeconfig, tmp_path / "1.log", *common, metrics_server=prom.url)
        try:
            c.wait_phase(NS, "mhs", "Initialized")
            c.set_image(NS, "mhs", IMAGE_PREFIX + "1.1.2")
            wait_for("weight 20", lambda: 20 in weights_seen(c, "mhs"), timeout=90)
        finally:
            first.stop(signal.SIGKILL)
        with running_agent(sb.kubeconfig, tmp_path / "2.log", *common, metrics_server=prom.url):
            c.wait_phase(NS, "mhs", "Succeeded", 120)
        history = [h["message"] for h in c.status(NS, "mhs")["history"]]
        assert history.count("Initialization done! mhs.application") == 1, history
        weights = weights_seen(c, "mhs")
        assert weights == [10, 20, 30, 40, 50], weights
