"""Wiring: store events -> cache -> work queue -> controllers, plus the traffic clock.

Two threads: the controller worker (all controllers share one queue and one thread, so they
never race each other) and the traffic ticker. Store callbacks only update the cache and mark
keys dirty; they never write, so they are cheap on the writer's thread.
"""

from __future__ import annotations

import logging
import random
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, fields
from typing import Any

from kubectl_canary.sandbox.simulation import deployments, endpoints, pods, replicasets
from kubectl_canary.sandbox.simulation.cache import ObjectCache
from kubectl_canary.sandbox.simulation.config import (
    CONFIG_NAME,
    CONFIG_NAMESPACE,
    DEFAULT_BAD_IMAGE_PATTERN,
    DEFAULT_READY_DELAY_SECONDS,
    ConfigError,
    TrafficConfig,
    parse_config,
)
from kubectl_canary.sandbox.simulation.context import Context
from kubectl_canary.sandbox.simulation.metrics import MetricsRegistry
from kubectl_canary.sandbox.simulation.objects import (
    API_VERSIONS,
    CONFIG_MAP,
    DEPLOYMENT,
    ENDPOINT_SLICE,
    ENDPOINTS,
    POD,
    REPLICASET,
    SERVICE,
    Obj,
    controller_ref,
    kind_key,
    labels_of,
    name_of,
    namespace_of,
    uid_of,
)
from kubectl_canary.sandbox.simulation.promql import answer_query
from kubectl_canary.sandbox.simulation.traffic import TrafficGenerator
from kubectl_canary.sandbox.simulation.workqueue import Item, WorkQueue
from kubectl_canary.sandbox.store import StoreError

log = logging.getLogger(__name__)


# Objects per `resync_seconds` of the full-resync period (see Simulation._resync_period).
RESYNC_OBJECTS = 2_000


@dataclass(frozen=True)
class SimulationOptions:
    """How the simulated cluster behaves. Durations are simulated seconds unless noted."""

    speed: float = 1.0  # simulated seconds per real second
    seed: int = 0
    ready_delay_seconds: float = DEFAULT_READY_DELAY_SECONDS
    bad_image_pattern: str = DEFAULT_BAD_IMAGE_PATTERN
    traffic_tick_seconds: float = 0.25  # real seconds between traffic batches
    resync_seconds: float = 30.0  # real seconds between full resyncs, per RESYNC_OBJECTS
    history_seconds: float = 900.0  # real seconds of counter history for answer_query

    @classmethod
    def coerce(cls, options: Any) -> SimulationOptions:
        """Accept our own options or any object/mapping with some of the same fields."""
        if options is None:
            return cls()
        if isinstance(options, cls):
            return options
        values = {}
        for item in fields(cls):
            value = (
                options.get(item.name)
                if isinstance(options, dict)
                else getattr(options, item.name, None)
            )
            if value is not None:
                values[item.name] = value
        return cls(**values)

    def __post_init__(self) -> None:
        if self.speed <= 0:
            raise ValueError(f"speed must be > 0, got {self.speed}")


