"""The crash-point harness: run a scenario once cleanly to discover its action boundaries (the
client's mutating requests, through a `CrashProxy`), then once per boundary and variant with
the client SIGKILLed there, restarted, and left to finish; judge every run against the clean
one.

A boundary is `(signature, ordinal)`: the n-th request of one method and path. Nothing is
listed by hand, so a change to what initialisation, promotion or the hand-back write shows up
as new boundaries, all covered. A boundary the crash run does not reach (timing made it
take another path) is reported as unreached, never counted as covered.

What a crash run must show, compared with the clean run (`judge`):
- the same end state (`snapshot`): the Canary's phase, weight, revisions and finalizers, and
  every Deployment, Service, VirtualService and DestinationRule of the namespace (spec,
  labels, annotations, owners);
- no step repeated or lost in `status.history` (waits, whose count depends on timing, aside),
  and no Event recorded more often than in the clean run (an Event may be lost: the agent
  records Events after the status write, so a crash in between drops one, never repeats it;
  one exception: once the plugin's DELETE of the Canary is applied, the agent may let go of it
  before the plugin drops the finalizer, which the agent's "... finalizer removed" Event says);
- while observed (`Observer`, every ~0.1 s): the status weight and the routed canary weight
  never go back while Progressing, the primary's image changes at most once (no second
  promotion), and the apex Service never has zero ready endpoints once it had one;
- no lost request: the simulated mesh's count of requests that found no ready endpoint (503
  UH) does not grow while the scenario runs (once the apex Service serves).
"""

from __future__ import annotations

import signal
import subprocess
import sys
import threading
import time
from collections import Counter
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from agent.kube import KubeClient
from kubectl_canary.resources import KubeError

from .agent_harness import (
    CANARY_API,
    REPO,
    AgentProcess,
    Cluster,
    start_agent,
    wait_for,
)
from .crash_proxy import AFTER, BEFORE, CrashPoint, CrashProxy
from .traffic_watch import mesh_counts, ready_addresses, sandbox_mesh

ISTIO = "networking.istio.io/v1beta1"
APP = "web"
# No action request for this long (several 1 s intervals): the client has settled.
QUIET_SECONDS = 2.0
# Crash runs at once, each its own namespace, agent and relay: they mostly wait (1 s intervals,
# the 2 s Lease), so several share two cores without their timing going wrong.
PARALLEL_RUNS = 4
RUN_TIMEOUT = 90.0
# Volatile metadata a restart legitimately changes, or the server owns.
# (The applied hash covers the object's namespace, which differs per run; the spec it hashes
# is compared beside it.)
_VOLATILE_ANNOTATIONS = ("deployment.kubernetes.io/revision", "kubectl-canary.dev/applied-hash")
# History messages whose number depends on timing, not on the steps taken.
_WAITS = ("not ready", "Waiting for", "waiting for")


# ---- observing a namespace --------------------------------------------------------------


@dataclass(frozen=True)
class Sample:
    phase: str
    weight: int
    routed: int | None  # the VirtualService's canary weight, None without one
    primary_image: str | None
    apex_ready: int | None  # ready addresses of the apex Service, None without it


def _canary_weight(vs: dict[str, Any] | None) -> int | None:
    if vs is None:
        return None
    for route in vs["spec"].get("http") or []:
        for dest in route.get("route") or []:
            if dest["destination"]["host"] == f"{APP}-canary":
                return int(dest.get("weight", 0))
    return 0


def sample(client: KubeClient, ns: str) -> Sample:
    canary = client.get(CANARY_API, "Canary", ns, APP) or {}
    status = canary.get("status") or {}
    primary = client.get("apps/v1", "Deployment", ns, f"{APP}-primary")
    image = None
    if primary is not None:
        image = str(primary["spec"]["template"]["spec"]["containers"][0]["image"])
    apex = client.get("v1", "Service", ns, APP)
    ready = None
    if apex is not None:
        ready = len(ready_addresses(client.get("v1", "Endpoints", ns, APP)))
    return Sample(
        str(status.get("phase", "")),
        int(status.get("canaryWeight", 0)),
        _canary_weight(client.get(ISTIO, "VirtualService", ns, APP)),
        image,
        ready,
    )


