"""The pace of releases in flight at once (a benchmark: prints numbers, asserts nothing).

N Deployments with an Istio Canary each (no metrics: the analysis is its weight steps), all
Initialized; then every target gets a new image at the same moment and the agent releases them
all. Per release, from `status.history` (second precision):

- detection -> first step ("New revision detected!" to the first "Advance ... canary weight")
- last step -> promotion (the last weight step to "Promotion completed!")
- total (detection to "Promotion completed!") against the ideal: steps x interval plus the
  rollouts' own time, measured from outside (the canary's from detection until the bench sees
  it ready, the primary's from "Copying" until it sees that ready), and their ratio.

p50/p99/max of each over the releases, and the gaps between one weight step and the next
(from the agent's own log, millisecond timestamps) against the interval. On a real API
server (`--kubeconfig`: the admin kubeconfig of the shared bed, ../shared/k8s) the agent runs
under its own ServiceAccount and, when the API server writes the audit log the real tier
reads, the agent's requests per release are counted from it (leases excluded).

    python3 bench/release_pace.py [--releases 20] [--steps 5] [--interval 10s]
    python3 bench/release_pace.py --releases 1000 --namespaces 10 --interval 30s
    flock /tmp/realtier.lock python3 bench/release_pace.py --kubeconfig /tmp/k8s-realcp/kubeconfig
"""

from __future__ import annotations

import argparse
import contextlib
import math
import sys
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from agent.core.timestamps import parse_time  # noqa: E402
from kubectl_canary.api.durations import parse_duration  # noqa: E402
from kubectl_canary.sandbox.process import start_sandbox  # noqa: E402
from tests.e2e.agent_harness import (  # noqa: E402
    CANARY_API,
    IMAGE_PREFIX,
    AgentProcess,
    ClusterView,
    deployment,
    namespace,
    running_agent,
    stepping_canary,
)
from tests.realcluster import bed as realbed  # noqa: E402

SANDBOX_NS = "pace"
POLL_SECONDS = 0.1


def ready(dep: dict[str, Any]) -> bool:
    """The controller has rolled out its latest spec and every new pod is ready, by the rule
    the agent goes on by (agent/observe.py): the ready count less any older pods left."""
    meta, spec, status = dep["metadata"], dep.get("spec") or {}, dep.get("status") or {}
    want = spec.get("replicas", 1)
    updated = status.get("updatedReplicas", 0)
    old = max(0, status.get("replicas", updated) - updated)
    return (
        want > 0
        and status.get("observedGeneration", 0) >= meta.get("generation", 0)
        and updated >= want
        and status.get("readyReplicas", 0) - old >= want
    )


@dataclass
class Watch:
    """When each Deployment was first seen ready after it changed (a new generation)."""

    generations: dict[str, int]
    ready_at: dict[str, float]

    @classmethod
    def start(cls, deployments: list[dict[str, Any]]) -> Watch:
        gens = {_key(d): d["metadata"].get("generation", 0) for d in deployments}
        return cls(gens, {})

    def see(self, deployments: list[dict[str, Any]], now: float) -> None:
        for dep in deployments:
            key = _key(dep)
            changed = dep["metadata"].get("generation", 0) > self.generations.get(key, 0)
            if changed and key not in self.ready_at and ready(dep):
                self.ready_at[key] = now


def _key(obj: dict[str, Any]) -> str:
    return f"{obj['metadata']['namespace']}/{obj['metadata']['name']}"


def stamp(history: list[dict[str, Any]], starts: str, last: bool = False) -> float | None:
    found = [h for h in history if h.get("message", "").startswith(starts)]
    if not found:
        return None
    moment = parse_time(found[-1 if last else 0]["time"])
    return moment.timestamp() if moment is not None else None


@dataclass
class Release:
    name: str
    detect_to_first: float
    last_to_done: float
    total: float
    ideal: float

    @property
    def ratio(self) -> float:
        return self.total / self.ideal


def measure(
    display: str, history: list[dict[str, Any]], watch: Watch, steps: int, interval: float
) -> Release | str:
    """The numbers of the release of `display` (name.namespace), or why they cannot be had."""
    name, ns = display.split(".", 1)
    key = f"{ns}/{name}"
    marks = {
        "detect": stamp(history, "New revision detected! Scaling up"),
        "first": stamp(history, f"Advance {display} canary weight"),
        "last": stamp(history, f"Advance {display} canary weight", last=True),
        "copy": stamp(history, f"Copying {display} template spec"),
        "done": stamp(history, "Promotion completed!"),
    }
    missing = [k for k, v in marks.items() if v is None]
    target_ready = watch.ready_at.get(key)
    primary_ready = watch.ready_at.get(f"{key}-primary")
    if missing:
        return f"{name}: no {', '.join(missing)} in history {history[-3:]}"
    unseen = [n for n, t in ((name, target_ready), (f"{name}-primary", primary_ready)) if t is None]
    if target_ready is None or primary_ready is None:
        return f"{name}: the bench never saw {' or '.join(unseen)} rolled out"
    at = {k: v for k, v in marks.items() if v is not None}
    # History has second precision: a rollout seen within the same second counts as 0.
    canary_rollout = max(0.0, target_ready - at["detect"])
    primary_rollout = max(0.0, primary_ready - at["copy"])
    return Release(
        key,
        at["first"] - at["detect"],
        at["done"] - at["last"],
        at["done"] - at["detect"],
        steps * interval + canary_rollout + primary_rollout,
    )


