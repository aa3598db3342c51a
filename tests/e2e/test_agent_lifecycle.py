"""Steering and teardown through the agent: plugin requests (abort, retry) acknowledged in
status, and revertOnDeletion with an HPA (the `<hpa>-primary` copy, the finalizer, the revert)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from kubectl_canary.api.model import FINALIZER, MANAGED_BY_LABEL, REQUEST_ANNOTATION

from .agent_harness import (
    CANARY_API,
    IMAGE_PREFIX,
    AgentProcess,
    Cluster,
    deployment,
    istio_canary,
    metric_value,
    namespace,
    running_agent,
    wait_for,
)
from .scenario_helpers import install_app, release_stack

pytestmark = [pytest.mark.e2e, pytest.mark.prometheus]

NS, NAME = "application", "mhs"


def request(c: Cluster, request_id: str, action: str) -> None:
    body = json.dumps({"id": request_id, "action": action})
    c.client.patch_merge(
        CANARY_API, "Canary", NS, NAME, {"metadata": {"annotations": {REQUEST_ANNOTATION: body}}}
    )


def acknowledged(c: Cluster, request_id: str) -> dict | None:
    ack = c.status(NS, NAME).get("lastRequest") or {}
    return ack if ack.get("id") == request_id else None


def ticks(agent: AgentProcess) -> int:
    return int(metric_value(agent.metrics(), "kubectl_canary_ticks_total", outcome="ok") or 0)


def test_abort_then_retry(tmp_path: Path) -> None:
    with release_stack(tmp_path) as stack:
        c, prom, sb = stack.cluster, stack.prometheus, stack.cluster.sandbox
        install_app(c, NS, NAME)
        c.traffic([{"namespace": NS, "service": NAME, "rps": 20}], {})
        c.apply(istio_canary(NS, NAME))
        with running_agent(sb.kubeconfig, tmp_path / "agent.log", metrics_server=prom.url) as agent:
            c.wait_phase(NS, NAME, "Initialized")
            c.set_image(NS, NAME, IMAGE_PREFIX + "1.1.2")
            c.wait_phase(NS, NAME, "Progressing")
            request(c, "r-abort", "abort")
            ack = wait_for("abort acknowledged", lambda: acknowledged(c, "r-abort"), 30)
            assert ack["accepted"] is True and ack["action"] == "abort"
            c.wait_phase(NS, NAME, "Failed", 30)
            primary = c.get("apps/v1", "Deployment", NS, f"{NAME}-primary")
            assert primary is not None
            image = primary["spec"]["template"]["spec"]["containers"][0]["image"]
            assert image == IMAGE_PREFIX + "1.1.1"
            request(c, "r-retry", "retry")
            ack = wait_for("retry acknowledged", lambda: acknowledged(c, "r-retry"), 30)
            assert ack["accepted"] is True
            c.wait_phase(NS, NAME, "Succeeded", 120)
            # A request is handled once: the same id again is not a new request.
            history_len = len(c.status(NS, NAME)["history"])
            request(c, "r-retry", "retry")
            before = ticks(agent)
            wait_for("two more ticks", lambda: ticks(agent) >= before + 2, 30)
            assert c.phase(NS, NAME) == "Succeeded"
            assert len(c.status(NS, NAME)["history"]) == history_len


def test_revert_on_deletion_with_hpa(tmp_path: Path) -> None:
    with release_stack(tmp_path) as stack:
        c, prom, sb = stack.cluster, stack.prometheus, stack.cluster.sandbox
        install_app(c, NS, NAME, replicas=3)
        c.apply(
            {
                "apiVersion": "autoscaling/v2",
                "kind": "HorizontalPodAutoscaler",
                "metadata": {"name": NAME, "namespace": NS},
                "spec": {
                    "scaleTargetRef": {
                        "apiVersion": "apps/v1",
                        "kind": "Deployment",
                        "name": NAME,
                    },
                    "minReplicas": 2,
                    "maxReplicas": 4,
                },
            }
        )
        c.traffic([{"namespace": NS, "service": NAME, "rps": 20}], {})
        canary = istio_canary(NS, NAME)
        canary["spec"]["revertOnDeletion"] = True
        canary["spec"]["autoscalerRef"] = {
            "apiVersion": "autoscaling/v2",
            "kind": "HorizontalPodAutoscaler",
            "name": NAME,
        }
        c.apply(canary)
        with running_agent(sb.kubeconfig, tmp_path / "agent.log", metrics_server=prom.url):
            c.wait_phase(NS, NAME, "Initialized")
            assert FINALIZER in c.canary(NS, NAME)["metadata"].get("finalizers", [])
            hpa = c.get("autoscaling/v2", "HorizontalPodAutoscaler", NS, f"{NAME}-primary")
            assert hpa is not None, "the primary's HPA copy"
            assert hpa["spec"]["scaleTargetRef"]["name"] == f"{NAME}-primary"
            assert (hpa["spec"]["minReplicas"], hpa["spec"]["maxReplicas"]) == (2, 4)
            assert c.get("apps/v1", "Deployment", NS, NAME)["spec"]["replicas"] == 0
            c.client.delete(CANARY_API, "Canary", NS, NAME)
            wait_for(
                "Canary gone",
                lambda: c.get(CANARY_API, "Canary", NS, NAME) is None,
                timeout=90,
            )
            target = c.get("apps/v1", "Deployment", NS, NAME)
            assert target is not None and target["spec"]["replicas"] >= 1
            apex = c.get("v1", "Service", NS, NAME)
            assert apex is not None, "the apex Service keeps serving"
            assert apex["spec"]["selector"] == {"app": NAME}, apex["spec"]["selector"]
            # The sample's VirtualService serves an ingress gateway: deleting it would cut
            # those callers off, so it is handed over sending everything to the apex Service
            # (docs/release-semantics.md, "The hand-back").
            vs = c.get("networking.istio.io/v1beta1", "VirtualService", NS, NAME)
            assert vs is not None, "the VirtualService serving the gateway is kept"
            assert MANAGED_BY_LABEL not in (vs["metadata"].get("labels") or {})
            assert not vs["metadata"].get("ownerReferences")
            hosts = {d["destination"]["host"] for r in vs["spec"]["http"] for d in r["route"]}
            assert hosts == {NAME}, vs["spec"]["http"]
            reasons = [e["message"] for e in c.events(NS, NAME)]
            assert any(m.startswith(f"Reverted {NAME}") for m in reasons), reasons


def test_tracked_config_change_is_a_new_revision(tmp_path: Path) -> None:
    with release_stack(tmp_path) as stack:
        c, prom, sb = stack.cluster, stack.prometheus, stack.cluster.sandbox
        c.apply(namespace(NS))
        config = {
            "apiVersion": "v1",
            "kind": "ConfigMap",
            "metadata": {"name": "mhs-config", "namespace": NS},
            "data": {"GREETING": "hello"},
        }
        c.apply(config)
        dep = deployment(NS, NAME, IMAGE_PREFIX + "1.1.1")
        container = dep["spec"]["template"]["spec"]["containers"][0]
        container["envFrom"] = [{"configMapRef": {"name": "mhs-config"}}]
        c.apply(dep)
        c.traffic([{"namespace": NS, "service": NAME, "rps": 20}], {})
        c.apply(istio_canary(NS, NAME))
        with running_agent(sb.kubeconfig, tmp_path / "agent.log", metrics_server=prom.url):
            c.wait_phase(NS, NAME, "Initialized")
            # The primary reads its own copy of the config, so a change of the config
            # reaches the primary's pods only when it is promoted.
            primary = c.get("apps/v1", "Deployment", NS, f"{NAME}-primary") or {}
            primary_pod = primary["spec"]["template"]["spec"]["containers"][0]
            assert primary_pod["envFrom"] == [{"configMapRef": {"name": "mhs-config-primary"}}]
            assert primary_config_data(c) == {"GREETING": "hello"}
            before = c.status(NS, NAME).get("lastAppliedSpec")
            c.apply({**config, "data": {"GREETING": "bonjour"}})
            c.wait_phase(NS, NAME, "Progressing", 60, 0.1)
            assert primary_config_data(c) == {"GREETING": "hello"}  # not analysed yet
            c.wait_phase(NS, NAME, "Succeeded", 120, 0.5)
            history = [h["message"] for h in c.status(NS, NAME)["history"]]
            assert f"New revision detected! Scaling up {NAME}.{NS}" in history
            assert c.status(NS, NAME).get("lastAppliedSpec") != before
            assert primary_config_data(c) == {"GREETING": "bonjour"}


def primary_config_data(c: Cluster) -> dict[str, str]:
    copied = c.get("v1", "ConfigMap", NS, "mhs-config-primary")
    assert copied is not None, "the primary's copy mhs-config-primary does not exist"
    return dict(copied.get("data") or {})