@dataclass
class Observer:
    """Samples the namespace every ~0.1 s on its own connection while in the `with`."""

    kubeconfig: Path
    ns: str
    samples: list[Sample] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)
    _stop: threading.Event = field(default_factory=threading.Event)

    def __enter__(self) -> Observer:
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()
        return self

    def __exit__(self, *_: object) -> None:
        self._stop.set()
        self._thread.join(10)

    def _run(self) -> None:
        client = KubeClient.from_kubeconfig(str(self.kubeconfig))
        while not self._stop.is_set():
            try:
                self.samples.append(sample(client, self.ns))
            except KubeError as exc:
                self.errors.append(str(exc))
            self._stop.wait(0.1)

    def problems(self) -> list[str]:
        found = []
        progressing = [s for s in self.samples if s.phase == "Progressing"]
        for what, values in (
            ("status weight", [s.weight for s in progressing]),
            ("routed weight", [s.routed for s in progressing if s.routed is not None]),
        ):
            if not _forward(values):
                found.append(f"{what} went back while Progressing: {_runs(values)}")
        images = _runs([s.primary_image for s in self.samples if s.primary_image])
        if len(images) > 2:
            found.append(f"the primary's image changed more than once: {images}")
        ready = [s.apex_ready for s in self.samples if s.apex_ready is not None]
        serving = [i for i, n in enumerate(ready) if n]
        if serving and 0 in ready[serving[0] :]:
            found.append(f"the apex Service had no ready endpoint: {_runs(ready)}")
        return found


def _forward(values: list[int]) -> bool:
    """Never lower, except a last fall to 0 for good: a rollback routes everything to the
    primary before its status says Failed, so a crash in between shows Progressing at 0."""
    rolled_back = len(values)
    while rolled_back > 0 and values[rolled_back - 1] == 0:
        rolled_back -= 1
    kept = values[:rolled_back]
    return kept == sorted(kept)


def _runs(values: list[Any]) -> list[Any]:
    """`values` with repeats collapsed: [1, 1, 2, 1] -> [1, 2, 1]."""
    return [v for i, v in enumerate(values) if i == 0 or values[i - 1] != v]


# ---- the end state ----------------------------------------------------------------------


def _steps(messages: list[str], ns: str) -> list[str]:
    """The messages of steps taken, with the run's namespace written `{ns}`."""
    return [m.replace(ns, "{ns}") for m in messages if not any(w in m for w in _WAITS)]


def _meta(obj: dict[str, Any]) -> dict[str, Any]:
    meta = obj["metadata"]
    annotations = {
        k: v for k, v in (meta.get("annotations") or {}).items() if k not in _VOLATILE_ANNOTATIONS
    }
    owners = sorted(
        (o["kind"], o["name"], bool(o.get("controller"))) for o in meta.get("ownerReferences") or []
    )
    return {"labels": meta.get("labels") or {}, "annotations": annotations, "owners": owners}


@dataclass(frozen=True)
class Mark:
    """Where the scenario starts: what `prepare` left in the history and Events is not judged
    (its waits and races depend on timing; no crash happens there)."""

    history: int
    events: frozenset[str]


def mark(client: KubeClient, ns: str) -> Mark:
    canary = client.get(CANARY_API, "Canary", ns, APP) or {}
    history = (canary.get("status") or {}).get("history") or []
    items, _ = client.list("v1", "Event", ns)
    return Mark(len(history), frozenset(e["metadata"]["name"] for e in items))


def snapshot(client: KubeClient, ns: str, start: Mark) -> dict[str, Any]:
    """What must be the same after a crash as after the clean run."""
    out: dict[str, Any] = {}
    canary = client.get(CANARY_API, "Canary", ns, APP)
    if canary is not None:
        status = canary.get("status") or {}
        out["Canary"] = {
            "phase": status.get("phase"),
            "canaryWeight": status.get("canaryWeight"),
            "lastAppliedSpec": status.get("lastAppliedSpec"),
            "lastPromotedSpec": status.get("lastPromotedSpec"),
            "finalizers": canary["metadata"].get("finalizers") or [],
            "steps": _steps(
                [h["message"] for h in status.get("history") or []][start.history :], ns
            ),
        }
    for api, kind, fields in (
        ("apps/v1", "Deployment", ("replicas", "template")),
        ("v1", "Service", ("selector", "ports", "type")),
        (ISTIO, "VirtualService", ("hosts", "gateways", "http")),
        (ISTIO, "DestinationRule", ("host", "trafficPolicy")),
    ):
        for obj in client.list(api, kind, ns)[0]:
            spec = {k: obj["spec"].get(k) for k in fields}
            out[f"{kind}/{obj['metadata']['name']}"] = {**_meta(obj), "spec": spec}
    return out