def step_gaps(lines: list[dict[str, Any]]) -> list[float]:
    """Seconds between one weight step of a canary and its next, over every canary, from the
    agent's log lines (the Event messages it logs, with their millisecond `ts`)."""
    steps: dict[str, list[float]] = {}
    for line in lines:
        if str(line.get("msg", "")).startswith("Advance ") and line.get("canary"):
            moment = parse_time(str(line.get("ts", "")))
            if moment is not None:
                steps.setdefault(str(line["canary"]), []).append(moment.timestamp())
    return [b - a for times in steps.values() for a, b in zip(times, times[1:], strict=False)]


def percentile(values: list[float], p: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, max(0, math.ceil(p / 100 * len(ordered)) - 1))]


@dataclass
class Target:
    view: ClusterView
    namespaces: list[str]  # where the releases run
    agent: AgentProcess
    image: str  # without the tag
    bed: realbed.Bed | None


@contextlib.contextmanager
def sandbox_target(
    workdir: Path, log: Path, command: tuple[str, ...], spread: int, concurrency: int
) -> Iterator[Target]:
    # A watch may resume from the last 200,000 events (the sandbox keeps 100 by default): with
    # hundreds of releases, 100 events pass while the agent reads a list (bench/agent_scale.py).
    handle = start_sandbox(workdir / "sandbox", bookmark_interval=2.0, watch_window=200_000)
    try:
        view = ClusterView(handle.kubeconfig)
        namespaces = [SANDBOX_NS] if spread <= 1 else [f"{SANDBOX_NS}-{i}" for i in range(spread)]
        for ns in (*namespaces, realbed.AGENT_NAMESPACE):  # the agent's Lease is in its own
            view.apply(namespace(ns))
        flags = ("--lease-duration", "2s", "--concurrency", str(concurrency))
        with running_agent(handle.kubeconfig, log, *flags, command=command) as agent:
            yield Target(view, namespaces, agent, IMAGE_PREFIX.rstrip(":"), None)
    finally:
        handle.stop()


@contextlib.contextmanager
def real_target(
    kubeconfig: Path, workdir: Path, log: Path, command: tuple[str, ...]
) -> Iterator[Target]:
    bed = realbed.Bed("shared", kubeconfig, workdir)
    bed.install()
    if not realbed._auditing():
        bed.audit_offset = -1  # an old log the API server no longer writes counts nothing
    ns = bed.namespace("pace")  # a fresh one: etcd keeps earlier runs' objects
    try:
        with bed.agent(log, provider="istio", command=command) as agent:
            yield Target(bed.view(), [ns], agent, realbed.IMAGE, bed)
    finally:
        bed.drop_namespace(ns)


def print_requests(bed: realbed.Bed, releases: int) -> None:
    """The agent's requests since `bed.audit_offset` per release (watches and leases
    excluded), writes and reads apart: every write is decided on a live GET of the object."""
    if bed.audit_offset < 0:
        print("requests per release: no audit log on this API server")
        return
    counted = {
        f"{verb} {group + '/' if group else ''}{resource}": n
        for (group, resource, verb), n in bed.agent_api_use().items()
        if group != "coordination.k8s.io" and verb not in ("watch", "list")
    }
    reads = sum(n for kind, n in counted.items() if kind.startswith("get "))
    total = sum(counted.values())
    print(
        f"requests per release (audit log, watches and leases excluded): "
        f"{total / releases:.1f} ({(total - reads) / releases:.1f} writes, "
        f"{reads / releases:.1f} reads)"
    )
    for kind, n in sorted(counted.items()):
        print(f"  {kind}: {n / releases:.1f}")


