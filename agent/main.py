"""`canary-agent`: the in-cluster agent that runs the release loop.

In a cluster it uses its service account; out of cluster (tests, development) pass
`--kubeconfig`. It watches Canaries and the objects it manages, ticks each canary every
`analysis.interval` (and at once on relevant changes), and only the replica holding the Lease
acts; with `--shards N` each replica acts on the canaries of the shards whose Leases it holds
(agent/shards.py). See docs/agent.md for every flag.
"""

from __future__ import annotations

import argparse
import logging
import os
import signal
import socket
import sys
import threading
from dataclasses import dataclass

from agent import logs
from agent.cache import Caches, WatchSettings
from agent.cached_client import CachedClient
from agent.handover import Handover
from agent.http_server import AgentHTTPServer, parse_listen
from agent.leader import LeaderElector, LeaseTiming
from agent.policy import RoutingPolicy, TenantPolicy
from agent.reconcile import Ticker, TickSettings
from agent.scheduler import Scheduler, TickRecord
from agent.shards import ShardOwnership, shard_electors
from agent.telemetry import Telemetry
from agent.triggers import TriggerIndex
from kubectl_canary.api.durations import parse_duration
from kubectl_canary.api.model import API_VERSION, CLUSTER_TEMPLATE_KIND, PROVIDERS
from kubectl_canary.api.sharding import shard_of
from kubectl_canary.egress.policy import EgressPolicy
from kubectl_canary.resources import ApiError

log = logging.getLogger("agent")

LEASE_NAME = "kubectl-canary-agent"
# How soon a tick that found its Lease past the renew deadline looks again.
STALE_LEASE_RETRY_SECONDS = 1.0
# How soon a canary whose cache is behind the previous holder's last write is asked again.
CATCH_UP_RETRY_SECONDS = 0.2
# Routing kinds watched so routers read them from the cache (absent CRDs are fine).
ROUTING_KINDS = (
    ("networking.istio.io/v1beta1", "VirtualService"),
    ("networking.istio.io/v1beta1", "DestinationRule"),
    ("gateway.networking.k8s.io/v1", "HTTPRoute"),
)


def _duration(text: str) -> float:
    try:
        return parse_duration(text)
    except ValueError:
        return float(text)


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="canary-agent", description=__doc__)
    p.add_argument("--kubeconfig", help="kubeconfig file (default: in-cluster service account)")
    p.add_argument("--context", help="kubeconfig context")
    p.add_argument(
        "--namespace",
        default=os.environ.get("POD_NAMESPACE", "kubectl-canary"),
        help="the agent's own namespace, where its Lease lives (default: $POD_NAMESPACE)",
    )
    p.add_argument(
        "--watch-namespace",
        action="append",
        default=[],
        help="namespace to watch (repeatable or comma-separated; default: all)",
    )
    p.add_argument("--metrics-server", default="", help="default Prometheus URL")
    p.add_argument(
        "--provider",
        default="kubernetes",
        choices=PROVIDERS,
        help="provider for Canaries without spec.provider (default: kubernetes)",
    )
    p.add_argument("--listen", default="0.0.0.0:8080", help="HOST:PORT for /metrics, /healthz")
    p.add_argument(
        "--leader-elect",
        action=argparse.BooleanOptionalAction,
        default=True,
        help="hold a Lease so only one replica acts (default: on)",
    )
    p.add_argument("--lease-duration", type=_duration, default=15.0, help="e.g. 15s (min 1s)")
    p.add_argument(
        "--shards",
        type=int,
        default=1,
        help="split the canaries into N shards, one Lease each; every replica ticks the "
        "canaries of the shards it holds (default 1: one leader ticks all)",
    )
    p.add_argument("--concurrency", type=int, default=4, help="tick workers always running")
    p.add_argument(
        "--max-concurrency",
        type=int,
        default=32,
        help="tick workers at most: the pool grows while every worker waits (default 32)",
    )
    p.add_argument(
        "--namespace-concurrency",
        type=int,
        default=2,
        help="ticks of one namespace at once, so a tenant's slow webhooks or metrics server "
        "cannot hold every worker (default 2)",
    )
    p.add_argument("--log-level", default="info", choices=("debug", "info", "warning", "error"))
    p.add_argument(
        "--min-interval",
        type=_duration,
        default=1.0,
        help="floor for analysis.interval between ticks (default 1s)",
    )
    p.add_argument(
        "--watch-timeout",
        type=_duration,
        default=300.0,
        help="server-side timeout of each watch request before it is renewed (default 5m)",
    )
    p.add_argument("--identity", default="", help="leader election identity (default: hostname)")
    p.add_argument(
        "--sync-timeout",
        type=_duration,
        default=60.0,
        help="how long to wait for the caches' first lists before logging an error (the agent "
        "never acts before they are synced; default 60s)",
    )
    p.add_argument(
        "--no-copy-metadata",
        action="append",
        default=[],
        metavar="KEY",
        help="label/annotation key (or prefix ending in '/') never copied from the target to "
        "the primary and config copies, on top of the GitOps tracking keys (repeatable)",
    )
    p.add_argument(
        "--allow-egress",
        action="append",
        default=[],
        metavar="URL",
        help="URL prefix the agent may call for any tenant whatever its address (metrics "
        "servers, webhooks); --metrics-server is always allowed (repeatable)",
    )
    p.add_argument(
        "--egress-default",
        default="allow",
        choices=("allow", "deny"),
        help="URLs outside --allow-egress: 'allow' any address except loopback, link-local "
        "(cloud metadata), the API server and other special ranges; 'deny' all (default allow)",
    )
    p.add_argument(
        "--allow-gateway",
        action="append",
        default=[],
        metavar="NS/NAME",
        help="another namespace's gateway Canaries may bind (NS/NAME or NS/*; repeatable)",
    )
    p.add_argument(
        "--allow-wildcard-hosts",
        action="store_true",
        help="let Canaries route wildcard hosts ('*', '*.example.com')",
    )
    p.add_argument(
        "--allow-tls-disable",
        action="store_true",
        help="let Canaries set trafficPolicy tls.mode DISABLE",
    )
    return p


