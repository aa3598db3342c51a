"""One tick: observe from caches, decide (two passes), act, write status once, record Events."""

from __future__ import annotations

import dataclasses
import json
from datetime import UTC, datetime
from typing import Any

import pytest

from agent.core.types import (
    Decision,
    EmitEvent,
    GateResult,
    Initialize,
    MetricResult,
    Observations,
    QueryMetrics,
    RequeueAfter,
    Routes,
    ScaleTarget,
    SetRoutes,
)
from agent.reconcile import Ticker, TickSettings
from agent.telemetry import Telemetry
from kubectl_canary.api.model import FINALIZER, REQUEST_ANNOTATION, Canary, Phase
from kubectl_canary.objects.writer import OwnershipError
from kubectl_canary.resources import ApiError
from tests.store_client import StoreClient

API = "kubectl-canary.dev/v1alpha1"
NOW = datetime(2026, 1, 1, 12, 0, 0, tzinfo=UTC)


class FakeCaches:
    """Reads straight from the fake cluster, like a perfectly up-to-date informer."""

    def __init__(self, k: StoreClient) -> None:
        self.k = k

    def get(self, api_version: str, kind: str, ns: str, name: str) -> dict | None:
        return self.k.find(kind, name, ns)


class FakeRouter:
    def __init__(self, kit: FakeToolkit) -> None:
        self.kit = kit

    def reconcile(self, canary: Canary) -> None:
        self.kit.calls.append("reconcile")
        self.kit.routes = self.kit.routes or Routes(100, 0)

    def set_routes(self, canary, primary, canary_weight, mirror, match) -> None:  # noqa: ANN001
        self.kit.calls.append(f"routes {primary}/{canary_weight}")
        self.kit.routes = Routes(primary, canary_weight)

    def get_routes(self, canary: Canary) -> Routes | None:
        return self.kit.routes

    def finalize(self, canary: Canary) -> None:
        self.kit.calls.append("finalize")


class FakeToolkit:
    def __init__(self) -> None:
        self.calls: list[str] = []
        self.hashed: list[str] = []  # targets whose template was hashed
        self.routes: Routes | None = None
        self.metric_value = 99.5

    def router(self, canary: Canary, client: Any) -> FakeRouter:
        if canary.spec.provider not in ("istio", "kubernetes", "gatewayapi"):
            raise ValueError(f"unknown provider {canary.spec.provider!r}")
        return FakeRouter(self)

    def tracked_config_refs(self, deployment: dict) -> list[tuple[str, str]]:
        return []

    def template_hash(self, deployment: dict, configs: Any) -> str:
        self.hashed.append(deployment["metadata"]["name"])
        return "h-" + deployment["spec"]["template"]["spec"]["containers"][0]["image"]

    def initialize(self, canary: Canary, client: Any, target: dict, routing: bool) -> None:
        self.calls.append("initialize")

    def promote(self, canary: Canary, client: Any, target: dict, hpa: bool) -> None:
        self.calls.append("promote")

    def restore_target(self, canary: Canary, client: Any) -> None:
        self.calls.append("restore target")

    def revert(self, canary: Canary, client: Any) -> None:
        self.calls.append("revert")

    def query_metric(self, canary, metric, template, server) -> MetricResult:  # noqa: ANN001
        self.calls.append(f"query {metric.name} @{server}")
        return MetricResult(value=self.metric_value)

    def webhook_payload(self, canary, webhook, phase) -> dict:  # noqa: ANN001
        return {"name": canary.name, "phase": phase, "metadata": {}}

    def call_webhook(self, webhook, payload) -> GateResult:  # noqa: ANN001
        self.calls.append(f"webhook {webhook.name}")
        return GateResult(ok=True)


def canary_obj(**spec: Any) -> dict:
    return {
        "apiVersion": API,
        "kind": "Canary",
        "metadata": {"name": "mhs", "namespace": "test", "generation": 1},
        "spec": {
            "provider": "istio",
            "targetRef": {"apiVersion": "apps/v1", "kind": "Deployment", "name": "mhs"},
            "service": {"port": 9898},
            "analysis": {
                "interval": "2s",
                "threshold": 2,
                "maxWeight": 20,
                "stepWeight": 10,
                "metrics": [{"name": "request-success-rate", "thresholdRange": {"min": 99}}],
            },
            **spec,
        },
    }


def deployment(image: str = "app:1") -> dict:
    return {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {"name": "mhs", "namespace": "test", "generation": 1},
        "spec": {
            "replicas": 2,
            "selector": {"matchLabels": {"app": "mhs"}},
            "template": {
                "metadata": {"labels": {"app": "mhs"}},
                "spec": {"containers": [{"name": "app", "image": image}]},
            },
        },
        "status": {"observedGeneration": 1, "readyReplicas": 2, "updatedReplicas": 2},
    }