def run(args: argparse.Namespace, target: Target) -> None:
    view, spaces = target.view, target.namespaces
    apps = [(spaces[i % len(spaces)], f"app-{i:04d}") for i in range(args.releases)]
    for ns, name in apps:
        view.apply(deployment(ns, name, f"{target.image}:1.1.1"))
        view.apply(stepping_canary(ns, name, args.steps, args.interval))
    # The sandbox initialises a few canaries a second on a small machine.
    deadline = time.monotonic() + 300 + len(apps)
    while any(p != "Initialized" for p in phases(view, spaces)):
        if time.monotonic() > deadline or target.agent.proc.poll() is not None:
            raise SystemExit(f"error: canaries not Initialized; agent log {target.agent.log_path}")
        time.sleep(2)
    print(f"{len(apps)} canaries Initialized; releasing them all", flush=True)
    if target.bed is not None and target.bed.audit_offset >= 0:
        target.bed.audit_offset = realbed.audit_log().stat().st_size
    watch = Watch.start(deployments(view, spaces))
    began = time.monotonic()
    for ns, name in apps:
        view.set_image(ns, name, f"{target.image}:1.1.2")
    interval = parse_duration(args.interval)
    limit = began + 3 * (args.steps + 3) * interval + 120 + len(apps) / 10
    finished_at: float | None = None
    primaries = {f"{ns}/{name}-primary" for ns, name in apps}
    while True:
        # A few requests a round, so a rollout's end is seen within a fraction of a second
        # (its time is an upper bound: the ideal is, if anything, generous).
        watch.see(deployments(view, spaces), time.time())
        if finished_at is None:
            now = phases(view, spaces)
            if all(p in ("Succeeded", "Failed") for p in now):
                finished_at = time.monotonic()
            elif time.monotonic() > limit:
                raise SystemExit(f"error: releases not finished in time: {sorted(set(now))}")
        # An agent that went on before a primary's rollout ended: see how long it really took.
        elif primaries <= set(watch.ready_at) or time.monotonic() > finished_at + 60:
            break
        time.sleep(POLL_SECONDS)
    releases, problems = [], []
    for ns, name in apps:
        history = view.status(ns, name).get("history", [])
        found = measure(f"{name}.{ns}", history, watch, args.steps, interval)
        (problems if isinstance(found, str) else releases).append(found)
    report(releases, problems, args, (finished_at or time.monotonic()) - began)
    print_gaps(step_gaps(target.agent.lines()), interval)
    if target.bed is not None:
        print_requests(target.bed, args.releases)


def deployments(view: ClusterView, spaces: list[str]) -> list[dict[str, Any]]:
    return [d for ns in spaces for d in view.client.list("apps/v1", "Deployment", ns)[0]]


def phases(view: ClusterView, spaces: list[str]) -> list[str]:
    canaries = [c for ns in spaces for c in view.client.list(CANARY_API, "Canary", ns)[0]]
    return [str((c.get("status") or {}).get("phase")) for c in canaries]


def report(
    releases: list[Release], problems: list[str], args: argparse.Namespace, wall: float
) -> None:
    print(f"{len(releases)} releases of {args.steps} steps at {args.interval}, wall {wall:.0f} s")
    if len(releases) <= 50:  # one line each; beyond that only the summary
        print(
            f"{'release':<16} {'detect->1st':>11} {'last->done':>10} {'total':>6} "
            f"{'ideal':>6} ratio"
        )
        for r in releases:
            print(
                f"{r.name:<16} {r.detect_to_first:>11.0f} {r.last_to_done:>10.0f} "
                f"{r.total:>6.0f} {r.ideal:>6.1f} {r.ratio:.3f}"
            )
    for problem in problems:
        print(f"not measured: {problem}")
    if not releases:
        return
    columns = {
        "detect->first step s": [r.detect_to_first for r in releases],
        "last step->done s": [r.last_to_done for r in releases],
        "total s": [r.total for r in releases],
        "ratio total/ideal": [r.ratio for r in releases],
    }
    for label, values in columns.items():
        p50, p99, top = (percentile(values, 50), percentile(values, 99), max(values))
        print(f"{label:<22} p50 {p50:.2f}  p99 {p99:.2f}  max {top:.2f}")


def print_gaps(gaps: list[float], interval: float) -> None:
    if not gaps:
        print("step gaps: no steps in the agent's log")
        return
    p50, p99, top = percentile(gaps, 50), percentile(gaps, 99), max(gaps)
    print(
        f"step gaps (agent log, {len(gaps)} gaps) p50 {p50:.2f}  p99 {p99:.2f}  max {top:.2f} s; "
        f"p99 - interval {p99 - interval:+.2f} s"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--releases", type=int, default=20)
    parser.add_argument("--steps", type=int, default=5)
    parser.add_argument("--interval", default="10s")
    parser.add_argument(
        "--namespaces", type=int, default=1, help="sandbox: spread the releases over K"
    )
    parser.add_argument("--concurrency", type=int, default=4, help="sandbox: the agent's")
    parser.add_argument("--kubeconfig", type=Path, help="a real API server's admin kubeconfig")
    parser.add_argument(
        "--agent-from",
        type=Path,
        help="run the agent of another checkout (e.g. `git archive main` unpacked): a baseline",
    )
    args = parser.parse_args()
    if args.releases < 1 or not 1 <= args.steps <= 10:
        raise SystemExit("error: --releases must be >= 1 and --steps between 1 and 10")
    with tempfile.TemporaryDirectory(prefix="release-pace-") as tmp:
        workdir = Path(tmp)
        log = workdir / "agent.log"
        command: tuple[str, ...] = ()
        if args.agent_from is not None:
            # sh's $0 is the checkout; the agent's arguments follow as "$@".
            script = 'cd "$0" && exec "$1" -m agent.main "${@:2}"'
            command = ("bash", "-c", script, str(args.agent_from.resolve()), sys.executable)
        if args.kubeconfig is not None:
            target_cm = real_target(args.kubeconfig, workdir, log, command)
        else:
            target_cm = sandbox_target(workdir, log, command, args.namespaces, args.concurrency)
        with target_cm as target:
            run(args, target)


if __name__ == "__main__":
    main()
