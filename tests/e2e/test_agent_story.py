"""DESIGN §1 end to end: the agent as its own process, the sandbox, a real Prometheus, Istio.

1. Deployment `mhs` 1.1.1 and its Canary: the agent initialises (primary, Services, routing at
   100/0, target scaled to 0) without analysis.
2. 1.1.2 (healthy): weights 10..50 every interval, promotion, Succeeded; 1.1.2 serves.
3. 1.1.3 (half its requests fail): halted checks, rollback at the threshold, Failed; 1.1.2 keeps
   serving from the primary.
Throughout: Events match status.history one for one, in order; log lines name the canary;
/metrics reports the canary.
"""

from __future__ import annotations

import json
import re
import time
from pathlib import Path

import pytest

from kubectl_canary.sandbox.prometheus import (
    PrometheusHandle,
    start_prometheus,
)

from .agent_harness import (
    IMAGE_PREFIX,
    REPO,
    Cluster,
    agent_rbac_rules,
    api_requests,
    canary_traffic_gone,
    metric_value,
    rbac_allows,
    running_agent,
    sample,
    wait_for,
)
from .scenario_helpers import install_app, release_stack

pytestmark = [pytest.mark.e2e, pytest.mark.prometheus]

NS, NAME = "application", "mhs"
ISTIO = "networking.istio.io/v1beta1"


def vs_weights(c: Cluster) -> dict[str, int]:
    vs = c.get(ISTIO, "VirtualService", NS, NAME)
    assert vs is not None, "VirtualService mhs missing"
    route = vs["spec"]["http"][-1]["route"]
    return {r["destination"]["host"]: int(r.get("weight", 0)) for r in route}


def replicas(c: Cluster, name: str) -> int:
    dep = c.get("apps/v1", "Deployment", NS, name)
    assert dep is not None, f"Deployment {name} missing"
    return int(dep["spec"].get("replicas", 0))


def primary_image(c: Cluster) -> str:
    dep = c.get("apps/v1", "Deployment", NS, f"{NAME}-primary")
    assert dep is not None
    return str(dep["spec"]["template"]["spec"]["containers"][0]["image"])


def history_messages(c: Cluster) -> list[str]:
    return [h["message"] for h in c.status(NS, NAME).get("history", [])]


def event_messages(c: Cluster) -> list[str]:
    # The agent names each Event `<canary>.<hex nanoseconds><random>`: name order is
    # creation order, even within one second.
    events = sorted(c.events(NS, NAME), key=lambda e: e["metadata"]["name"])
    return [e["message"] for e in events]


def test_istio_story(tmp_path: Path) -> None:
    with release_stack(tmp_path) as stack:
        c, prom, sb = stack.cluster, stack.prometheus, stack.cluster.sandbox
        install_app(c, NS, NAME)
        c.traffic(
            [{"namespace": NS, "service": NAME, "rps": 20}],
            {"1.1.3": {"errorRate": 0.5}},
        )
        canary = sample("canary-istio.yaml")
        canary["spec"]["analysis"]["interval"] = "2s"
        for metric in canary["spec"]["analysis"]["metrics"]:
            metric["interval"] = "10s"
        c.apply(canary)
        log_path = tmp_path / "agent.log"
        with (
            running_agent(
                sb.kubeconfig, log_path, "--lease-duration", "2s", metrics_server=prom.url
            ) as agent,
            # A second Prometheus scrapes the agent itself, as a platform's would.
            start_prometheus(
                f"127.0.0.1:{agent.port}", "/metrics", workdir=tmp_path / "agent-prometheus"
            ) as agent_prom,
        ):
            _initialised(c)
            _succeeds(c)
            # Like Flagger, checks judge the canary Deployment's recent requests: let the
            # healthy 1.1.2 canary traffic leave the 10 s window before shipping 1.1.3.
            wait_for(
                "1.1.2 canary traffic out of the window",
                lambda: canary_traffic_gone(prom, NS, NAME),
                60,
                0.5,
            )
            _fails(c)
            assert event_messages(c) == history_messages(c)
            _observable(c, agent)
            _dashboard_has_data(agent_prom)
        assert agent.proc.returncode == 0, "SIGTERM should stop the agent cleanly"


def _initialised(c: Cluster) -> None:
    c.wait_phase(NS, NAME, "Initialized")
    # A tick that meets the primary still rolling out records Flagger's waiting
    # message first (how many depends on the machine's load); nothing else may precede.
    *waits, done = history_messages(c)
    assert done == f"Initialization done! {NAME}.{NS}"
    assert all(
        m.startswith(f"{NAME}-primary.{NS} not ready: waiting for rollout to finish") for m in waits
    ), waits
    assert replicas(c, NAME) == 0
    assert replicas(c, f"{NAME}-primary") == 2
    assert primary_image(c) == IMAGE_PREFIX + "1.1.1"
    for svc in (NAME, f"{NAME}-primary", f"{NAME}-canary"):
        assert c.get("v1", "Service", NS, svc) is not None, f"Service {svc} missing"
    assert vs_weights(c) == {f"{NAME}-primary": 100, f"{NAME}-canary": 0}
    status = c.status(NS, NAME)
    assert status.get("canaryWeight", 0) == 0 and status.get("failedChecks", 0) == 0