def step_events(client: KubeClient, ns: str, start: Mark) -> Counter[str]:
    items, _ = client.list("v1", "Event", ns)
    items = [e for e in items if e["metadata"]["name"] not in start.events]
    return Counter(
        _steps(
            [
                e["message"]
                for e in items
                if (e.get("involvedObject") or {}).get("kind") == "Canary"
            ],
            ns,
        )
    )


def _diff(want: dict[str, Any], got: dict[str, Any]) -> list[str]:
    keys = sorted(set(want) | set(got))
    return [
        f"{k}: clean {want.get(k)!r} / crashed {got.get(k)!r}"
        for k in keys
        if want.get(k) != got.get(k)
    ]


# ---- runs -------------------------------------------------------------------------------


@dataclass(frozen=True)
class Scenario:
    """One scenario: `prepare` brings namespace `ns` to its starting state (the agent running,
    the proxy not yet counting), `trigger` starts what is measured, `finished` says it ended.
    `crashes` names what is killed: "agent" or "plugin" (then `plugin_args` is the command,
    re-run after the crash; the agent runs beside it, unproxied)."""

    name: str
    prepare: Callable[[Cluster, str], None]
    trigger: Callable[[Cluster, str], None]
    finished: Callable[[Cluster, str], bool]
    traffic_from_start: bool  # whether the apex Service serves before the trigger
    crashes: str = "agent"
    plugin_args: tuple[str, ...] = ()


@dataclass
class Outcome:
    point: CrashPoint | None
    reached: bool = True
    problems: list[str] = field(default_factory=list)
    actions: list[tuple[str, int]] = field(default_factory=list)  # the clean run's boundaries
    end: dict[str, Any] = field(default_factory=dict)
    events: Counter[str] = field(default_factory=Counter)
    seconds: float = 0.0
    failed: bool = False  # a wait ran out: the run did not end
    # The killed plugin had deleted the Canary: the agent then lets go of it itself (it hands
    # back every deleted Canary), and its Event saying so is the one a clean run lacks.
    agent_let_go: bool = False