def setup(decide, **spec: Any) -> tuple[StoreClient, FakeToolkit, Ticker, Telemetry]:  # noqa: ANN001
    k = StoreClient(namespace="test")
    k.add(canary_obj(**spec))
    k.add(deployment())
    kit = FakeToolkit()
    tel = Telemetry()
    settings = TickSettings(default_provider="kubernetes", metrics_server="http://prom:9090")
    ticker = Ticker(k, FakeCaches(k), kit, decide, tel, settings, clock=lambda: NOW)
    return k, kit, ticker, tel


def events(k: StoreClient) -> list[tuple[str, str]]:
    evs = k.all("Event")
    return [(e["type"], e["message"]) for e in sorted(evs, key=lambda e: e["metadata"]["name"])]


def test_actions_run_in_order_then_status_once_then_events() -> None:
    def decide(canary: Canary, obs: Observations, now: datetime) -> Decision:
        assert obs.target.exists and obs.target.template_hash == "h-app:1"
        assert now == NOW
        status = dataclasses.replace(canary.status, phase=Phase.INITIALIZED)
        return Decision(
            status,
            (
                Initialize(),
                SetRoutes(100, 0),
                ScaleTarget(0),
                EmitEvent("Normal", "Synced", "Initialization done! mhs.test"),
                RequeueAfter(3.0),
            ),
        )

    k, kit, ticker, _ = setup(decide)
    delay = ticker("test/mhs")
    assert delay == 3.0
    assert kit.calls == ["initialize", "reconcile", "routes 100/0"]
    assert k.find("Deployment", "mhs", "test")["spec"]["replicas"] == 0
    assert k.find("Canary", "mhs", "test")["status"]["phase"] == "Initialized"
    verbs = [(v, kind) for v, kind, _ in k.requests]
    assert verbs.index(("update", "Canary/status")) < verbs.index(("create", "Event"))
    assert events(k) == [("Normal", "Initialization done! mhs.test")]


def test_unchanged_status_is_not_written_and_interval_is_the_default_delay() -> None:
    k, _, ticker, _ = setup(lambda c, o, n: Decision(c.status, ()))
    k.edit("Canary", "mhs", lambda c: c.update(status={"phase": "Initializing"}))
    assert ticker("test/mhs") == 2.0
    assert ("update", "Canary/status", "mhs") not in k.requests


def test_two_pass_metrics_and_gates_at_the_same_now() -> None:
    seen: list[Observations] = []

    def decide(canary: Canary, obs: Observations, now: datetime) -> Decision:
        seen.append(obs)
        if obs.metrics is None:
            return Decision(canary.status, (QueryMetrics(canary.spec.analysis.metrics),))
        value = obs.metrics["request-success-rate"].value
        status = dataclasses.replace(canary.status, phase=Phase.PROGRESSING, canary_weight=10)
        return Decision(status, (EmitEvent("Normal", "Synced", f"value {value}"),))

    k, kit, ticker, _ = setup(decide)
    ticker("test/mhs")
    assert len(seen) == 2 and seen[0].metrics is None
    assert kit.calls == ["query request-success-rate @http://prom:9090"]
    assert events(k) == [("Normal", "value 99.5")]
    assert k.find("Canary", "mhs", "test")["status"]["canaryWeight"] == 10


def test_canary_metrics_server_overrides_the_agent_default() -> None:
    def decide(canary: Canary, obs: Observations, now: datetime) -> Decision:
        if obs.metrics is None:
            return Decision(canary.status, (QueryMetrics(canary.spec.analysis.metrics),))
        return Decision(canary.status, ())

    _, kit, ticker, _ = setup(decide, metricsServer="http://other:9090")
    ticker("test/mhs")
    assert kit.calls == ["query request-success-rate @http://other:9090"]


