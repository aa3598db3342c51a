"""Lease leader election: one holder at a time, takeover after expiry, prompt release."""

from __future__ import annotations

import threading

import pytest

from agent.leader import LeaderElector, LeaseTiming
from kubectl_canary.resources import ConflictError
from tests.store_client import StoreClient

from .polling import wait_until


class Clock:
    def __init__(self) -> None:
        self.t = 1000.0

    def __call__(self) -> float:
        return self.t


def elector(k: StoreClient, ident: str, clock: Clock, changes: list[bool]) -> LeaderElector:
    return LeaderElector(
        k, "kc", "lease", ident, LeaseTiming.for_duration(15), changes.append, clock, clock
    )


def test_first_candidate_creates_and_holds_the_lease() -> None:
    k, clock = StoreClient(namespace="kc"), Clock()
    a = elector(k, "a", clock, [])
    assert a.try_acquire_or_renew()
    lease = k.find("Lease", "lease", "kc")
    assert lease["spec"]["holderIdentity"] == "a"
    assert lease["spec"]["leaseDurationSeconds"] == 15
    assert a.try_acquire_or_renew()  # renewing
    assert k.find("Lease", "lease", "kc")["spec"]["leaseTransitions"] == 0


def test_second_candidate_waits_until_the_lease_expires() -> None:
    k, clock = StoreClient(namespace="kc"), Clock()
    a, b = elector(k, "a", clock, []), elector(k, "b", clock, [])
    assert a.try_acquire_or_renew()
    assert not b.try_acquire_or_renew()
    clock.t += 10
    assert a.try_acquire_or_renew()  # a renews: b sees a changed record
    clock.t += 10
    assert not b.try_acquire_or_renew()
    clock.t += 16  # a stopped renewing (died)
    assert b.try_acquire_or_renew()
    lease = k.find("Lease", "lease", "kc")
    assert lease["spec"]["holderIdentity"] == "b"
    assert lease["spec"]["leaseTransitions"] == 1


def test_release_lets_a_follower_take_over_at_once() -> None:
    k, clock = StoreClient(namespace="kc"), Clock()
    changes: list[bool] = []
    a, b = elector(k, "a", clock, changes), elector(k, "b", clock, [])
    assert a.try_acquire_or_renew()
    a._set(True)
    assert not b.try_acquire_or_renew()
    a.release()
    assert changes == [True, False]
    assert b.try_acquire_or_renew()


def test_racing_writes_are_guarded_by_resource_version() -> None:
    k, clock = StoreClient(namespace="kc"), Clock()
    a, b = elector(k, "a", clock, []), elector(k, "b", clock, [])
    assert a.try_acquire_or_renew()
    stale = k.find("Lease", "lease", "kc")
    assert not b.try_acquire_or_renew()  # b starts watching the record
    clock.t += 20
    assert b.try_acquire_or_renew()
    # a writes from the version it read before b took over: the server refuses.
    with pytest.raises(ConflictError):
        k.replace(stale)


@pytest.mark.parametrize(
    "timing",
    [LeaseTiming(2, 3, 1), LeaseTiming(15, 10, 0), LeaseTiming(0.5, 0.3, 0.1)],
)
def test_bad_timings_are_rejected(timing: LeaseTiming) -> None:
    with pytest.raises(ValueError):
        timing.validate()


def test_scaled_timing_keeps_client_go_ratios() -> None:
    t = LeaseTiming.for_duration(2)
    t.validate()
    assert t.lease_duration > t.renew_deadline > t.retry_period > 0


class HangingCluster(StoreClient):
    """A slow API server: once `hang` is set, reads block until `resume` is set."""

    def __init__(self) -> None:
        super().__init__(namespace="kc")
        self.hang = threading.Event()
        self.resume = threading.Event()
        self.hanging = threading.Event()

    def get(self, api_version: str, kind: str, namespace: str, name: str):  # type: ignore[override]
        if self.hang.is_set():
            self.hanging.set()
            self.resume.wait(30)
        return super().get(api_version, kind, namespace, name)


def test_a_leader_whose_renew_hangs_stops_leading_at_the_renew_deadline() -> None:
    """The renew request hangs on a slow API server: the leader must stop acting once the renew
    deadline passes, not when the request finally returns (another replica may have taken the
    Lease by then). Time is the injected clock; the threads' own waits are real and short."""
    k, clock, changes = HangingCluster(), Clock(), []
    a = LeaderElector(
        k, "kc", "lease", "a", LeaseTiming.for_duration(1.5), changes.append, clock, clock
    )
    a.start()
    try:
        wait_until(lambda: changes == [True], 5)
        k.hang.set()
        assert k.hanging.wait(5), "the next renew is stuck in the API server"
        clock.t += a.timing.renew_deadline + 0.1
        wait_until(lambda: changes == [True, False], 5)
        assert not a.is_leader
    finally:
        k.resume.set()
        a.stop()