@dataclass
class Bed:
    """One sandbox for all runs of a scenario; each run has its own namespace, its own Lease
    (the agent's namespace is the run's) and its own proxies."""

    cluster: Cluster
    workdir: Path
    agent_args: tuple[str, ...]
    metrics_server: str

    def traffic(self, namespaces: list[str]) -> None:
        """Simulated clients calling the apex Service of each namespace."""
        self.cluster.traffic(
            [{"namespace": ns, "service": APP, "rps": 20} for ns in namespaces], {}
        )

    def agent(self, ns: str, kubeconfig: Path, log: str) -> AgentProcess:
        return start_agent(
            kubeconfig,
            self.workdir / f"{ns}-{log}.log",
            "--namespace",
            ns,
            "--watch-namespace",
            ns,
            # 2 s as in the other e2e tests: 1 s (renew deadline 0.67 s) loses the Lease when
            # the parallel runs starve a process of CPU for a moment.
            "--lease-duration",
            "2s",
            *self.agent_args,
            metrics_server=self.metrics_server,
            provider="istio",
        )

    def run(self, scenario: Scenario, ns: str, point: CrashPoint | None) -> Outcome:
        started = time.monotonic()
        out = Outcome(point)
        c = self.cluster
        kill_agent = scenario.crashes == "agent"
        proxy = CrashProxy(c.sandbox.port, ns, armed=False, crash_at=point if kill_agent else None)
        direct = c.sandbox.kubeconfig
        agent_config = (
            proxy.kubeconfig(self.workdir / f"{ns}-1.kubeconfig") if kill_agent else direct
        )
        agent = self.agent(ns, agent_config, "agent-1")
        proxy.kill = lambda: agent.stop(signal.SIGKILL)
        agents = [agent]
        proxies = [proxy]
        try:
            scenario.prepare(c, ns)
            client = c.client
            mesh = sandbox_mesh(c.sandbox.url)
            before = mesh_counts(mesh, ns) if scenario.traffic_from_start else None
            start = mark(client, ns)
            with Observer(direct, ns) as observer:
                if kill_agent:
                    proxy.armed = True
                    scenario.trigger(c, ns)
                    self._finish_agent(scenario, ns, out, proxies, agents)
                else:
                    scenario.trigger(c, ns)
                    self._finish_plugin(scenario, ns, point, out, proxies)
            out.problems += observer.problems() + observer.errors[:3]
            if before is not None:
                after = mesh_counts(mesh, ns)
                lost = after.no_upstream - before.no_upstream
                if lost:
                    out.problems.append(f"{lost} requests found no ready endpoint")
            out.actions = [r.key for r in proxies[0].actions]
            out.end = snapshot(client, ns, start)
            out.events = step_events(client, ns, start)
        finally:
            for a in agents:
                a.stop()
            for p in proxies:
                p.close()
        out.seconds = time.monotonic() - started
        return out

    def _finish_agent(
        self,
        scenario: Scenario,
        ns: str,
        out: Outcome,
        proxies: list[CrashProxy],
        agents: list[AgentProcess],
    ) -> None:
        c, first = self.cluster, proxies[0]
        wait_for(
            f"{scenario.name} in {ns} to end or crash",
            lambda: first.crashed.is_set() or scenario.finished(c, ns),
            RUN_TIMEOUT,
            0.1,
        )
        if out.point is not None and not first.crashed.is_set():
            out.reached = False
            return
        if first.crashed.is_set():
            again = CrashProxy(c.sandbox.port, ns)
            proxies.append(again)
            config = again.kubeconfig(self.workdir / f"{ns}-2.kubeconfig")
            agents.append(self.agent(ns, config, "agent-2"))
            wait_for(
                f"{scenario.name} in {ns} to end after the restart",
                lambda: scenario.finished(c, ns),
                RUN_TIMEOUT,
                0.1,
            )
        _quiet(proxies[-1])

    def _finish_plugin(
        self,
        scenario: Scenario,
        ns: str,
        point: CrashPoint | None,
        out: Outcome,
        proxies: list[CrashProxy],
    ) -> None:
        first = CrashProxy(self.cluster.sandbox.port, ns, crash_at=point)
        proxies.insert(0, first)
        result = self._plugin(scenario, ns, first, "plugin-1")
        if point is not None and not first.crashed.is_set():
            out.reached = False
            return
        deleted = False
        if first.crashed.is_set():
            # Killed once its DELETE of the Canary was applied: the agent finishes the
            # hand-back of a deleted Canary itself, so by the re-run the Canary may be gone,
            # and the re-run must say just that.
            deleted = _deleted_canary(first, point)
            again = CrashProxy(self.cluster.sandbox.port, ns)
            proxies.append(again)
            result = self._plugin(scenario, ns, again, "plugin-2")
        # Once a plugin's DELETE of the Canary is applied, the agent (ticked by the deletion)
        # and the plugin both drop the finalizer, whichever comes first: a race either side
        # wins cleanly, so the agent's "... finalizer removed" Event is no repeated step.
        out.agent_let_go = any(_deleted_canary(p, point if p is first else None) for p in proxies)
        gone = deleted and result.returncode == 1 and "not found" in result.stderr
        if result.returncode != 0 and not gone:
            out.problems.append(f"the plugin exited {result.returncode}: {result.stderr[-800:]!r}")
        wait_for(
            f"{scenario.name} in {ns} to end", lambda: scenario.finished(self.cluster, ns), 30, 0.1
        )

    def _plugin(
        self, scenario: Scenario, ns: str, proxy: CrashProxy, log: str
    ) -> subprocess.CompletedProcess[str]:
        config = proxy.kubeconfig(self.workdir / f"{ns}-{log}.kubeconfig")
        cmd = [
            sys.executable,
            "-c",
            "from kubectl_canary.cli.main import main; main()",
            *scenario.plugin_args,
            "-n",
            ns,
            "--kubeconfig",
            str(config),
        ]
        proc = subprocess.Popen(
            cmd, cwd=REPO, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
        )

        def kill() -> None:
            proc.kill()
            proc.wait()

        proxy.kill = kill
        stdout, stderr = proc.communicate(timeout=RUN_TIMEOUT)
        return subprocess.CompletedProcess(cmd, proc.returncode, stdout, stderr)