def test_failed_action_writes_nothing_it_decided_and_reports_once_in_history() -> None:
    """Nothing the failed tick decided is written; the failure itself is a SyncFailed Warning
    in status.history and one Event, like any other transition."""

    def decide(canary: Canary, obs: Observations, now: datetime) -> Decision:
        status = dataclasses.replace(canary.status, phase=Phase.PROGRESSING)
        return Decision(status, (ScaleTarget(1), EmitEvent("Normal", "Synced", "never sent")))

    k, _, ticker, tel = setup(decide)
    k.fail("patch", None, ApiError("forbidden", 403, "Forbidden"))
    delay = ticker("test/mhs")
    assert delay is not None and delay <= 10
    status = k.find("Canary", "mhs", "test")["status"]
    assert status.get("phase") != "Progressing"
    assert [(h["type"], h["reason"]) for h in status["history"]] == [("Warning", "SyncFailed")]
    assert "forbidden" in status["history"][0]["message"]
    assert [t for t, _ in events(k)] == ["Warning"]
    assert events(k)[0][1] == status["history"][0]["message"]
    k.fail("patch", None, ApiError("forbidden", 403, "Forbidden"))
    ticker("test/mhs")
    assert len(events(k)) == 1  # the same failure is not reported again
    assert len(k.find("Canary", "mhs", "test")["status"]["history"]) == 1
    assert 'kubectl_canary_ticks_total{outcome="error"} 2.0' in tel.render()


def test_an_object_in_the_way_is_a_condition_not_a_takeover() -> None:
    """A user's object where a generated one would go (say their own `mhs-primary` HPA): the
    Canary says so in Valid=False with one Warning, until it is out of the way."""

    def decide(canary: Canary, obs: Observations, now: datetime) -> Decision:
        status = dataclasses.replace(canary.status, phase=Phase.INITIALIZING)
        return Decision(status, (Initialize(),))

    k, kit, ticker, tel = setup(decide)

    def in_the_way(canary: Canary, client: Any, target: dict, routing: bool) -> None:
        raise OwnershipError("HorizontalPodAutoscaler test/mhs-primary exists and is not ours")

    kit.initialize = in_the_way  # type: ignore[method-assign]
    ticker("test/mhs")
    ticker("test/mhs")
    status = k.find("Canary", "mhs", "test")["status"]
    valid = [c for c in status["conditions"] if c["type"] == "Valid"]
    assert valid[0]["status"] == "False" and valid[0]["reason"] == "ObjectInTheWay"
    assert "mhs-primary exists and is not ours" in valid[0]["message"]
    assert [t for t, _ in events(k)] == ["Warning"], "one Warning, not one per tick"
    assert 'kubectl_canary_ticks_total{outcome="blocked"} 2.0' in tel.render()


def test_pending_request_is_observed_once() -> None:
    requests: list[Any] = []

    def decide(canary: Canary, obs: Observations, now: datetime) -> Decision:
        requests.append(obs.request)
        return Decision(canary.status, ())

    k, _, ticker, _ = setup(decide)
    request = {REQUEST_ANNOTATION: json.dumps({"id": "r1", "action": "pause"})}
    k.edit("Canary", "mhs", lambda c: c["metadata"].update(annotations=request))
    ticker("test/mhs")
    answered = {
        "phase": "Progressing",
        "lastRequest": {"id": "r1", "action": "pause", "accepted": True},
    }
    k.edit("Canary", "mhs", lambda c: c.update(status=answered))
    ticker("test/mhs")
    assert requests[0] is not None and requests[0].id == "r1"
    assert requests[1] is None


def test_missing_metric_template_is_a_spec_error_for_the_core() -> None:
    errors: list[str | None] = []

    def decide(canary: Canary, obs: Observations, now: datetime) -> Decision:
        errors.append(obs.spec_error)
        return Decision(canary.status, ())

    analysis = canary_obj()["spec"]["analysis"]
    analysis["metrics"] = [
        {"name": "errors", "templateRef": {"name": "error-rate"}, "thresholdRange": {"max": 1}}
    ]
    _, _, ticker, _ = setup(decide, analysis=analysis)
    ticker("test/mhs")
    assert errors[0] is not None and "MetricTemplate test/error-rate not found" in errors[0]


def test_generated_names_the_api_server_would_refuse_are_a_spec_error() -> None:
    """A target whose selector label leaves no room for `-primary` (63 characters at most):
    the core gets a spec error (an Invalid condition), not a 422 on every tick."""
    seen: list[Observations] = []

    def decide(canary: Canary, obs: Observations, now: datetime) -> Decision:
        seen.append(obs)
        return Decision(canary.status, ())

    k, _, ticker, _ = setup(decide)

    def labelled(app: str) -> None:
        # A selector is immutable: the user recreates the Deployment.
        target = deployment()
        target["spec"]["selector"]["matchLabels"]["app"] = app
        target["spec"]["template"]["metadata"]["labels"]["app"] = app
        k.remove("Deployment", "mhs")
        k.add(target)

    labelled("a" * 56)
    ticker("test/mhs")
    assert seen[-1].spec_error is not None
    assert f"app={'a' * 56}-primary would have 64 characters" in seen[-1].spec_error
    labelled("a" * 55)
    ticker("test/mhs")
    assert seen[-1].spec_error is None


