"""Leader election over a coordination.k8s.io/v1 Lease, so two replicas never act at once.

The holder renews the Lease every `retry_period`; every write is a PUT guarded by the Lease's
resourceVersion, so two candidates racing for it cannot both win. A candidate judges expiry by
its own monotonic clock, from the moment it last saw the record change (like client-go), so
clock skew between nodes does not matter. A leader that cannot renew for `renew_deadline` stops
acting (it steps down before its lease can expire, leaving a safety margin); on shutdown it
releases the Lease so a follower takes over at once instead of after a full lease duration.
"""

from __future__ import annotations

import logging
import math
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Protocol

from kubectl_canary.resources import ApiError, ConflictError, Obj, ResourceClient

log = logging.getLogger("agent.leader")

LEASE_API = "coordination.k8s.io/v1"
# On a Lease held by another replica: the identity of a replica asking to be handed it.
REQUEST_ANNOTATION = "kubectl-canary.dev/requested-by"


class Sharing(Protocol):
    """How a Lease is shared among replicas that each hold several (agent/shards.py)."""

    def may_acquire(self, free_for: float) -> bool:
        """Take the Lease, nobody's (absent, released or expired) for `free_for` seconds?"""
        ...

    def ask(self) -> bool:
        """Ask the replica holding the Lease to hand it over?"""
        ...

    def give(self, requester: str) -> bool:
        """Hand the Lease we hold over to `requester`, who asked for it?"""
        ...


class Exclusive:
    """One leader: take a free Lease at once, never ask for it, never give it away."""

    def may_acquire(self, free_for: float) -> bool:
        return True

    def ask(self) -> bool:
        return False

    def give(self, requester: str) -> bool:
        return False


@dataclass(frozen=True)
class LeaseTiming:
    lease_duration: float = 15.0
    renew_deadline: float = 10.0
    retry_period: float = 2.0

    @classmethod
    def for_duration(cls, lease_duration: float) -> LeaseTiming:
        """client-go's ratios (15 s / 10 s / 2 s), scaled to another lease duration."""
        return cls(lease_duration, lease_duration * 2 / 3, lease_duration / 7.5)

    def validate(self) -> None:
        if not (self.lease_duration > self.renew_deadline > self.retry_period > 0):
            raise ValueError(
                "leader election needs lease duration > renew deadline > retry period > 0, got "
                f"{self.lease_duration} / {self.renew_deadline} / {self.retry_period}"
            )
        if self.lease_duration < 1:
            raise ValueError("--lease-duration must be at least 1 second")


def _requester(lease: Obj) -> str:
    annotations = (lease.get("metadata") or {}).get("annotations") or {}
    return str(annotations.get(REQUEST_ANNOTATION) or "")