def _quiet(proxy: CrashProxy) -> None:
    """Wait until the client sent no action request for QUIET_SECONDS."""
    seen, since = -1, time.monotonic()
    deadline = since + RUN_TIMEOUT
    while time.monotonic() < deadline:
        count = len(proxy.actions)
        if count != seen:
            seen, since = count, time.monotonic()
        elif time.monotonic() - since >= QUIET_SECONDS:
            return
        time.sleep(0.2)
    raise AssertionError(f"the client kept writing: {proxy.actions[-5:]}")


def _deleted_canary(proxy: CrashProxy, point: CrashPoint | None) -> bool:
    """Whether the server applied a DELETE of the Canary from this proxy's client (a request
    killed before it was sent was recorded but never applied)."""
    for request in proxy.actions:
        if request.method != "DELETE" or "/canaries/" not in request.signature:
            continue
        if point is not None and point.key == request.key and point.variant == BEFORE:
            continue
        return True
    return False


def judge(clean: Outcome, crashed: Outcome) -> list[str]:
    """What is wrong with a crash run, compared with the clean run."""
    problems = list(crashed.problems)
    if crashed.failed:
        return problems  # it did not end: nothing to compare
    problems += _diff(clean.end, crashed.end)
    for message, n in crashed.events.items():
        if crashed.agent_let_go and message.endswith("finalizer removed"):
            continue
        if n > clean.events[message]:
            problems.append(
                f"Event {message!r} recorded {n} times (clean run: {clean.events[message]})"
            )
    return problems


@dataclass
class Report:
    scenario: str
    boundaries: int
    covered: dict[str, int]  # variant -> crash runs that reached their boundary
    unreached: list[str]
    wrong: list[str]
    seconds: float

    def line(self) -> str:
        covered = ", ".join(f"{n} {v}" for v, n in self.covered.items())
        return (
            f"crash points {self.scenario}: {self.boundaries} boundaries; crashed {covered} "
            f"the request; {len(self.unreached)} unreached; {len(self.wrong)} wrong outcomes; "
            f"{self.seconds:.0f} s"
        )


def crash_points(actions: list[tuple[str, int]], full: bool) -> list[CrashPoint]:
    """Where to crash: before every boundary, and after the first and the last boundary of
    each signature (every boundary too when `full`). Killing before a request and killing
    after the previous one leave the same stored state; they differ in what the client did in
    between (reads, webhooks) and in the answer it lost, which the sample covers per kind of
    write."""
    points = [CrashPoint(key, BEFORE) for key in actions]
    last: dict[str, int] = {}
    for signature, ordinal in actions:
        last[signature] = ordinal
    for key in actions:
        if full or key[1] == 0 or key[1] == last[key[0]]:
            points.append(CrashPoint(key, AFTER))
    return points


def crash_every_boundary(
    bed: Bed, scenario: Scenario, full: bool = False, parallel: int = PARALLEL_RUNS
) -> Report:
    """The clean run, then one crash run per crash point (`parallel` at a time)."""
    started = time.monotonic()
    bed.traffic([f"{scenario.name}-clean"])
    clean = bed.run(scenario, f"{scenario.name}-clean", None)
    assert not clean.problems, f"the clean run of {scenario.name} already fails: {clean.problems}"
    assert clean.actions, f"the clean run of {scenario.name} wrote nothing"
    points = crash_points(clean.actions, full)
    bed.traffic([f"{scenario.name}-{i}" for i in range(len(points))])

    def one(i: int) -> tuple[CrashPoint, Outcome]:
        ns = f"{scenario.name}-{i}"
        try:
            return points[i], bed.run(scenario, ns, points[i])
        except AssertionError as exc:  # a wait that ran out: a wrong outcome, with its logs
            problem = f"{exc} (logs: {bed.workdir}/{ns}-*)"
            return points[i], Outcome(points[i], problems=[problem], failed=True)

    with ThreadPoolExecutor(parallel) as pool:
        results = list(pool.map(one, range(len(points))))
    covered: Counter[str] = Counter()
    unreached, wrong = [], []
    for point, outcome in results:
        where = f"{point.variant} {point.key[0]} #{point.key[1] + 1}"
        if not outcome.reached:
            unreached.append(where)
            continue
        covered[point.variant] += 1
        problems = judge(clean, outcome)
        if problems:
            wrong.append(f"{where}: " + "; ".join(problems))
    return Report(
        scenario.name,
        len(clean.actions),
        {v: covered[v] for v in (BEFORE, AFTER)},
        unreached,
        wrong,
        time.monotonic() - started,
    )
