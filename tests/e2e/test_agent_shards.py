"""Three agents with `--shards 3` on the sandbox: each canary is ticked by one agent only, and
a SIGKILLed agent's shard goes to another, whose canaries then keep releasing."""

from __future__ import annotations

import signal
import time
from pathlib import Path
from typing import Any

import pytest

from kubectl_canary.api.sharding import shard_of

from .agent_harness import (
    IMAGE_PREFIX,
    AgentProcess,
    Cluster,
    deployment,
    heir_of,
    held_shards,
    istio_canary,
    logged_canaries,
    metric_samples,
    namespace,
    one_shard_each,
    sandbox,
    start_agent,
)

pytestmark = [pytest.mark.e2e]

NS = "sharded"
SHARDS = 3
LEASE = 3.0  # seconds; retry period 0.4 s
NAMES = [f"app-{i:02d}" for i in range(30)]


def quiet_canary(name: str) -> dict[str, Any]:
    """The istio sample without metric checks: it steps on the interval alone (no Prometheus)."""
    canary = istio_canary(NS, name)
    canary["spec"]["analysis"]["metrics"] = []
    return canary


def reported(agent: AgentProcess) -> set[str]:
    """The canaries whose status this agent reports: the ones it ticks."""
    return {
        labels["name"]
        for series, labels, _ in metric_samples(agent.metrics())
        if series == "flagger_canary_status"
    }


def shard_of_name(name: str) -> int:
    return shard_of(f"{NS}/{name}", SHARDS)


def of_shard(shard: int) -> list[str]:
    return [n for n in NAMES if shard_of_name(n) == shard]


def messages(c: Cluster, name: str, prefix: str) -> int:
    """How many Events about the canary start with `prefix` (each counts repeats)."""
    return sum(
        int(e.get("count") or 1)
        for e in c.events(NS, name)
        if str(e.get("message", "")).startswith(prefix)
    )


def weights_seen(c: Cluster, name: str) -> list[int]:
    prefix = f"Advance {name}.{NS} canary weight "
    history = c.status(NS, name).get("history", [])
    return [int(h["message"][len(prefix) :]) for h in history if h["message"].startswith(prefix)]


def test_three_agents_split_the_canaries_and_a_killed_ones_shard_is_taken_over(
    tmp_path: Path,
) -> None:
    with sandbox(tmp_path / "sandbox", speed=5) as sb:
        c = Cluster(sb)
        c.apply(namespace("kubectl-canary"))
        c.apply(namespace(NS))
        for name in NAMES:
            c.apply(deployment(NS, name, IMAGE_PREFIX + "1.1.1", replicas=1))
            c.apply(quiet_canary(name))
        flags = ("--shards", str(SHARDS), "--lease-duration", f"{LEASE}s", "--log-level", "info")
        agents = {
            ident: start_agent(
                sb.kubeconfig, tmp_path / f"{ident}.log", *flags, "--identity", ident
            )
            for ident in ("a", "b", "c")
        }
        try:
            holder = one_shard_each(agents, timeout=60, interval=0.2)
            assert sorted(holder) == list(range(SHARDS))
            for name in NAMES:
                c.wait_phase(NS, name, "Initialized", timeout=120)
            # Each canary by exactly the agent holding its shard: in metrics, and in the
            # Events two agents ticking it at once would both have written.
            for shard, ident in holder.items():
                assert reported(agents[ident]) == set(of_shard(shard)), ident
            for name in NAMES:
                assert messages(c, name, "Initialization done!") == 1, name
            settled = {ident: len(a.lines()) for ident, a in agents.items()}

            victim_shard = next(s for s in holder if of_shard(s))
            victim = holder[victim_shard]
            killed = time.monotonic()
            agents[victim].stop(signal.SIGKILL)
            survivors = {i: a for i, a in agents.items() if i != victim}
            heir, took = heir_of(victim_shard, survivors, f"after {victim}'s kill", killed, 0.05)
            # Expiry after one lease duration, plus at most three retry periods of holding back
            # (the heir holds a shard already) and the scrape's own pace.
            assert took <= LEASE + 3 * (LEASE / 7.5) + 1.0, took
            assert all(len(held_shards(a)) == 1 for i, a in survivors.items() if i != heir)

            moved = of_shard(victim_shard)
            for name in moved:
                c.set_image(NS, name, IMAGE_PREFIX + "1.1.2")
            for name in moved:
                c.wait_phase(NS, name, "Succeeded", timeout=120)
                weights = weights_seen(c, name)
                assert weights == sorted(set(weights)) and weights[-1] == 50, (name, weights)
                assert messages(c, name, "Promotion completed!") == 1, name
            # Since the split settled, every canary's log lines come from one agent, and the
            # moved ones' from the heir once the victim was gone.
            since = {i: logged_canaries(a, NS, settled[i]) for i, a in agents.items()}
            assert set(moved) <= since[heir]
            for name in NAMES:
                writers = {i for i, names in since.items() if name in names} - {victim}
                assert writers <= {heir if name in moved else holder[shard_of_name(name)]}, name
            assert reported(survivors[heir]) >= set(moved)
        finally:
            for agent in agents.values():
                agent.stop()