def split_list(values: list[str]) -> tuple[str, ...]:
    """Values of a repeatable, comma-separated flag: stripped, de-duplicated, in order."""
    found: list[str] = []
    for value in values:
        for part in value.split(","):
            part = part.strip()
            if part and part not in found:
                found.append(part)
    return tuple(found)


@dataclass
class Options:
    args: argparse.Namespace
    namespaces: tuple[str, ...]
    timing: LeaseTiming
    listen: tuple[str, int]
    identity: str
    routing: RoutingPolicy
    allow_egress: tuple[str, ...]


def parse_options(argv: list[str] | None) -> Options:
    parser = build_parser()
    args = parser.parse_args(argv)
    allow_egress = split_list(args.allow_egress)
    if args.metrics_server:
        # The operator's own Prometheus: callable whatever its address (often 127.0.0.1 in
        # development, a ClusterIP in a cluster).
        allow_egress = (*allow_egress, args.metrics_server)
    try:
        timing = LeaseTiming.for_duration(args.lease_duration)
        timing.validate()
        listen = parse_listen(args.listen)
        EgressPolicy.build(allow_egress, args.egress_default)
        routing = RoutingPolicy.build(
            split_list(args.allow_gateway), args.allow_wildcard_hosts, args.allow_tls_disable
        )
    except ValueError as exc:
        parser.error(str(exc))
    if args.concurrency < 1:
        parser.error("--concurrency must be at least 1")
    if args.max_concurrency < args.concurrency:
        parser.error("--max-concurrency must be at least --concurrency")
    if args.namespace_concurrency < 1:
        parser.error("--namespace-concurrency must be at least 1")
    if args.min_interval <= 0:
        parser.error("--min-interval must be positive")
    if args.sync_timeout <= 0:
        parser.error("--sync-timeout must be positive")
    if args.shards < 1:
        parser.error("--shards must be at least 1")
    if args.shards > 1 and not args.leader_elect:
        parser.error("--shards needs --leader-elect: shards are handed out by their Leases")
    identity = args.identity or f"{socket.gethostname()}_{os.getpid()}"
    namespaces = split_list(args.watch_namespace)
    return Options(args, namespaces, timing, listen, identity, routing, allow_egress)