def test_unparseable_spec_sets_a_condition_and_one_warning_and_never_reaches_the_core() -> None:
    def decide(canary: Canary, obs: Observations, now: datetime) -> Decision:
        raise AssertionError("the core must not see an unparseable canary")

    k, _, ticker, _ = setup(decide)
    # Beyond maxWeight (20): the CRD's schema admits it, the agent's rules do not.
    k.edit("Canary", "mhs", lambda c: c["spec"]["analysis"].update(stepWeight=30))
    ticker("test/mhs")
    ticker("test/mhs")
    status = k.find("Canary", "mhs", "test")["status"]
    valid = [c for c in status["conditions"] if c["type"] == "Valid"]
    assert valid and valid[0]["status"] == "False" and "stepWeight" in valid[0]["message"]
    assert [t for t, _ in events(k)] == ["Warning"]
    assert status["history"][-1]["reason"] == "InvalidSpec"


def test_deleted_canary_is_forgotten() -> None:
    k, _, ticker, _ = setup(lambda c, o, n: Decision(c.status, ()))
    k.remove("Canary", "mhs")
    assert ticker("test/mhs") is None


def _app_pod(name: str, app: str) -> dict:
    return {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {"name": name, "namespace": "test", "labels": {"app": app}},
        "spec": {"containers": [{"name": "app", "image": "app:1"}]},
    }


def _apex_endpoints(*pods: str) -> dict:
    addresses = [
        {"ip": f"10.0.0.{i}", "targetRef": {"kind": "Pod", "name": name, "namespace": "test"}}
        for i, name in enumerate(pods)
    ]
    return {
        "apiVersion": "v1",
        "kind": "Endpoints",
        "metadata": {"name": "mhs", "namespace": "test"},
        "subsets": [{"addresses": addresses, "ports": [{"port": 9898}]}],
    }


def _reverting_setup(
    deleting: bool, revert_on_deletion: bool = True
) -> tuple[StoreClient, Ticker, list[Observations]]:
    seen: list[Observations] = []

    def decide(canary: Canary, obs: Observations, now: datetime) -> Decision:
        seen.append(obs)
        return Decision(canary.status, ())

    spec = {"revertOnDeletion": True} if revert_on_deletion else {}
    k, _, ticker, _ = setup(decide, **spec)
    k.edit("Canary", "mhs", lambda c: c["metadata"].update(finalizers=[FINALIZER]))
    if deleting:
        k.remove("Canary", "mhs")  # the finalizer holds it: deletionTimestamp is set
    for name, app in [("mhs-primary-1", "mhs-primary"), ("mhs-1", "mhs"), ("mhs-2", "mhs")]:
        k.add(_app_pod(name, app))
    return k, ticker, seen


@pytest.mark.parametrize("revert_on_deletion", [True, False])
def test_a_deleted_canary_observes_whether_the_apex_endpoints_are_the_target_pods(
    revert_on_deletion: bool,
) -> None:
    """Every deletion hands back, so the endpoints are read whatever revertOnDeletion says."""
    k, ticker, seen = _reverting_setup(deleting=True, revert_on_deletion=revert_on_deletion)
    k.add(_apex_endpoints("mhs-primary-1", "mhs-1"))  # the endpoints controller lags behind
    ticker("test/mhs")
    k.edit(
        "Endpoints",
        "mhs",
        lambda ep: ep.update(subsets=_apex_endpoints("mhs-1", "mhs-2")["subsets"]),
    )
    ticker("test/mhs")
    assert [o.apex_on_target for o in seen] == [False, True]
    # Two live reads per tick: the apex Endpoints, and the target's pods by its selector.
    reads = [c for c in k.requests if c[1] in ("Endpoints", "Pod")]
    assert reads == [("list", "Pod", "app=mhs"), ("get", "Endpoints", "mhs")] * 2


def test_endpoints_and_pods_are_never_read_outside_a_revert() -> None:
    k, ticker, seen = _reverting_setup(deleting=False)
    k.add(_apex_endpoints("mhs-1"))
    ticker("test/mhs")
    assert seen[-1].apex_on_target is None
    assert not [c for c in k.requests if c[1] in ("Endpoints", "Pod")]


def _primary_deployment() -> dict:
    primary = deployment()
    primary["metadata"]["name"] = "mhs-primary"
    primary["spec"]["selector"] = {"matchLabels": {"app": "mhs-primary"}}
    primary["spec"]["template"]["metadata"]["labels"] = {"app": "mhs-primary"}
    return primary