def micro_time(ts: float) -> str:
    return datetime.fromtimestamp(ts, UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


class LeaderElector:
    def __init__(
        self,
        client: ResourceClient,
        namespace: str,
        name: str,
        identity: str,
        timing: LeaseTiming,
        on_change: Callable[[bool], None],
        wall_clock: Callable[[], float] = time.time,
        clock: Callable[[], float] = time.monotonic,
        sharing: Sharing | None = None,
    ) -> None:
        timing.validate()
        self._client = client
        self.namespace = namespace
        self.name = name
        self.identity = identity
        self.timing = timing
        self._on_change = on_change
        self._wall = wall_clock
        self._clock = clock
        self._sharing = sharing or Exclusive()
        self._free_since: float | None = None  # when we first saw the Lease free to take
        self._gave_at: float | None = None  # when we last handed the Lease over
        self._observed: tuple[str, str] | None = None  # (holder, renewTime) last seen
        self._observed_at = 0.0
        self._last_renew = 0.0
        self.is_leader = False
        self.holder = ""
        self._stop = threading.Event()
        self._lock = threading.Lock()  # is_leader and _last_renew: loop and watchdog
        self._threads: list[threading.Thread] = []

    # ----- one attempt -----

    def try_acquire_or_renew(self) -> bool:
        """One round: take or renew the Lease if we may. True when we hold it afterwards."""
        now = self._clock()
        lease = self._client.get(LEASE_API, "Lease", self.namespace, self.name)
        stamp = micro_time(self._wall())
        if lease is None:
            if not self._may_take(now):
                return False
            created = self._client.create(self._lease_object(stamp, stamp, 0))
            self._see(created, now)
            return True
        spec = lease.get("spec") or {}
        holder = spec.get("holderIdentity") or ""
        record = (holder, str(spec.get("renewTime") or ""))
        if record != self._observed:
            self._observed, self._observed_at = record, now
        self.holder = holder
        duration = float(spec.get("leaseDurationSeconds") or self.timing.lease_duration)
        expired = now - self._observed_at >= duration
        if holder and holder != self.identity and not expired:
            self._free_since = None
            if self._sharing.ask() and _requester(lease) != self.identity:
                self._ask_for(lease)
            return False
        requester = _requester(lease)
        if holder == self.identity and requester not in ("", self.identity):
            if self._sharing.give(requester):
                self._hand_over(lease, requester, stamp)
                return False
            # Declined (the asker saw an older split): cleared with this renewal, so a stale
            # request cannot hand the Lease to a replica long gone.
            lease["metadata"]["annotations"].pop(REQUEST_ANNOTATION, None)
        if holder != self.identity and not self._may_take(now):
            return False
        transitions = int(spec.get("leaseTransitions") or 0)
        acquire = str(spec.get("acquireTime") or stamp)
        if holder != self.identity:
            transitions, acquire = transitions + 1, stamp
        lease["spec"] = self._lease_object(acquire, stamp, transitions)["spec"]
        updated = self._client.replace(lease)
        self._see(updated, now)
        return True

    def _may_take(self, now: float) -> bool:
        if self._gave_at is not None and now - self._gave_at < self.timing.lease_duration:
            return False  # we just handed it over: leave it to the replica that asked
        if self._free_since is None:
            self._free_since = now
        return self._sharing.may_acquire(now - self._free_since)

    def _ask_for(self, lease: Obj) -> None:
        """Write our identity on the holder's Lease; its holder judges on its next renewal. The
        holder and renewTime stay as they are, so nobody's view of expiry changes."""
        lease["metadata"].setdefault("annotations", {})[REQUEST_ANNOTATION] = self.identity
        try:
            self._client.replace(lease)
            log.info("asked for the lease", extra={"lease": self.name, "holder": self.holder})
        except ConflictError:
            pass  # renewed meanwhile: ask again next round

    def _hand_over(self, lease: Obj, requester: str, stamp: str) -> None:
        """Stop acting first (on_change returns once our work under this Lease is done), then
        release the Lease with the request cleared, for the requester to take at once."""
        log.info("handing the lease over", extra={"lease": self.name, "to": requester})
        self._set(False)
        self._gave_at = self._clock()
        lease["metadata"].get("annotations", {}).pop(REQUEST_ANNOTATION, None)
        spec = lease.setdefault("spec", {})
        spec.update(holderIdentity="", leaseDurationSeconds=1, renewTime=stamp)
        self._client.replace(lease)

    def _see(self, lease: Obj, now: float) -> None:
        self._gave_at = None
        self._free_since = None
        spec = lease.get("spec") or {}
        self._observed = (spec.get("holderIdentity") or "", str(spec.get("renewTime") or ""))
        self._observed_at = now
        self.holder = self.identity

    def _lease_object(self, acquire: str, renew: str, transitions: int) -> Obj:
        return {
            "apiVersion": LEASE_API,
            "kind": "Lease",
            "metadata": {"name": self.name, "namespace": self.namespace},
            "spec": {
                "holderIdentity": self.identity,
                "leaseDurationSeconds": math.ceil(self.timing.lease_duration),
                "acquireTime": acquire,
                "renewTime": renew,
                "leaseTransitions": transitions,
            },
        }

    def release(self) -> None:
        """Give the Lease up (holder cleared) so a follower need not wait for it to expire."""
        if not self.is_leader:
            return
        try:
            lease = self._client.get(LEASE_API, "Lease", self.namespace, self.name)
            spec = (lease or {}).get("spec") or {}
            if lease is not None and spec.get("holderIdentity") == self.identity:
                spec["holderIdentity"] = ""
                spec["leaseDurationSeconds"] = 1
                spec["renewTime"] = micro_time(self._wall())
                self._client.replace(lease)
                log.info("released leadership", extra={"lease": self.name})
        except ApiError as exc:
            log.warning("could not release the lease: %s", exc)
        self._set(False)

    # ----- loop -----

    def start(self) -> None:
        for target, name in ((self._run, "leader"), (self._watch_deadline, "leader-deadline")):
            thread = threading.Thread(target=target, name=name, daemon=True)
            thread.start()
            self._threads.append(thread)

    def stop(self) -> None:
        self._stop.set()
        for thread in self._threads:
            thread.join(self.timing.lease_duration)

    def holds_now(self) -> bool:
        """Whether this replica may act now: it leads and renewed within the renew deadline,
        judged at the moment of asking. A process that was paused (SIGSTOP, a stalled node)
        wakes with its threads racing: a tick may start before the watchdog below has run,
        and must not act on a Lease that ran out while it slept."""
        with self._lock:
            return self.is_leader and self._clock() - self._last_renew < self.timing.renew_deadline

    def _watch_deadline(self) -> None:
        """Judge the renew deadline on its own clock: a renew request hanging on a slow API
        server must not keep this replica acting past the point where another may take the
        Lease (the loop below only looks once its request returns)."""
        while not self._stop.wait(self.timing.retry_period / 2):
            with self._lock:
                overdue = (
                    self.is_leader
                    and self._clock() - self._last_renew >= self.timing.renew_deadline
                )
            if overdue:
                log.error("lost leadership: could not renew the lease in time")
                self._set(False)

    def _run(self) -> None:
        while not self._stop.is_set():
            try:
                held = self.try_acquire_or_renew()
            except ConflictError:
                held = False  # someone else wrote first; look again next round
            except ApiError as exc:
                log.warning("leader election request failed: %s", exc)
                held = False
            if held:
                with self._lock:
                    self._last_renew = self._clock()
                self._set(True)
            elif self.is_leader and self.holder not in ("", self.identity):
                log.error("lost leadership: the lease is held by %s", self.holder)
                self._set(False)
            # An unrenewed lease is the watchdog's to judge (_watch_deadline).
            self._stop.wait(self.timing.retry_period)

    def _set(self, leading: bool) -> None:
        with self._lock:
            if leading == self.is_leader:
                return
            self.is_leader = leading
        if leading:
            log.info("became leader", extra={"lease": self.name, "identity": self.identity})
        self._on_change(leading)