class Agent:
    def __init__(self, opts: Options) -> None:
        from agent.core.decide import decide
        from agent.kube import KubeClient
        from agent.wiring import ProviderToolkit

        a = opts.args
        self.opts = opts
        self.live = (
            KubeClient.from_kubeconfig(a.kubeconfig, a.context)
            if a.kubeconfig or not os.environ.get("KUBERNETES_SERVICE_HOST")
            else KubeClient.in_cluster()
        )
        self.telemetry = Telemetry(self.live.request_counts, self.live.error_counts, a.provider)
        watch = WatchSettings(
            timeout_seconds=max(1, int(a.watch_timeout)), silence_seconds=a.watch_timeout + 30
        )
        self.caches = Caches(self.live, opts.namespaces, watch)
        self.client = CachedClient(self.live, self.caches)
        egress = EgressPolicy.build(
            opts.allow_egress, a.egress_default, api_hosts=self._api_hosts()
        )
        toolkit = ProviderToolkit(
            # Secrets are not cached: this is a GET of the one Secret a template names.
            lambda ns, name: self.client.get("v1", "Secret", ns, name),
            no_copy=split_list(a.no_copy_metadata),
            egress=egress,
            agent_namespace=a.namespace,
        )
        settings = TickSettings(
            default_provider=a.provider,
            metrics_server=a.metrics_server,
            min_interval=a.min_interval,
            instance=opts.identity,
            policy=TenantPolicy(egress, opts.routing),
        )
        self.ticker = Ticker(self.client, self.caches, toolkit, decide, self.telemetry, settings)
        self.ownership = ShardOwnership(a.shards)
        self.handover = Handover(
            self.ownership.term,
            lambda ns: self.caches.listed_at(API_VERSION, "Canary", ns),
            lambda ns, name: self.live.get(API_VERSION, "Canary", ns, name),
            lambda ns, name: self.caches.get(API_VERSION, "Canary", ns, name),
        )
        self.scheduler = Scheduler(
            self._tick,
            a.concurrency,
            on_tick=self._ticked,
            per_namespace=a.namespace_concurrency,
            max_workers=a.max_concurrency,
        )
        index = TriggerIndex(self._trigger, self._forget, toolkit.tracked_config_refs)
        # Whole namespaces are watched, not label-selected: targets, their Services, HPAs and
        # ConfigMaps are the user's and carry no label of ours, and a second, selected informer
        # for the generated objects of each kind would only add one. The caches hold lean copies
        # instead (cache.make_lean). Kinds the agent never writes back from a cached copy also lose
        # kubectl's last-applied annotation.
        self.caches.add(API_VERSION, "Canary", index.on_canary, drop_last_applied=True)
        self.caches.add(API_VERSION, "MetricTemplate", drop_last_applied=True)
        if not opts.namespaces:
            # Cluster-scoped: only an agent granted every namespace may read them.
            self.caches.add(
                API_VERSION, CLUSTER_TEMPLATE_KIND, cluster_scoped=True, drop_last_applied=True
            )
        self.caches.add("apps/v1", "Deployment", index.on_deployment)
        self.caches.add("v1", "Service")
        self.caches.add("v1", "ConfigMap", index.on_config, drop_last_applied=True)
        # No Secret cache: listing every Secret of the cluster cost memory in proportion to
        # them and a cluster-wide read grant. A tracked Secret is read by name on each tick.
        self.caches.add("autoscaling/v2", "HorizontalPodAutoscaler")
        for api_version, kind in ROUTING_KINDS:
            self.caches.add(api_version, kind)
        self.stop = threading.Event()
        self.exit_code = 0
        self.leading = threading.Event()
        self.elector: LeaderElector | None = None
        self.shard_electors: list[LeaderElector] = []
        self._acting = False  # caches synced and the scheduler started (sharded mode)
        self._acting_lock = threading.Lock()
        # Ticks running now: a shard is let go only once none of its ticks runs any more.
        self._in_flight: set[str] = set()
        self._in_flight_changed = threading.Condition()
        if a.shards > 1:
            self.shard_electors = shard_electors(
                self.live,
                a.namespace,
                opts.identity,
                opts.timing,
                self.ownership,
                self._shard_changed,
            )
        elif a.leader_elect:
            self.elector = LeaderElector(
                self.live, a.namespace, LEASE_NAME, opts.identity, opts.timing, self._leadership
            )
        self.http = AgentHTTPServer(opts.listen, self.telemetry.render, self._healthy, self._ready)

    def _shard_changed(self, shard: int, holding: bool) -> None:
        """Take up or drop one shard's canaries; the other shards go on undisturbed."""
        self.ownership.set(shard, holding)
        self.telemetry.shard(shard, holding)
        self.telemetry.leader(self.ownership.count() > 0)
        log.info(
            "%s shard %d; now %s",
            "took" if holding else "dropped",
            shard,
            self.ownership.describe(),
            extra={"shard": shard, "shards": self.ownership.held()},
        )
        if holding:
            with self._acting_lock:
                acting = self._acting
            if acting:  # otherwise _start_acting triggers them once the caches are synced
                for key in map(_key, self.caches.items(API_VERSION, "Canary")):
                    if shard_of(key, self.ownership.shards) == shard:
                        self.scheduler.trigger(key)
            return
        # No new tick of this shard starts (_tick asks again) and its canaries leave our
        # metrics. One already running finishes first: we return (and the elector hands the
        # Lease over) only then, or when the time left on the Lease runs short.
        scheduled = self.scheduler.keys()
        for key in scheduled:
            if shard_of(key, self.ownership.shards) == shard:
                self._forget(key)
        timing = self.opts.timing
        with self._in_flight_changed:
            done = self._in_flight_changed.wait_for(
                lambda: all(shard_of(k, self.ownership.shards) != shard for k in self._in_flight),
                timeout=timing.lease_duration - timing.renew_deadline,
            )
        if not done:
            log.warning("a tick of shard %d is still running as the shard goes", shard)

    def _trigger(self, key: str) -> None:
        if self.ownership.owns(key):
            self.scheduler.trigger(key)

    def _tick(self, key: str) -> float | None:
        with self._in_flight_changed:  # ownership is dropped before this lock is taken
            owned = self.ownership.owns(key)
            fresh = owned and self._lease_fresh(key)
            if fresh:
                self._in_flight.add(key)
        if owned and not fresh:
            # The Lease ran out of time unnoticed yet (e.g. this process was paused): act on
            # nothing; the elector gives the shard up or renews, and this key looks again.
            return STALE_LEASE_RETRY_SECONDS
        if not owned:
            self._let_go(key)
            return None  # its shard went to another replica
        try:
            if not self._caught_up(key):
                return CATCH_UP_RETRY_SECONDS
            return self.ticker(key)
        finally:
            with self._in_flight_changed:
                self._in_flight.discard(key)
                self._in_flight_changed.notify_all()
            if not self.ownership.owns(key):
                # Its shard was dropped while this tick ran: the tick's metrics must not
                # outlive it (the new holder reports the canary now).
                self._let_go(key)

    def _caught_up(self, key: str) -> bool:
        try:
            return self.handover.caught_up(key)
        except ApiError as exc:
            log.warning("cannot read the canary: %s", exc, extra={"canary": key})
            return False

    def _lease_fresh(self, key: str) -> bool:
        """The Lease behind `key` (its shard's, or the single leader's) renewed in time."""
        if self.shard_electors:
            return self.shard_electors[shard_of(key, self.ownership.shards)].holds_now()
        return self.elector is None or self.elector.holds_now()

    def _api_hosts(self) -> tuple[str, ...]:
        """The API server's names and addresses: never a tenant's egress target."""
        hosts = {self.live.api_host}
        if os.environ.get("KUBERNETES_SERVICE_HOST"):
            # In a Pod: the names the cluster's DNS gives the API server, too.
            hosts.add(os.environ["KUBERNETES_SERVICE_HOST"])
            hosts |= {"kubernetes.default", "kubernetes.default.svc"}
            hosts.add("kubernetes.default.svc.cluster.local")
        for host in list(hosts):
            try:
                hosts.update(str(info[4][0]) for info in socket.getaddrinfo(host, None))
            except OSError:
                continue
        return tuple(sorted(h for h in hosts if h))

    def _ticked(self, record: TickRecord) -> None:
        self.telemetry.tick(record.key, record.duration, record.lag)

    def _forget(self, key: str) -> None:
        self.scheduler.forget(key)
        self._let_go(key)

    def _let_go(self, key: str) -> None:
        """Its metrics and what is kept for it go: another replica reports it now."""
        self.ticker.forget(key)
        self.handover.forget(key)

    def _healthy(self) -> tuple[bool, str]:
        if self.stop.is_set():
            return False, "stopping"
        return True, "ok"

    def _ready(self) -> tuple[bool, str]:
        unsynced = [i.name for i in self.caches.informers() if not i.synced.is_set()]
        if unsynced:
            return False, "caches not synced: " + ", ".join(unsynced)
        if self.shard_electors:
            return True, "ready (" + self.ownership.describe() + ")"
        return True, "leader" if self.leading.is_set() else "ready (follower)"

    def _leadership(self, leading: bool) -> None:
        self.telemetry.leader(leading)
        if leading:
            self.ownership.set(0, True)  # a new term: see agent/handover.py
            self.leading.set()
            # Not on the elector's thread: waiting for caches must not delay lease renewals.
            threading.Thread(target=self._start_acting, name="start", daemon=True).start()
        elif self.leading.is_set() and not self.stop.is_set():
            # Another replica may act now: stop at once and let the Pod restart us as a follower.
            log.error("leadership lost; exiting")
            self.exit_code = 1
            self.stop.set()

    def _start_acting(self) -> None:
        # Never on a partial view: a target missing from an unsynced cache once made the agent
        # drop a finalizer without reverting. Until every cache holds its first list (a 403 on
        # one never does), no canary is ticked, /readyz says which, and the log says why.
        while not self.caches.wait_synced(self.opts.args.sync_timeout):
            if self.stop.is_set() or not (self.shard_electors or self.leading.is_set()):
                return
            unsynced = [i.name for i in self.caches.informers() if not i.synced.is_set()]
            log.error(
                "caches not synced after %.0fs: %s; not acting on any canary until they are "
                "(a 403 in the watch lines above is missing RBAC)",
                self.opts.args.sync_timeout,
                ", ".join(unsynced),
                extra={"unsynced": unsynced},
            )
        with self._acting_lock:
            self._acting = True
        for obj in self.caches.items(API_VERSION, "Canary"):
            self._trigger(_key(obj))
        self.scheduler.start()
        log.info("acting on canaries", extra={"canaries": len(self.scheduler.keys())})

    def run(self) -> int:
        self.http.start()
        host, port = str(self.http.server_address[0]), self.http.port
        log.info(
            "listening on %s:%s", host, port, extra={"address": f"{host}:{port}", "port": port}
        )
        ns = ", ".join(self.opts.namespaces) or "all namespaces"
        log.info("watching %s", ns, extra={"identity": self.opts.identity})
        if self.elector is None and not self.shard_electors:
            # No election: nothing is taken over, so the term begins before the first lists.
            self.ownership.set(0, True)
        self.caches.start()
        if self.shard_electors:
            for elector in self.shard_electors:
                elector.start()
            # Shards come and go; the caches are synced and the workers started once.
            threading.Thread(target=self._start_acting, name="start", daemon=True).start()
        elif self.elector is not None:
            self.elector.start()
        else:
            self._leadership(True)
        self.stop.wait()
        self.shutdown()
        return self.exit_code

    def shutdown(self) -> None:
        log.info("shutting down")
        # A tick in flight gets 10 s to finish; one stuck on a hung call longer than that is
        # abandoned (its thread dies with the process): every write is guarded by
        # resourceVersion, and the next leader redoes the tick from what the API server holds.
        self.scheduler.stop(timeout=10.0)
        for elector in [e for e in (self.elector,) if e is not None] + self.shard_electors:
            elector.stop()
            if self.exit_code == 0:
                elector.release()
        self.caches.stop()
        self.http.stop()
        log.info("stopped", extra={"exitCode": self.exit_code})


def _key(obj: dict[str, object]) -> str:
    meta = obj.get("metadata")
    meta = meta if isinstance(meta, dict) else {}
    return f"{meta.get('namespace')}/{meta.get('name')}"


def main(argv: list[str] | None = None) -> int:
    opts = parse_options(argv)
    logs.setup(opts.args.log_level)
    try:
        agent = Agent(opts)
    except Exception as exc:  # noqa: BLE001 - one clear line, not a traceback
        log.error("cannot start: %s", exc)
        return 2

    def on_signal(signum: int, _frame: object) -> None:
        log.info("received %s", signal.Signals(signum).name)
        agent.stop.set()

    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGINT, on_signal)
    return agent.run()


if __name__ == "__main__":
    sys.exit(main())