def _succeeds(c: Cluster) -> None:
    seen_weights: set[int] = set()

    def succeeded() -> bool:
        status = c.status(NS, NAME)
        seen_weights.add(int(status.get("canaryWeight", 0)))
        return status.get("phase") == "Succeeded"

    c.set_image(NS, NAME, IMAGE_PREFIX + "1.1.2")
    wait_for("phase Succeeded for 1.1.2", succeeded, timeout=120, interval=0.2)
    messages = history_messages(c)
    advances = [m for m in messages if m.startswith(f"Advance {NAME}.{NS} canary weight")]
    assert advances == [f"Advance {NAME}.{NS} canary weight {w}" for w in (10, 20, 30, 40, 50)]
    assert messages[-1] == f"Promotion completed! Scaling down {NAME}.{NS}"
    assert f"New revision detected! Scaling up {NAME}.{NS}" in messages
    assert {10, 50} <= seen_weights
    assert primary_image(c) == IMAGE_PREFIX + "1.1.2"
    assert vs_weights(c) == {f"{NAME}-primary": 100, f"{NAME}-canary": 0}
    wait_for("canary scaled down", lambda: replicas(c, NAME) == 0, timeout=30)
    conditions = {x["type"]: x["status"] for x in c.status(NS, NAME).get("conditions", [])}
    assert conditions.get("Promoted") == "True"


def _fails(c: Cluster) -> None:
    before = len(history_messages(c))
    c.set_image(NS, NAME, IMAGE_PREFIX + "1.1.3")
    c.wait_phase(NS, NAME, "Failed", 150)
    new = history_messages(c)[before:]
    halts = [m for m in new if m.startswith(f"Halt {NAME}.{NS} advancement")]
    assert len(halts) >= 1, new
    assert any(re.search(r"success rate [0-9.]+% < 99%", m) for m in halts), halts
    assert any(
        m.startswith(f"Rolling back {NAME}.{NS} failed checks threshold reached") for m in new
    )
    # A real Prometheus ignores the first sample of a new series: the canary's first 500s can be
    # missed by one check (so one more step may pass), never by the checks that follow.
    assert not any(
        m.startswith(f"Advance {NAME}.{NS} canary weight {w}") for w in (30, 40, 50) for m in new
    ), new
    assert not any(m.startswith(f"Copying {NAME}.{NS} template") for m in new), new
    assert primary_image(c) == IMAGE_PREFIX + "1.1.2", "the primary must keep serving 1.1.2"
    assert vs_weights(c) == {f"{NAME}-primary": 100, f"{NAME}-canary": 0}
    wait_for("canary scaled down after rollback", lambda: replicas(c, NAME) == 0, timeout=30)
    metric_values = {m["name"]: m for m in c.status(NS, NAME).get("lastMetrics", [])}
    assert "request-success-rate" in metric_values


def _observable(c: Cluster, agent) -> None:  # type: ignore[no-untyped-def]
    text = agent.metrics()
    phase = metric_value(
        text, "kubectl_canary_canary_phase", namespace=NS, name=NAME, phase="Failed"
    )
    assert phase == 1
    requests = api_requests(text)
    assert requests.get(("watch", "kubectl-canary.dev/canaries"), 0) >= 1
    assert requests.get(("update", "kubectl-canary.dev/canaries/status"), 0) >= 1
    rules = agent_rbac_rules()
    denied = [k for k in requests if k[1] and not rbac_allows(rules, *k)]
    assert denied == [], f"the agent used verbs its RBAC does not grant: {denied}"
    assert (metric_value(text, "kubectl_canary_tick_duration_seconds_count") or 0) >= 1
    assert agent.get("/healthz") == 200 and agent.get("/readyz") == 200
    lines = agent.lines()
    about = [x for x in lines if "Rolling back" in str(x.get("msg", ""))]
    assert about and all(x.get("canary") == f"{NS}/{NAME}" for x in about)
    assert all({"ts", "level", "msg"} <= set(x) for x in lines), "every log line is JSON"


DASHBOARD = REPO / "grafana" / "kubectl-canary.json"


def _dashboard_queries() -> list[tuple[str, str]]:
    """(panel title, PromQL) for every target of the shipped dashboard, and its variables'
    queries, with the variables set to what a user picking this canary would choose."""
    board = json.loads(DASHBOARD.read_text())
    values = {"$namespace": NS, "$target": NAME}
    found = []
    for variable in board["templating"]["list"]:
        query = variable.get("query", "")
        if query.startswith("label_values("):
            # label_values(<selector>, <label>): the selector must find series.
            selector = query[len("label_values(") : query.rindex(",")]
            found.append((f"variable {variable['name']}", selector))
    for panel in board["panels"]:
        for target in panel["targets"]:
            found.append((panel["title"], target["expr"]))
    result = []
    for title, expr in found:
        for name, value in values.items():
            expr = expr.replace(name, value)
        result.append((title, expr))
    return result


def _dashboard_has_data(prom: PrometheusHandle) -> None:
    queries = _dashboard_queries()
    assert len(queries) >= 14

    def without_data() -> list[str]:
        empty = []
        for title, expr in queries:
            answer = prom.query(expr)
            assert answer.get("status") == "success", f"{title}: {expr}: {answer}"
            if not answer["data"]["result"]:
                empty.append(f"{title}: {expr}")
        return empty

    # rate() and increase() need two scrapes of a series; the release ended moments ago.
    deadline = time.monotonic() + 30
    empty = without_data()
    while empty and time.monotonic() < deadline:
        time.sleep(0.5)
        empty = without_data()
    assert empty == [], "dashboard panels without data:\n" + "\n".join(empty)
