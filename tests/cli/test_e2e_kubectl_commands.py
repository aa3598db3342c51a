"""Every plugin command not covered by test_e2e_kubectl.py, through the real kubectl, against the
sandbox and the real agent: create (--dry-run and real), convert, promote (plain and
--skip-analysis), refused requests, status --wait on success and failure, status -A in every
format, logs (one canary, --since), a second init, and uninstall (refused, then --force).

One sandbox and agent serve the module, and the tests run in file order as one story on two
apps in namespace `shop`: `web` (created with `create`, released three times: promoted on
request mid-analysis, promoted with --skip-analysis, then a version failing half its requests)
and `api` (from a converted Flagger manifest). Metrics come from the sandbox's own query
endpoint, which needs no Prometheus.
"""

from __future__ import annotations

import json
import math
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest
import yaml

from kubectl_canary.api.model import API_VERSION
from kubectl_canary.api.validate import validate_canary
from tests.cli.kubectl_env import (
    CANARY,
    STATUS_ALL_COLUMNS,
    KubectlEnv,
    init_command,
    install_plugin,
    local_agent,
    plugin_environment,
    require_kubectl,
    sandbox_traffic,
    stop_agent,
)

if TYPE_CHECKING:
    from kubectl_canary.cli.agent_info import LocalAgent

pytestmark = [pytest.mark.e2e, pytest.mark.kubectl]

NS = "shop"
IMAGE = "ghcr.io/acme/"
BAD_TAG = "1.1.4"  # fails half of its requests (sandbox traffic profile)
SPEED = 5  # simulated seconds per real second: pods get ready in 0.4 s
CREATE_FLAGS = (
    "-n",
    NS,
    "--port",
    "9898",
    "--interval",
    "3s",
    "--threshold",
    "2",
    "--step-weight",
    "10",
    "--max-weight",
    "50",
    "--success-rate",
    "99",
)
FLAGGER_MANIFEST = f"""\
apiVersion: flagger.app/v1beta1
kind: Canary
metadata:
  name: api
  namespace: {NS}
spec:
  provider: kubernetes
  targetRef: {{apiVersion: apps/v1, kind: Deployment, name: api}}
  progressDeadlineSeconds: 60
  service:
    port: 9898
    targetPort: 9898
  analysis:
    interval: 3s
    threshold: 2
    maxWeight: 50
    stepWeight: 25
    sessionAffinity: {{cookieName: flagger-cookie}}
    metrics:
      - name: request-success-rate
        thresholdRange: {{min: 99}}
        interval: 1m
---
apiVersion: v1
kind: ConfigMap
metadata: {{name: api-settings, namespace: {NS}}}
data: {{mode: canary}}
"""


@dataclass
class Setup:
    k: KubectlEnv
    kubeconfig: Path
    init_args: tuple[str, ...]
    agents: list[LocalAgent | None] = field(default_factory=list)


def deployment(name: str, tag: str) -> dict[str, Any]:
    return {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {"name": name, "namespace": NS},
        "spec": {
            "replicas": 2,
            "selector": {"matchLabels": {"app": name}},
            "template": {
                "metadata": {"labels": {"app": name}},
                "spec": {"containers": [{"name": "app", "image": f"{IMAGE}{name}:{tag}"}]},
            },
        },
    }


