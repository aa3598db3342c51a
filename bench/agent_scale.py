"""How the agent scales with the number of canaries (a benchmark: prints numbers, asserts nothing).

For each N (default 100, 500, 1000): a fresh sandbox, N Deployments and N Canaries; the agent
initialises them all, then for a steady-state window we measure, from outside the process:

- CPU seconds per canary-tick (utime+stime of the agent from /proc, over ticks in the window)
- API requests per canary-tick, by verb (the agent's own counters on /metrics)
- tick lag p50 / p99 (from the agent's lag histogram: start of a tick minus when it was due)
- RSS of the agent, and per 1,000 canaries above the idle agent's

An idle agent (same code, watching an empty namespace) runs alongside in the same sandbox as the
baseline for CPU and memory. `--unrelated M` adds M ConfigMaps the agent has no use for to the
watched namespace, as `kubectl apply` leaves them (a last-applied copy of each), to show what
objects outside the product cost. `--shards K` runs K agents with `--shards K` instead of one
and prints how many canaries each ticked. `--reshard K` then replaces the agents by K sharded
ones on the same (initialised) canaries and measures again; `--kill-one` then SIGKILLs one of
them, times until the others report all its canaries, and measures again. `--namespaces K`
spreads the canaries over K namespaces (the agent runs at most a few ticks of one namespace at
once); `--batch B` onboards them B at a time, and `--seeded` writes the onboarded state
instead (a sandbox without simulation: its one-thread controllers cannot run 10,000 apps).
`--kubeconfig` runs on an existing cluster instead (the real API server keeps managedFields,
which the sandbox drops). `--agent-repo DIR`
runs the agent of another checkout (e.g. `git archive <commit> | tar -x -C DIR`) for a
before/after in the same conditions.

    python3 bench/agent_scale.py --canaries 100,500 --interval 10s --window 30
    python3 bench/agent_scale.py --canaries 1000 --unrelated 10000 --shards 3
    python3 bench/agent_scale.py --canaries 10000 --namespaces 10 --batch 1000 --interval 1m \
        --reshard 3 --kill-one
"""

from __future__ import annotations

import argparse
import json
import os
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import time
import urllib.request
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

from prometheus_client.parser import text_string_to_metric_families

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from agent.kube import KubeClient  # noqa: E402
from kubectl_canary.api.model import CanaryStatus, Phase  # noqa: E402
from kubectl_canary.api.parse import parse_canary  # noqa: E402
from kubectl_canary.api.render import render_status  # noqa: E402
from kubectl_canary.objects import hashes, primary  # noqa: E402
from kubectl_canary.objects.names import primary_name  # noqa: E402
from kubectl_canary.objects.routers import router_for  # noqa: E402
from kubectl_canary.sandbox.process import start_sandbox  # noqa: E402

LAST_APPLIED = "kubectl.kubernetes.io/last-applied-configuration"
LEASE = "lease "  # prefix of the Lease requests' verbs in a Scrape
NS = "bench"  # the canaries' namespace, or the prefix of several (--namespaces)
IDLE_NS = "bench-idle"
CANARY_API = "kubectl-canary.dev/v1alpha1"
CLOCK_TICKS = os.sysconf("SC_CLK_TCK")


