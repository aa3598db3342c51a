"""Three agents with `--shards 3` on the real API server, under the RBAC `init --shards 3`
renders: the canaries split by shard, and a replica paused (SIGSTOP, as a stalled node or a
long GC pause would) loses its shard to another, which takes those canaries through a
release; when the paused one wakes, no step is taken twice.
"""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml

from kubectl_canary.api.sharding import shard_of
from tests.e2e.agent_harness import (
    AgentProcess,
    ClusterView,
    deployment,
    heir_of,
    held_shards,
    one_shard_each,
    wait_for,
)
from tests.realcluster.bed import REPO, Bed, plain_canary
from tests.realcluster.bed import image as tagged

pytestmark = [pytest.mark.realcluster]

SHARDS = 3
LEASE = 3.0  # seconds: renew deadline 2 s, retry period 0.4 s
NAMES = [f"app-{i}" for i in range(9)]


def _lease_roles(bed: Bed, shards: int) -> list[dict[str, Any]]:
    """The Roles `init --shards N` renders that grant Leases (the shard Leases by name)."""
    done = subprocess.run(
        [sys.executable, "-m", "kubectl_canary", "init", "--dry-run", "-o", "yaml"]
        + ["--shards", str(shards)],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
        env={**os.environ, "KUBECONFIG": str(bed.admin_kubeconfig)},
    )
    docs = [d for d in yaml.safe_load_all(done.stdout) if d]
    return [
        d
        for d in docs
        if d["kind"] == "Role"
        and any("leases" in rule.get("resources", []) for rule in d.get("rules", []))
    ]


@contextlib.contextmanager
def shard_rbac(bed: Bed) -> Iterator[None]:
    """The agent's Role as `init --shards 3` makes it, and as `init` made it afterwards."""
    apply = ("apply", "--server-side", "--force-conflicts", "--field-manager=kubectl-canary-tests")
    bed.kubectl(*apply, "-f", "-", input=yaml.safe_dump_all(_lease_roles(bed, SHARDS)))
    try:
        yield
    finally:
        bed.kubectl(*apply, "-f", "-", input=yaml.safe_dump_all(_lease_roles(bed, 1)))


def weights(c: ClusterView, ns: str, name: str) -> list[int]:
    prefix = f"Advance {name}.{ns} canary weight "
    history = c.status(ns, name).get("history", [])
    return [int(h["message"][len(prefix) :]) for h in history if h["message"].startswith(prefix)]


def count_events(c: ClusterView, ns: str, name: str, prefix: str) -> int:
    return sum(
        int(e.get("count") or 1)
        for e in c.events(ns, name)
        if str(e.get("message", "")).startswith(prefix)
    )


@pytest.mark.timeout(420)
def test_a_paused_replica_loses_its_shard_and_does_not_act_when_it_wakes(
    bed: Bed, ns: str, tmp_path: Path
) -> None:
    c = bed.view()
    for name in NAMES:
        c.apply(deployment(ns, name, tagged("1.1.1"), replicas=1))
        c.apply(plain_canary(ns, name, interval="2s", step_weight=25, deadline=120))
    of_shard = {s: [n for n in NAMES if shard_of(f"{ns}/{n}", SHARDS) == s] for s in range(3)}
    flags = ("--shards", str(SHARDS), "--lease-duration", f"{LEASE:g}s", "--log-level", "info")

    with shard_rbac(bed), contextlib.ExitStack() as stack:
        agents: dict[str, AgentProcess] = {
            ident: stack.enter_context(
                bed.agent(tmp_path / f"{ident}.log", *flags, "--identity", f"shard-test-{ident}")
            )
            for ident in ("a", "b", "c")
        }
        holder = one_shard_each(agents, timeout=90, interval=0.3)
        for name in NAMES:
            c.wait_phase(ns, name, "Initialized", 120, 0.5)
        for name in NAMES:
            assert count_events(c, ns, name, "Initialization done!") == 1, name

        victim_shard = max(of_shard, key=lambda s: len(of_shard[s]))
        victim = agents[holder[victim_shard]]
        survivors = {i: a for i, a in agents.items() if a is not victim}
        os.kill(victim.proc.pid, signal.SIGSTOP)
        paused = time.monotonic()
        try:
            heir, took = heir_of(victim_shard, survivors, "after the pause", paused, 0.1)
            assert took <= LEASE + 3 * (LEASE / 7.5) + 2.0, took
            moved = of_shard[victim_shard]
            for name in moved:
                c.set_image(ns, name, tagged("1.1.2"))
            wait_for(
                "the heir's first step on every moved canary",
                lambda: all(weights(c, ns, n) for n in moved),
                60,
                0.3,
            )
        finally:
            os.kill(victim.proc.pid, signal.SIGCONT)

        for name in moved:
            c.wait_phase(ns, name, "Succeeded", 120, 0.5)
            seen = weights(c, ns, name)
            assert seen == sorted(set(seen)) and seen[-1] == 50, (name, seen)
            # Two replicas ticking one canary would both have recorded the steps: once each.
            for step in (25, 50):
                advance = f"Advance {name}.{ns} canary weight {step}"
                assert count_events(c, ns, name, advance) == 1, (name, step)
            assert count_events(c, ns, name, "Promotion completed!") == 1, name
        # The woken replica may ask for a shard back (it holds none, the heir two), but it
        # takes one only by a handover, never by acting on a Lease that ran out in its sleep.
        wait_for(
            "every shard held by exactly one replica",
            lambda: sorted(s for a in agents.values() for s in held_shards(a)) == [0, 1, 2],
            30,
            0.3,
        )
