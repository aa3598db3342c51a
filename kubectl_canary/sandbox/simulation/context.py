"""What every simulated controller shares: the store, the cache, the queue, clocks and RNG."""

from __future__ import annotations

import itertools
import logging
import random
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from kubectl_canary.sandbox.simulation.cache import ObjectCache
from kubectl_canary.sandbox.simulation.config import TrafficConfig
from kubectl_canary.sandbox.simulation.objects import Obj, kind_key, name_of, namespace_of
from kubectl_canary.sandbox.simulation.workqueue import Item, WorkQueue
from kubectl_canary.sandbox.store import Conflict, NotFound, StoreError

log = logging.getLogger(__name__)

_NAME_CHARS = "bcdfghjklmnpqrstvwxz2456789"  # the alphabet Kubernetes uses for generated names


@dataclass
class Context:
    store: Any  # kubectl_canary.sandbox.store.Store (duck-typed: create/get/update/...)
    cache: ObjectCache
    queue: WorkQueue
    speed: float
    rng: random.Random  # only used from the controller worker thread
    get_config: Callable[[], TrafficConfig]
    # Monotonic time of each Deployment's last progress, for progressDeadlineSeconds; kept in
    # memory because condition timestamps only have one-second resolution.
    progress_marks: dict[tuple[str, str], float] = field(default_factory=dict)
    # Pod lifecycle bookkeeping of the simulated kubelet, by pod uid (monotonic seconds).
    pod_started: dict[str, float] = field(default_factory=dict)
    pod_last_crash: dict[str, float] = field(default_factory=dict)
    _ip_counter: itertools.count[int] = field(default_factory=lambda: itertools.count(2))

    def next_pod_ip(self) -> str:
        """Unique fake pod addresses in 10.244.0.0/16 (data only: nothing listens there)."""
        number = next(self._ip_counter) % 65000 + 2
        return f"10.244.{number // 254}.{number % 254 + 1}"

    def real_seconds(self, simulated_seconds: float) -> float:
        return simulated_seconds / self.speed

    def random_suffix(self, length: int = 5) -> str:
        return "".join(self.rng.choice(_NAME_CHARS) for _ in range(length))

    # Writes go through to the cache at once (see cache.py for why).

    def create(self, obj: Obj) -> Obj:
        created: Obj = self.store.create(obj)
        self.cache.apply("ADDED", created)
        return created

    def update(self, obj: Obj) -> Obj:
        updated: Obj = self.store.update(obj)
        self.cache.apply("MODIFIED", updated)
        return updated

    def update_status(self, obj: Obj) -> Obj:
        updated: Obj = self.store.update_status(obj)
        self.cache.apply("MODIFIED", updated)
        return updated

    def delete(self, obj: Obj) -> None:
        group, kind = kind_key(obj)
        self.store.delete(obj["apiVersion"], kind, namespace_of(obj), name_of(obj))
        self.cache.forget((group, kind), namespace_of(obj), name_of(obj))

    def attempt(self, action: Callable[[Obj], Any], obj: Obj, retry: Item) -> Any:
        """Run a write; on a conflict or a vanished object, sync `retry` again shortly (the
        cache is then fresher) instead of failing: the level-triggered controller way."""
        try:
            return action(obj)
        except (Conflict, NotFound):
            self.queue.add_after(retry, 0.05)
        except StoreError as error:
            # Refused for good (e.g. the namespace is terminating): the next event for this
            # key, or the periodic resync, tries again.
            log.warning("simulation: %s %s refused: %s", obj.get("kind"), name_of(obj), error)
        return None