@pytest.fixture(scope="module")
def setup(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Setup]:
    from kubectl_canary.sandbox.process import start_sandbox

    kubectl = require_kubectl()
    tmp = tmp_path_factory.mktemp("e2e-kubectl-commands")
    install_plugin(tmp / "bin")
    with start_sandbox(tmp / "sandbox", speed=SPEED) as sandbox:
        k = KubectlEnv(plugin_environment(tmp / "bin", sandbox.kubeconfig), kubectl)
        init_args = init_command(tmp, metrics_server=f"{sandbox.url}/sandbox/prometheus")
        s = Setup(k, sandbox.kubeconfig, init_args)
        try:
            k.ok(*init_args)
            s.agents.append(local_agent(sandbox.kubeconfig))
            k.apply(
                {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": NS}},
                sandbox_traffic([(NS, "web"), (NS, "api")], 20, {BAD_TAG: {"errorRate": 0.5}}),
                deployment("web", "1.1.1"),
                deployment("api", "1.1.1"),
            )
            yield s
        finally:
            # `uninstall` stops the agent itself; these are for a run that stopped earlier.
            for agent in s.agents:
                stop_agent(agent)


def phase(k: KubectlEnv, name: str) -> str:
    return str(k.canary_status(NS, name).get("phase", ""))


def history(k: KubectlEnv, name: str) -> list[str]:
    return [h["message"] for h in k.canary_status(NS, name).get("history", [])]


def primary_image(k: KubectlEnv, name: str) -> str:
    dep = k.get("deployment", f"{name}-primary", NS)
    assert dep is not None, f"{name}-primary missing"
    return str(dep["spec"]["template"]["spec"]["containers"][0]["image"])


def assert_one_error_line(done: Any) -> None:
    """An expected failure: exit 1, nothing on stdout, one `error:` line on stderr."""
    assert done.returncode == 1, (done.returncode, done.stdout, done.stderr)
    assert done.stdout == ""
    assert done.stderr.startswith("error: ") and done.stderr.count("\n") == 1, done.stderr
    assert "Traceback" not in done.stderr


def test_create_dry_run_then_create(setup: Setup) -> None:
    k = setup.k
    dry = k.run("canary", "create", "web", *CREATE_FLAGS, "--dry-run", "-o", "yaml")
    assert dry.returncode == 0, dry.stderr
    doc = yaml.safe_load(dry.stdout)
    assert (doc["apiVersion"], doc["kind"]) == (API_VERSION, "Canary")
    assert doc["metadata"] == {"name": "web", "namespace": NS}
    assert validate_canary(doc) == []
    assert doc["spec"]["analysis"] == {
        "interval": "3s",
        "threshold": 2,
        "maxWeight": 50,
        "stepWeight": 10,
        "metrics": [
            {"name": "request-success-rate", "thresholdRange": {"min": 99.0}, "interval": "1m"}
        ],
    }
    assert k.get(CANARY, "web", NS) is None, "--dry-run must create nothing"

    assert (
        k.ok("canary", "create", "web", *CREATE_FLAGS) == "canary.kubectl-canary.dev/web created\n"
    )
    live = k.get(CANARY, "web", NS)
    assert live is not None
    # What the dry run printed is what was created (the CRD's defaults come on top).
    assert {key: live["spec"]["analysis"][key] for key in doc["spec"]["analysis"]} == doc["spec"][
        "analysis"
    ]
    assert live["spec"]["targetRef"] == doc["spec"]["targetRef"]
    k.poll("web Initialized", lambda: phase(k, "web") == "Initialized")
    assert_one_error_line(k.run("canary", "create", "web", *CREATE_FLAGS))  # already exists


def test_convert_a_flagger_canary(setup: Setup, tmp_path: Path) -> None:
    k = setup.k
    source = tmp_path / "flagger.yaml"
    source.write_text(FLAGGER_MANIFEST)
    done = k.run("canary", "convert", "-f", str(source))
    assert done.returncode == 0, done.stderr
    assert done.stderr == (
        "warning: Canary api: spec.analysis.sessionAffinity: not supported, dropped\n"
    )
    canary, other = yaml.safe_load_all(done.stdout)
    flagger, flagger_other = yaml.safe_load_all(FLAGGER_MANIFEST)
    assert (canary["apiVersion"], canary["kind"]) == (API_VERSION, "Canary")
    assert validate_canary(canary) == []
    assert "sessionAffinity" not in canary["spec"]["analysis"]
    assert canary["spec"]["targetRef"] == flagger["spec"]["targetRef"]
    assert other == flagger_other, "documents that are not Flagger's are copied unchanged"
    # The result is what our CRD and agent accept: apply it and watch it initialise.
    k.ok("apply", "-f", "-", input=done.stdout)
    k.poll("api Initialized", lambda: phase(k, "api") == "Initialized")


def test_promote_during_the_analysis(setup: Setup) -> None:
    k = setup.k
    k.apply(deployment("web", "1.1.2"))

    def analysing() -> bool:
        status = k.canary_status(NS, "web")
        return status.get("phase") == "Progressing" and status.get("canaryWeight", 0) > 0

    k.poll("web's analysis to start", analysing)
    done = k.run("canary", "promote", "web", "-n", NS)
    assert (done.returncode, done.stderr) == (0, "")
    assert done.stdout == (
        f"canary web: promote accepted: Promote requested: checks passed, promoting web.{NS} now\n"
    )
    waited = k.run("canary", "status", "web", "-n", NS, "--wait", "--timeout", "90")
    assert waited.returncode == 0, waited.stdout + waited.stderr
    assert f"Promotion completed! Scaling down web.{NS}" in waited.stdout
    assert primary_image(k, "web") == f"{IMAGE}web:1.1.2"
    # Promoted before the last step: the remaining steps were skipped.
    assert f"Advance web.{NS} canary weight 50" not in history(k, "web")

    # A request that makes no sense now: refused in one line, nothing written.
    refused = k.run("canary", "retry", "web", "-n", NS)
    assert_one_error_line(refused)
    assert "Succeeded, not Failed" in refused.stderr


def test_promote_skipping_the_analysis(setup: Setup) -> None:
    k = setup.k
    k.apply(deployment("web", "1.1.3"))
    k.poll("web's new release", lambda: phase(k, "web") == "Progressing")
    done = k.run("canary", "promote", "web", "-n", NS, "--skip-analysis")
    assert (done.returncode, done.stderr) == (0, "")
    assert done.stdout == (
        f"canary web: promote accepted: Promote requested: promoting web.{NS} without analysis\n"
    )
    waited = k.run("canary", "status", "web", "-n", NS, "--wait", "--timeout", "90")
    assert waited.returncode == 0, waited.stdout + waited.stderr
    assert primary_image(k, "web") == f"{IMAGE}web:1.1.3"
    assert f"Promotion completed! Canary analysis was skipped for web.{NS}" in history(k, "web")


def test_status_wait_fails_when_the_release_fails(setup: Setup) -> None:
    k = setup.k
    k.apply(deployment("web", BAD_TAG))
    k.poll("web's bad release", lambda: phase(k, "web") == "Progressing")
    refused = k.run("canary", "resume", "web", "-n", NS)  # running, not paused
    assert_one_error_line(refused)
    assert "not paused" in refused.stderr
    waited = k.run("canary", "status", "web", "-n", NS, "--wait", "--timeout", "90")
    # One progress line per phase change and step on stderr, then the outcome naming the
    # failing check with its value and threshold.
    assert (waited.returncode, waited.stdout) == (1, ""), waited.stderr
    *progress, outcome = waited.stderr.splitlines()
    assert outcome.startswith("error: canary web failed: request-success-rate "), outcome
    assert "< 99% (2 of 2 failed checks)" in outcome
    assert progress and all(" web  " in line for line in progress), progress
    assert phase(k, "web") == "Failed"
    assert f"Rolling back web.{NS} failed checks threshold reached 2" in history(k, "web")
    assert primary_image(k, "web") == f"{IMAGE}web:1.1.3", "the previous version keeps serving"


def test_status_of_all_namespaces_in_every_format(setup: Setup) -> None:
    k = setup.k
    expected = {(NS, "api"): "Initialized", (NS, "web"): "Failed"}

    def phases(listing: dict[str, Any]) -> dict[tuple[str, str], str]:
        assert listing["kind"] == "List"
        return {
            (i["metadata"]["namespace"], i["metadata"]["name"]): i["status"]["phase"]
            for i in listing["items"]
        }

    as_json = json.loads(k.ok("canary", "status", "-A", "-o", "json"))
    assert phases(as_json) == expected
    assert {i["apiVersion"] for i in as_json["items"]} == {API_VERSION}
    assert phases(yaml.safe_load(k.ok("canary", "status", "-A", "-o", "yaml"))) == expected

    wide = k.ok("canary", "status", "-A", "-o", "wide").splitlines()
    assert wide[0].split() == [*STATUS_ALL_COLUMNS, "TARGET", "PROVIDER", "MESSAGE"]
    rows = {line.split()[1]: line for line in wide[1:]}
    assert sorted(rows) == ["api", "web"]
    assert rows["web"].split()[:5] == [NS, "web", "Failed", "0", "2/2"]
    assert f"Canary failed! Scaling down web.{NS}" in rows["web"]
    assert rows["api"].split()[2] == "Initialized"


def test_logs_of_one_canary_and_since(setup: Setup) -> None:
    k = setup.k
    raw = k.ok("canary", "logs", "web", "-n", NS, "-o", "json")
    mine = [json.loads(line) for line in raw.splitlines()]
    assert mine and {d.get("canary") for d in mine} == {f"{NS}/web"}
    namespace = k.ok("canary", "logs", "-n", NS, "-o", "json").splitlines()
    assert {json.loads(line).get("canary") for line in namespace} == {f"{NS}/web", f"{NS}/api"}
    human = k.ok("canary", "logs", "web", "-n", NS)
    assert f"Rolling back web.{NS} failed checks threshold reached 2" in human
    assert f"api.{NS}" not in human

    # --since: a cutoff between the first and the last line. The command takes "now" from its
    # own clock, somewhere between `before` and `after`, so a line is judged only where that
    # makes no difference.
    stamped = [(datetime.fromisoformat(d["ts"]), d) for d in mine]
    before = datetime.now(UTC)
    seconds = math.ceil((before - max(ts for ts, _ in stamped)).total_seconds()) + 10
    since = timedelta(seconds=seconds)
    older = [d for ts, d in stamped if ts < before - since]
    assert older, f"the log must span more than {seconds}s for this test: {stamped[0][0]}"
    recent = k.ok("canary", "logs", "web", "-n", NS, "--since", f"{seconds}s", "-o", "json")
    after = datetime.now(UTC)
    shown = [json.loads(line) for line in recent.splitlines()]
    assert all(datetime.fromisoformat(d["ts"]) >= before - since for d in shown)
    newest = [d for ts, d in stamped if ts >= after - since]
    assert newest and all(d in shown for d in newest)
    assert not any(d in shown for d in older)


def test_init_again_changes_nothing(setup: Setup) -> None:
    k = setup.k
    done = k.run(*setup.init_args)
    assert done.returncode == 0, done.stdout + done.stderr
    setup.agents.append(local_agent(setup.kubeconfig))
    applied = [
        line
        for line in done.stdout.splitlines()
        if line.endswith((" unchanged", " configured", " created"))
    ]
    assert f"customresourcedefinition/{CANARY} unchanged" in applied, done.stdout
    assert all(line.endswith(" unchanged") for line in applied), applied
    assert "Traceback" not in done.stderr
    # With --agent-process, init restarts the agent (so new flags take effect): the new one
    # leads, and finds the canaries as they were.
    before, after = setup.agents[-2], setup.agents[-1]
    assert before is not None and after is not None and after.pid != before.pid
    assert after.alive() and not before.alive()
    # init waits until the new agent holds the Lease; doctor finds everything healthy.
    checks = [line.split() for line in k.ok("canary", "doctor").splitlines()]
    assert ["ok", "leader", after.identity, "(the local process)"] in [
        [*c[:3], " ".join(c[3:])] for c in checks if len(c) > 3
    ], checks
    assert (phase(k, "web"), phase(k, "api")) == ("Failed", "Initialized")


def test_uninstall_refuses_then_force_removes_everything(setup: Setup) -> None:
    k = setup.k
    agent = local_agent(setup.kubeconfig)
    assert agent is not None and agent.alive()
    assert_one_error_line(k.run("canary", "uninstall"))
    assert k.get("crd", CANARY) is not None, "a refused uninstall must delete nothing"
    assert agent.alive()

    done = k.run("canary", "uninstall", "--force", "--timeout", "30")
    assert done.returncode == 0, done.stdout + done.stderr
    assert f"canary/{NS}/web handed back and deleted" in done.stdout
    assert done.stdout.endswith("kubectl-canary uninstalled\n")
    crds = k.ok("get", "crd", "-o", "name")
    assert "canaries.kubectl-canary.dev" not in crds
    assert "metrictemplates.kubectl-canary.dev" not in crds
    k.poll("the agent process to exit", lambda: not agent.alive(), timeout=30)