def test_an_initialising_canary_observes_whether_the_endpoints_are_the_primary_pods() -> None:
    """Staged onboarding: the primary Service's endpoints, then the apex Service's."""
    k, ticker, seen = _reverting_setup(deleting=False)
    k.add(_primary_deployment())
    primary_eps = _apex_endpoints("mhs-primary-1")
    primary_eps["metadata"]["name"] = "mhs-primary"
    k.add(primary_eps)
    k.add(_apex_endpoints("mhs-1", "mhs-2"))  # the user's Service still on the target
    ticker("test/mhs")
    k.edit(
        "Endpoints",
        "mhs",
        lambda ep: ep.update(subsets=_apex_endpoints("mhs-primary-1")["subsets"]),
    )
    ticker("test/mhs")
    seen_pairs = [(o.primary_service_on_primary, o.apex_on_primary) for o in seen]
    assert seen_pairs == [(True, False), (True, True)]
    # Three live reads per tick: both Services' Endpoints, then the primary's pods.
    reads = [c for c in k.requests if c[1] in ("Endpoints", "Pod")]
    expected = [
        ("get", "Endpoints", "mhs-primary"),
        ("get", "Endpoints", "mhs"),
        ("list", "Pod", "app=mhs-primary"),
    ]
    assert reads == expected * 2


def test_no_pod_list_while_neither_service_has_a_ready_endpoint() -> None:
    k, ticker, seen = _reverting_setup(deleting=False)
    k.add(_primary_deployment())
    ticker("test/mhs")  # no Endpoints yet: the endpoints controller has not caught up
    assert (seen[-1].primary_service_on_primary, seen[-1].apex_on_primary) == (False, False)
    assert [c[1] for c in k.requests if c[1] in ("Endpoints", "Pod")] == ["Endpoints"] * 2


def test_endpoints_are_not_read_while_the_primary_is_not_ready_yet() -> None:
    """They matter only once it is ready: onboarding 10,000 canaries at once read them on every
    rollout event of every primary."""
    k, ticker, seen = _reverting_setup(deleting=False)
    rolling = _primary_deployment()
    rolling["status"] = {"observedGeneration": 1, "readyReplicas": 0, "updatedReplicas": 2}
    k.add(rolling)
    ticker("test/mhs")
    assert (seen[-1].primary_service_on_primary, seen[-1].apex_on_primary) == (None, None)
    assert not [c for c in k.requests if c[1] in ("Endpoints", "Pod")]


def test_endpoints_are_not_read_once_initialised() -> None:
    k, ticker, seen = _reverting_setup(deleting=False)
    k.add(_primary_deployment())
    k.edit("Canary", "mhs", lambda c: c.update(status={"phase": "Initialized"}))
    ticker("test/mhs")
    assert (seen[-1].primary_service_on_primary, seen[-1].apex_on_primary) == (None, None)
    assert not [c for c in k.requests if c[1] in ("Endpoints", "Pod")]


def test_initialize_without_routing_leaves_the_routing_object_alone() -> None:
    def decide(canary: Canary, obs: Observations, now: datetime) -> Decision:
        return Decision(canary.status, (Initialize(routing=False),))

    _, kit, ticker, _ = setup(decide)
    ticker("test/mhs")
    assert kit.calls == ["initialize"]


def test_a_steady_tick_reuses_the_parsed_canary_and_the_target_hash_until_either_changes() -> None:
    seen: list[tuple[Canary, str]] = []

    def decide(canary: Canary, obs: Observations, now: datetime) -> Decision:
        seen.append((canary, obs.target.template_hash))
        return Decision(canary.status, ())

    k, kit, ticker, _ = setup(decide)
    hashed = kit.hashed
    ticker("test/mhs")  # the first tick writes (finalizer, Valid=True): a new version
    seen.clear()
    ticker("test/mhs")
    ticker("test/mhs")
    assert seen[0][0] is seen[1][0], "an unchanged Canary is not parsed again"
    assert len(hashed) == 1, "an unchanged target is not hashed again"
    k.edit("Canary", "mhs", lambda c: c["spec"]["analysis"].update(stepWeight=5))
    k.edit(
        "Deployment",
        "mhs",
        lambda d: d["spec"]["template"]["spec"].update(
            containers=[{"name": "app", "image": "app:2"}]
        ),
    )
    ticker("test/mhs")
    assert seen[-1][0].spec.analysis.step_weight == 5
    assert seen[-1][1] == "h-app:2" and len(hashed) == 2
    k.remove("Canary", "mhs")
    assert ticker("test/mhs") is None
    assert len(ticker._parsed) == 0 and len(ticker._revisions) == 0  # noqa: SLF001