class Simulation:
    """The running simulation; `start()` returns one. Thread-safe."""

    def __init__(self, store: Any, options: SimulationOptions) -> None:
        self.options = options
        self._store = store
        self._base_config = TrafficConfig(
            bad_image_pattern=options.bad_image_pattern,
            ready_delay_seconds=options.ready_delay_seconds,
        )
        self._config = self._base_config
        self.cache = ObjectCache()
        self.queue = WorkQueue()
        self.registry = MetricsRegistry(history_seconds=options.history_seconds)
        self.ctx = Context(
            store=store,
            cache=self.cache,
            queue=self.queue,
            speed=float(options.speed),
            rng=random.Random(options.seed),
            get_config=lambda: self._config,
        )
        self.traffic = TrafficGenerator(
            self.cache, self.registry, random.Random(options.seed + 1), lambda: self._config
        )
        self._stopping = threading.Event()
        self._unsubscribe: Callable[[], None] | None = None
        self._threads: list[threading.Thread] = []

    # ---- lifecycle -------------------------------------------------------------------------

    def start(self) -> None:
        # Subscribe before listing so nothing falls between the two; the cache drops stale
        # duplicates by resourceVersion.
        self._unsubscribe = self._store.subscribe(self._on_event)
        for kind, versions in API_VERSIONS.items():
            for api_version in versions:
                try:
                    items = self._store.list(api_version, kind[1])
                except StoreError:
                    continue  # CRD not installed (yet): its objects will arrive as events
                for obj in items:
                    self._on_event("ADDED", obj)
                break
        self._resync()
        for target, name in ((self._work, "controllers"), (self._tick, "traffic")):
            thread = threading.Thread(target=target, name=f"sandbox-sim-{name}", daemon=True)
            thread.start()
            self._threads.append(thread)

    def stop(self) -> None:
        if self._unsubscribe is not None:
            self._unsubscribe()
            self._unsubscribe = None
        self._stopping.set()
        self.queue.stop()
        for thread in self._threads:
            thread.join(timeout=10)
        self._threads.clear()

    def render_metrics(self) -> str:
        return self.registry.render()

    def answer_query(self, query: str) -> dict[str, Any]:
        return answer_query(self.registry, query)

    @property
    def config(self) -> TrafficConfig:
        return self._config

    # ---- events ----------------------------------------------------------------------------

    def _on_event(self, event_type: str, obj: Obj) -> None:
        change = self.cache.apply(event_type, obj)
        if change is None:
            return
        old, new = change
        current = new if new is not None else old
        assert current is not None
        kind, namespace, name = kind_key(current), namespace_of(current), name_of(current)
        add = self.queue.add
        if kind == DEPLOYMENT:
            add(("deployment", namespace, name))
        elif kind == REPLICASET:
            add(("replicaset", namespace, name))
            self._add_owner(current, "Deployment", "deployment")
        elif kind == POD:
            add(("pod", namespace, name))
            self._add_owner(current, "ReplicaSet", "replicaset")
            label_sets = [labels_of(o) for o in (old, new) if o is not None]
            for service in endpoints.services_selecting(self.ctx, namespace, *label_sets):
                add(("service", namespace, service))
            if new is None:
                pods.forget_pod(self.ctx, uid_of(current))
        elif kind in (SERVICE, ENDPOINTS):
            add(("service", namespace, name))
        elif kind == ENDPOINT_SLICE:
            ref = controller_ref(current)
            if ref is not None and ref.get("kind") == "Service":
                add(("service", namespace, str(ref.get("name"))))
        elif kind == CONFIG_MAP and (namespace, name) == (CONFIG_NAMESPACE, CONFIG_NAME):
            add(("config", namespace, name))

    def _add_owner(self, obj: Obj, owner_kind: str, what: str) -> None:
        ref = controller_ref(obj)
        if ref is not None and ref.get("kind") == owner_kind:
            self.queue.add((what, namespace_of(obj), str(ref.get("name"))))

    # ---- the controller worker -------------------------------------------------------------

    def _resync(self) -> None:
        for kind, what in (
            (DEPLOYMENT, "deployment"),
            (REPLICASET, "replicaset"),
            (POD, "pod"),
            (SERVICE, "service"),
        ):
            for obj in self.cache.all(kind):
                self.queue.add((what, namespace_of(obj), name_of(obj)))
        self.queue.add(("config", CONFIG_NAMESPACE, CONFIG_NAME))

    def _resync_period(self) -> float:
        """A full resync queues every object: at 10,000 canaries (~90,000 objects) one every
        30 s was most of the simulation's time, and pods took minutes to start. So the period
        grows with the objects, keeping a resync's share of the time as at 2,000 of them."""
        count = sum(self.cache.count(kind) for kind in (DEPLOYMENT, REPLICASET, POD, SERVICE))
        return self.options.resync_seconds * max(1.0, count / RESYNC_OBJECTS)

    def _work(self) -> None:
        next_resync = time.monotonic() + self._resync_period()
        while True:
            items = self.queue.take(max_wait=max(0.0, next_resync - time.monotonic()))
            if items is None:
                return
            if time.monotonic() >= next_resync:
                next_resync = time.monotonic() + self._resync_period()
                self._resync()
            for item in items:
                if self._stopping.is_set():
                    return
                try:
                    self._sync(item)
                except Exception:
                    # A bug in one sync must not stop the cluster: log it and retry later.
                    log.exception("simulation: sync of %s failed", item)
                    self.queue.add_after(item, 1.0)

    def _sync(self, item: Item) -> None:
        what, namespace, name = item
        if what == "deployment":
            deployments.sync_deployment(self.ctx, namespace, name)
        elif what == "replicaset":
            replicasets.sync_replica_set(self.ctx, namespace, name)
        elif what == "pod":
            pods.sync_pod(self.ctx, namespace, name)
        elif what == "service":
            endpoints.sync_service(self.ctx, namespace, name)
        elif what == "config":
            self._reload_config()

    def _reload_config(self) -> None:
        config_map = self.cache.get(CONFIG_MAP, CONFIG_NAMESPACE, CONFIG_NAME)
        data = (config_map or {}).get("data")
        try:
            config = parse_config(data, self._base_config)
        except ConfigError as error:
            log.warning("simulation: ignoring %s/%s: %s", CONFIG_NAMESPACE, CONFIG_NAME, error)
            return
        if config == self._config:
            return
        self._config = config
        # Readiness delay or bad-image rule may have changed: let the kubelet look again.
        for pod in self.cache.all(POD):
            self.queue.add(("pod", namespace_of(pod), name_of(pod)))

    # ---- traffic ---------------------------------------------------------------------------

    def _tick(self) -> None:
        last = time.monotonic()
        while not self._stopping.wait(self.options.traffic_tick_seconds):
            now = time.monotonic()
            try:
                self.traffic.tick((now - last) * self.options.speed)
                self.registry.snapshot()
            except Exception:
                log.exception("simulation: traffic tick failed")
            last = now
