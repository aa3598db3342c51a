"""Simulated mesh clients: batches of requests routed like a proxy would, answered by pods.

Every tick, each configured app receives a Poisson-distributed number of requests (its rate in
simulated time times the simulated seconds elapsed). Requests are split into header classes,
routed by the app's VirtualService / HTTPRoute / endpoints, spread uniformly over the ready
pods of each destination Service, and answered by the pod's version profile. Only counts are
sampled, never single requests, so high rates stay cheap.
"""

from __future__ import annotations

import random
from collections.abc import Callable
from dataclasses import dataclass

from kubectl_canary.sandbox.simulation.cache import ObjectCache
from kubectl_canary.sandbox.simulation.config import AppTraffic, Profile, TrafficConfig
from kubectl_canary.sandbox.simulation.metrics import DURATION_BUCKETS_MS, MetricsRegistry
from kubectl_canary.sandbox.simulation.objects import (
    DEPLOYMENT,
    ENDPOINTS,
    HTTP_ROUTE,
    POD,
    REPLICASET,
    VIRTUAL_SERVICE,
    Obj,
    is_pod_ready,
    labels_of,
    name_of,
)
from kubectl_canary.sandbox.simulation.routing import Destination, Request, resolve_route
from kubectl_canary.sandbox.simulation.sampling import (
    LogNormalLatency,
    binomial,
    multinomial,
    poisson,
)

FORCE_CODE_HEADER = "x-mirror-code"
# A proxy with no healthy upstream answers 503 itself, in about a millisecond.
_NO_UPSTREAM_LATENCY = LogNormalLatency(1.0, 5.0)


@dataclass(frozen=True)
class Backend:
    """What the metrics say about the pods that answer: workload, version, behaviour."""

    workload: str
    namespace: str
    app: str
    version: str
    profile: Profile


class TrafficGenerator:
    def __init__(
        self,
        cache: ObjectCache,
        registry: MetricsRegistry,
        rng: random.Random,
        get_config: Callable[[], TrafficConfig],
    ) -> None:
        self.cache = cache
        self.registry = registry
        self.rng = rng
        self.get_config = get_config
        self._latencies: dict[Profile, LogNormalLatency] = {}

    def tick(self, simulated_seconds: float) -> None:
        config = self.get_config()
        if not config.apps:
            return
        virtual_services = self.cache.all(VIRTUAL_SERVICE)
        http_routes = self.cache.all(HTTP_ROUTE)
        for app in config.apps:
            total = poisson(self.rng, app.rps * simulated_seconds)
            if total:
                self._send(app, total, config, virtual_services, http_routes)

    def _send(
        self,
        app: AppTraffic,
        total: int,
        config: TrafficConfig,
        virtual_services: list[Obj],
        http_routes: list[Obj],
    ) -> None:
        target = Destination(app.namespace, app.service)
        classes = app.classes_with_remainder()
        for request_class, count in zip(
            classes, multinomial(self.rng, total, [c.share for c in classes]), strict=True
        ):
            if not count:
                continue
            request = Request(headers=request_class.headers, path=app.path)
            route = resolve_route(target, request, virtual_services, http_routes)
            forced = _forced_code(request_class.headers)
            weights = [weight for _, weight in route.destinations]
            for (destination, _), share in zip(
                route.destinations, multinomial(self.rng, count, weights), strict=True
            ):
                self._serve(app, destination, share, forced, config)
            if route.mirror is not None:
                mirrored = binomial(self.rng, count, route.mirror_percent / 100)
                self._serve(app, route.mirror, mirrored, forced, config)

    def _serve(
        self,
        app: AppTraffic,
        destination: Destination,
        count: int,
        forced: int | None,
        config: TrafficConfig,
    ) -> None:
        if count <= 0:
            return
        backends = self._backends(destination, config)
        if not backends:
            self._record(app, destination, None, "503", "UH", count, _NO_UPSTREAM_LATENCY)
            return
        groups: dict[Backend, int] = {}
        for backend in backends:
            groups[backend] = groups.get(backend, 0) + 1
        kinds = list(groups)
        for backend, served in zip(
            kinds, multinomial(self.rng, count, [groups[b] for b in kinds]), strict=True
        ):
            if not served:
                continue
            latency = self._latency(backend.profile)
            if forced is not None:
                self._record(app, destination, backend, str(forced), "-", served, latency)
                continue
            errors = binomial(self.rng, served, backend.profile.error_rate)
            self._record(app, destination, backend, "500", "-", errors, latency)
            self._record(app, destination, backend, "200", "-", served - errors, latency)

    def _latency(self, profile: Profile) -> LogNormalLatency:
        latency = self._latencies.get(profile)
        if latency is None:
            latency = self._latencies[profile] = LogNormalLatency(profile.p50_ms, profile.p99_ms)
        return latency

    def _backends(self, destination: Destination, config: TrafficConfig) -> list[Backend]:
        """One entry per ready endpoint of the destination Service."""
        endpoints = self.cache.get(ENDPOINTS, destination.namespace, destination.service)
        if endpoints is None:
            return []
        backends = []
        for subset in endpoints.get("subsets") or []:
            for address in subset.get("addresses") or []:
                ref = address.get("targetRef") or {}
                pod = self.cache.get(POD, str(ref.get("namespace")), str(ref.get("name")))
                if pod is not None and is_pod_ready(pod):
                    backends.append(self._backend(pod, config))
        return backends

    def _backend(self, pod: Obj, config: TrafficConfig) -> Backend:
        namespace = str(pod["metadata"].get("namespace", ""))
        workload = name_of(pod)
        replica_set = self.cache.owner_of(pod, REPLICASET)
        if replica_set is not None:
            deployment = self.cache.owner_of(replica_set, DEPLOYMENT)
            workload = name_of(deployment if deployment is not None else replica_set)
        labels = labels_of(pod)
        containers = (pod.get("spec") or {}).get("containers") or [{}]
        return Backend(
            workload=workload,
            namespace=namespace,
            app=labels.get("app", labels.get("app.kubernetes.io/name", "unknown")),
            version=labels.get("version", labels.get("app.kubernetes.io/version", "unknown")),
            profile=config.profile_for_image(str(containers[0].get("image", ""))),
        )

    def _record(
        self,
        app: AppTraffic,
        destination: Destination,
        backend: Backend | None,
        code: str,
        flags: str,
        count: int,
        latency: LogNormalLatency,
    ) -> None:
        if count <= 0:
            return
        per_bucket, total_ms = latency.sample_histogram(self.rng, count, DURATION_BUCKETS_MS)
        if backend is None:
            # Only the client's proxy can report a request no pod received.
            reporter, workload, workload_ns, dest_app, version = (
                "source", "unknown", "unknown", "unknown", "unknown"
            )  # fmt: skip
        else:
            reporter, workload, workload_ns, dest_app, version = (
                "destination", backend.workload, backend.namespace, backend.app, backend.version
            )  # fmt: skip
        key = (
            reporter,
            app.source_workload,
            app.namespace,
            app.source_workload,
            workload,
            workload_ns,
            dest_app,
            version,
            destination.host,
            destination.service,
            destination.namespace,
            "http",
            code,
            flags,
            "mutual_tls",
        )
        self.registry.record(key, count, total_ms, per_bucket)


def _forced_code(headers: dict[str, str]) -> int | None:
    value = headers.get(FORCE_CODE_HEADER)
    if value is None:
        return None
    try:
        return int(value)
    except ValueError:
        return None