def cpu_seconds(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / CLOCK_TICKS


def rss_mib(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return 0.0


@dataclass
class Agent:
    proc: subprocess.Popen[bytes]
    log: Path
    port: int = 0

    def metrics(self) -> str:
        with urllib.request.urlopen(f"http://127.0.0.1:{self.port}/metrics", timeout=10) as r:
            return str(r.read().decode())


def start_agent(kubeconfig: Path, log: Path, repo: Path, *extra: str) -> Agent:
    cmd = [sys.executable, "-m", "agent.main", "--kubeconfig", str(kubeconfig)]
    cmd += ["--listen", "127.0.0.1:0", *extra]
    with log.open("wb") as out:
        proc = subprocess.Popen(cmd, cwd=repo, stdout=out, stderr=out)
    agent = Agent(proc, log)
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline and not agent.port:
        m = re.search(r'"port":(\d+)', log.read_text())
        if m:
            agent.port = int(m.group(1))
        elif proc.poll() is not None:
            raise SystemExit(f"agent exited: {log.read_text()[-1000:]}")
        time.sleep(0.1)
    return agent


@dataclass
class Scrape:
    ticks: int
    verbs: dict[str, int]
    lag: list[tuple[float, int]]
    canaries: set[str]  # the canaries this agent reports (the ones it ticks)


def scrape(agent: Agent) -> Scrape:
    """What one agent's /metrics says, read with prometheus_client's parser."""
    ticks = 0
    verbs: dict[str, int] = {}
    buckets: list[tuple[float, int]] = []
    canaries: set[str] = set()
    for family in text_string_to_metric_families(agent.metrics()):
        for sample in family.samples:
            if sample.name == "flagger_canary_status":
                canaries.add(f"{sample.labels['namespace']}/{sample.labels['name']}")
            elif sample.name == "kubectl_canary_ticks_total":
                ticks += int(sample.value)
            elif sample.name == "kubectl_canary_api_requests_total":
                # Leader election's Lease requests are per replica and shard, not per canary.
                leases = sample.labels["resource"] == "coordination.k8s.io/leases"
                verb = LEASE + sample.labels["verb"] if leases else sample.labels["verb"]
                verbs[verb] = verbs.get(verb, 0) + int(sample.value)
            elif sample.name == "kubectl_canary_tick_lag_seconds_bucket":
                buckets.append((float(sample.labels["le"]), int(sample.value)))
    return Scrape(ticks, verbs, buckets, canaries)


def total(scrapes: list[Scrape]) -> Scrape:
    """Several agents' scrapes as one (their histograms share the buckets)."""
    verbs: dict[str, int] = {}
    for one in scrapes:
        for verb, n in one.verbs.items():
            verbs[verb] = verbs.get(verb, 0) + n
    lag = [(le, sum(x.lag[i][1] for x in scrapes)) for i, (le, _) in enumerate(scrapes[0].lag)]
    return Scrape(
        sum(x.ticks for x in scrapes), verbs, lag, set().union(*(x.canaries for x in scrapes))
    )


def quantile(before: list[tuple[float, int]], after: list[tuple[float, int]], q: float) -> str:
    counts = [(le, a - b) for (le, a), (_, b) in zip(after, before, strict=True)]
    total = counts[-1][1] if counts else 0
    if total == 0:
        return "n/a"
    for le, n in counts:
        if n >= q * total:
            return f"<= {le:g}s"
    return "> max"


def namespaces(count: int) -> list[str]:
    return [NS] if count <= 1 else [f"{NS}-{i}" for i in range(count)]


def deployment(ns: str, name: str) -> dict:
    labels = {"app": name}
    return {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {"name": name, "namespace": ns, "labels": labels},
        "spec": {
            "replicas": 1,
            "selector": {"matchLabels": labels},
            "template": {
                "metadata": {"labels": labels},
                "spec": {"containers": [{"name": "app", "image": "podinfo:1.0.0"}]},
            },
        },
    }


def canary(ns: str, name: str, interval: str, provider: str) -> dict:
    return {
        "apiVersion": CANARY_API,
        "kind": "Canary",
        "metadata": {"name": name, "namespace": ns},
        "spec": {
            "provider": provider,
            "targetRef": {"apiVersion": "apps/v1", "kind": "Deployment", "name": name},
            "service": {"port": 9898},
            "analysis": {"interval": interval, "threshold": 5, "maxWeight": 50, "stepWeight": 10},
        },
    }


def unrelated_config(ns: str, name: str) -> dict:
    data = {"settings.yaml": "feature: on\nlevel: " + "x" * 200}
    applied = {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": name}, "data": data}
    return {
        "apiVersion": "v1",
        "kind": "ConfigMap",
        "metadata": {
            "name": name,
            "namespace": ns,
            "annotations": {LAST_APPLIED: json.dumps(applied)},
        },
        "data": data,
    }


def initialized(client: KubeClient, watched: list[str]) -> int:
    done = 0
    for ns in watched:
        items, _ = client.list(CANARY_API, "Canary", ns)
        done += sum(1 for i in items if (i.get("status") or {}).get("phase") == "Initialized")
    return done


def run(n: int, args: argparse.Namespace, workdir: Path) -> None:
    # A watch may resume from the last 200,000 events (the sandbox keeps 100 by default): at
    # 10,000 canaries, 100 events pass while the agent reads one namespace's list, and it would
    # list again forever. A real API server keeps minutes of them.
    sb = (
        None
        if args.kubeconfig
        else start_sandbox(
            workdir / f"sandbox-{n}",
            speed=args.speed,
            watch_window=200_000,
            simulation=not args.seeded,
        )
    )
    kubeconfig = Path(args.kubeconfig) if sb is None else sb.kubeconfig
    busy: list[Agent] = []
    idle = None
    repo = Path(args.agent_repo).resolve() if args.agent_repo else REPO
    watched = namespaces(args.namespaces)
    try:
        client = KubeClient.from_kubeconfig(str(kubeconfig))
        for ns in (*watched, IDLE_NS):
            if client.get("v1", "Namespace", "", ns) is not None:
                raise SystemExit(f"namespace {ns} exists (an earlier run?): delete it first")
            client.create({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": ns}})
        # Canaries round-robin over the namespaces; the unrelated ConfigMaps go to the first.
        apps = [(watched[i % len(watched)], f"app-{i:05d}") for i in range(n)]
        started = time.monotonic()
        with ThreadPoolExecutor(8) as pool:
            list(pool.map(lambda a: client.create(deployment(*a)), apps))
            others = [f"unrelated-{i:05d}" for i in range(args.unrelated)]
            list(pool.map(lambda x: client.create(unrelated_config(watched[0], x)), others))
        print(
            f"  created {n} Deployments in {len(watched)} namespace(s) and "
            f"{args.unrelated} unrelated ConfigMaps in {time.monotonic() - started:.1f}s"
        )
        if args.seeded:  # before any agent starts: as after a restart of the agent
            seed(client, apps, args)
        # info: the bound port is announced at info level (and release events are logged).
        common = ("--concurrency", str(args.concurrency), "--log-level", "info")
        watch = ("--watch-namespace", ",".join(watched))  # the idle agent watches its own

        def start_busy(count: int, phase: str) -> list[Agent]:
            if count == 1:
                log = workdir / f"agent-{n}{phase}.log"
                return [start_agent(kubeconfig, log, repo, "--no-leader-elect", *watch, *common)]
            sharded = ("--shards", str(count), "--namespace", IDLE_NS)
            sharded += ("--lease-duration", f"{args.lease_duration:g}s")
            return [
                start_agent(
                    kubeconfig,
                    workdir / f"agent-{n}{phase}-{i}.log",
                    repo,
                    "--identity",
                    f"agent{phase}-{i}",
                    *sharded,
                    *watch,
                    *common,
                )
                for i in range(count)
            ]

        busy = start_busy(args.shards, "")
        idle = start_agent(
            kubeconfig,
            workdir / f"idle-{n}.log",
            repo,
            "--watch-namespace",
            IDLE_NS,
            "--no-leader-elect",
            *common,
        )
        if args.seeded:
            wait_reported(busy, n, args.init_timeout, time.monotonic())
        else:
            onboard(client, apps, watched, args)
        time.sleep(args.settle)
        measure(busy, idle, n, args.window)
        if args.reshard:
            stop_agents(busy)
            resharded = time.monotonic()
            busy = start_busy(args.reshard, "-resharded")
            print(f"  replaced by {args.reshard} agent(s) on the same canaries")
            wait_reported(busy, n, args.init_timeout, resharded)
            time.sleep(args.settle)
            measure(busy, idle, n, args.window)
        if args.kill_one and len(busy) > 1:
            victim = busy.pop()
            victim.proc.kill()
            victim.proc.wait(10)
            killed = time.monotonic()
            print(f"  SIGKILLed one of {len(busy) + 1} agents; the others take its shard over")
            wait_reported(busy, n, args.init_timeout, killed)
            time.sleep(args.settle)
            measure(busy, idle, n, args.window)
    finally:
        stop_agents([a for a in (*busy, idle) if a is not None])
        if sb is not None:
            sb.stop()
        else:
            remove_namespaces(KubeClient.from_kubeconfig(str(kubeconfig)), watched)


def onboard(
    client: KubeClient, apps: list[tuple[str, str]], watched: list[str], args: argparse.Namespace
) -> None:
    """Create the Canaries, `--batch` at a time, each batch once the ones before are
    Initialized (all at once by default)."""
    started = time.monotonic()
    deadline = started + args.init_timeout
    batch = args.batch or len(apps)
    done = 0
    with ThreadPoolExecutor(8) as pool:
        for first in range(0, len(apps), batch):
            part = apps[first : first + batch]
            list(pool.map(lambda a: client.create(canary(*a, args.interval, args.provider)), part))
            while time.monotonic() < deadline:
                done = initialized(client, watched)
                if done >= first + len(part):
                    break
                time.sleep(5)
            if batch < len(apps):
                print(f"  {done} Initialized after {time.monotonic() - started:.0f}s", flush=True)
    print(f"  initialised {done}/{len(apps)} canaries in {time.monotonic() - started:.1f}s")


def seed(client: KubeClient, apps: list[tuple[str, str]], args: argparse.Namespace) -> None:
    """Onboarded canaries without onboarding them: for each app, what the agent's own
    `initialize` and router write (primary Deployment, Services, routes), the statuses the
    controllers would write (primary ready, target scaled to zero) and the Canary's Initialized
    status. The sandbox runs no simulation then: at 10,000 apps its controllers, one Python
    thread, took hours to start the pods, and the steady state is what is measured."""
    started = time.monotonic()

    def one(app: tuple[str, str]) -> None:
        ns, name = app
        target = client.get("apps/v1", "Deployment", ns, name)
        assert target is not None
        created = client.create(canary(ns, name, args.interval, args.provider))
        model = parse_canary(created, default_provider=args.provider)
        primary.initialize(client, model, target, routing=True)
        router = router_for(model.spec.provider, client)  # as the agent's Initialize action
        router.reconcile(model)
        router.set_routes(model, 100, 0, False)
        target = client.patch_merge("apps/v1", "Deployment", ns, name, {"spec": {"replicas": 0}})
        client.update_status({**target, "status": {"observedGeneration": 2}})
        made = client.get("apps/v1", "Deployment", ns, primary_name(model))
        assert made is not None
        ready = {"replicas": 1, "updatedReplicas": 1, "readyReplicas": 1, "availableReplicas": 1}
        client.update_status({**made, "status": {"observedGeneration": 1, **ready}})
        revision = hashes.template_hash(target, {})
        status = CanaryStatus(
            phase=Phase.INITIALIZED, last_applied_spec=revision, last_promoted_spec=revision
        )
        created = client.get(CANARY_API, "Canary", ns, name) or created
        client.update_status({**created, "status": render_status(status)})

    with ThreadPoolExecutor(8) as pool:
        list(pool.map(one, apps))
    print(f"  seeded {len(apps)} Initialized canaries in {time.monotonic() - started:.1f}s")


def stop_agents(agents: list[Agent]) -> None:
    for agent in agents:
        if agent.proc.poll() is None:
            agent.proc.send_signal(signal.SIGTERM)
            try:
                agent.proc.wait(20)
            except subprocess.TimeoutExpired:
                agent.proc.kill()
                agent.proc.wait(10)


def wait_reported(agents: list[Agent], n: int, timeout: float, since: float) -> None:
    """Wait until the agents report all `n` canaries between them (each has its shard's),
    then until their first ticks are over: no write for two scrapes in a row."""
    while time.monotonic() - since < timeout:
        if len(set().union(*(scrape(a).canaries for a in agents))) == n:
            break
        time.sleep(2)
    print(f"  every canary ticked again after {time.monotonic() - since:.1f}s")
    wait_quiet(agents, timeout)


def wait_quiet(agents: list[Agent], timeout: float) -> None:
    """Wait until the agents write nothing for 10 s: the first tick of a canary an agent just
    took up may write (a finalizer, a condition); the steady state is measured after."""
    started = time.monotonic()
    last = -1
    while time.monotonic() - started < timeout:
        writes = sum(
            n
            for x in (scrape(a) for a in agents)
            for verb, n in x.verbs.items()
            if verb in ("create", "patch", "update", "delete")
        )
        if writes == last:
            break
        last = writes
        time.sleep(10)
    print(f"  no writes for 10 s after {time.monotonic() - started:.1f}s more")


def measure(busy: list[Agent], idle: Agent, n: int, seconds: float) -> None:
    """One steady-state window of `seconds` over the running agents: print what they cost."""
    each0 = [scrape(a) for a in busy]
    before = total(each0)
    cpu0 = sum(cpu_seconds(a.proc.pid) for a in busy)
    idle_cpu0, w0 = cpu_seconds(idle.proc.pid), time.monotonic()
    time.sleep(seconds)
    each = [scrape(a) for a in busy]
    after = total(each)
    cpu1 = sum(cpu_seconds(a.proc.pid) for a in busy)
    idle_cpu1, w1 = cpu_seconds(idle.proc.pid), time.monotonic()
    t1, v1, lag1, v0, lag0 = after.ticks, after.verbs, after.lag, before.verbs, before.lag
    ticks = t1 - before.ticks
    window = w1 - w0
    print(f"  window {window:.0f}s: {ticks} canary-ticks ({ticks / window:.1f}/s)")
    if ticks:
        print(f"  CPU per canary-tick: {(cpu1 - cpu0) / ticks * 1000:.2f} ms")
        per = {
            v: (v1.get(v, 0) - v0.get(v, 0)) / ticks for v in sorted(v1) if not v.startswith(LEASE)
        }
        print(
            "  API requests per canary-tick: " + ", ".join(f"{v} {x:.3f}" for v, x in per.items())
        )
        lease = {
            v.removeprefix(LEASE): (v1[v] - v0.get(v, 0)) / window
            for v in sorted(v1)
            if v.startswith(LEASE)
        }
        if lease:
            print(
                "  Lease requests per second: "
                + ", ".join(f"{v} {x:.2f}" for v, x in lease.items())
            )
    print(f"  tick lag p50 {quantile(lag0, lag1, 0.5)}, p99 {quantile(lag0, lag1, 0.99)}")
    busy_cpu = (cpu1 - cpu0) / window * 100
    idle_cpu = (idle_cpu1 - idle_cpu0) / window * 100
    rss = [rss_mib(a.proc.pid) for a in busy]
    idle_rss = rss_mib(idle.proc.pid)
    print(
        f"  agent CPU {busy_cpu:.1f}% of a core, RSS {' + '.join(f'{r:.0f}' for r in rss)} "
        f"MiB; idle agent CPU {idle_cpu:.1f}%, RSS {idle_rss:.0f} MiB"
    )
    above = (sum(rss) - len(rss) * idle_rss) / n * 1000
    print(f"  RSS above idle per 1,000 canaries: {above:.0f} MiB")
    if len(busy) > 1:
        split = [len(x.canaries) for x in each]
        overlap = sum(split) - len(after.canaries)
        print(f"  canaries per agent: {split} (of {n}; reported by two agents at once: {overlap})")


def remove_namespaces(client: KubeClient, watched: list[str]) -> None:
    """Leave a shared cluster as it was: delete the bench's namespaces and wait until gone.
    The agents are stopped by now, so nobody would take the Canaries' finalizers off: the
    bench does (their apps go with the namespace, there is nothing to hand back)."""
    for ns in watched:
        items, _ = client.list(CANARY_API, "Canary", ns)
        for item in items:
            name = item["metadata"]["name"]
            client.patch_merge(CANARY_API, "Canary", ns, name, {"metadata": {"finalizers": None}})
    for ns in (*watched, IDLE_NS):
        client.delete("v1", "Namespace", "", ns)
    deadline = time.monotonic() + 600
    while time.monotonic() < deadline:
        if all(client.get("v1", "Namespace", "", ns) is None for ns in (*watched, IDLE_NS)):
            return
        time.sleep(2)
    print("  namespaces still terminating after 10 minutes", flush=True)


def main() -> None:
    p = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    p.add_argument("--canaries", default="100,500,1000", help="comma list of N")
    p.add_argument("--interval", default="10s", help="analysis.interval of every canary")
    p.add_argument("--window", type=float, default=30.0, help="measured steady-state seconds")
    p.add_argument("--settle", type=float, default=5.0, help="seconds after initialisation")
    p.add_argument("--init-timeout", type=float, default=600.0)
    p.add_argument("--speed", type=float, default=20.0, help="sandbox simulation speed")
    p.add_argument("--concurrency", type=int, default=4)
    p.add_argument("--provider", default="kubernetes", choices=("kubernetes", "istio"))
    p.add_argument("--unrelated", type=int, default=0, help="ConfigMaps the agent has no use for")
    p.add_argument("--shards", type=int, default=1, help="run this many agents with --shards")
    p.add_argument(
        "--kill-one",
        action="store_true",
        help="with --shards: after the window, SIGKILL one agent, wait until the others tick "
        "all its canaries, and measure again",
    )
    p.add_argument(
        "--reshard",
        type=int,
        default=0,
        help="after the window, replace the agents by this many with --shards on the same "
        "(initialised) canaries and measure again",
    )
    p.add_argument("--lease-duration", type=float, default=5.0, help="shard Leases' seconds")
    p.add_argument("--namespaces", type=int, default=1, help="spread the canaries over K")
    p.add_argument(
        "--batch", type=int, default=0, help="onboard this many canaries at a time (0: all)"
    )
    p.add_argument(
        "--seeded",
        action="store_true",
        help="write the onboarded state instead of onboarding (a sandbox without simulation)",
    )
    p.add_argument("--agent-repo", default="", help="run the agent of this checkout instead")
    p.add_argument(
        "--kubeconfig",
        default="",
        help="an existing cluster (the real-API-server tier, under its lock) instead of a fresh "
        "sandbox: namespaces bench and bench-idle are created, and deleted at the end",
    )
    p.add_argument("--keep", action="store_true", help="keep the work directory (logs)")
    args = p.parse_args()
    workdir = Path(tempfile.mkdtemp(prefix="agent-scale-"))
    try:
        for n in (int(x) for x in args.canaries.split(",")):
            print(f"{n} canaries ({args.provider}, interval {args.interval}):", flush=True)
            run(n, args, workdir)
    finally:
        if args.keep:
            print(f"logs in {workdir}")
        else:
            shutil.rmtree(workdir, ignore_errors=True)


if __name__ == "__main__":
    main()
