"""`kubectl canary report`: the bundle's members, its redaction, its index of missing parts."""

from __future__ import annotations

import base64
import json
import zipfile
from pathlib import Path
from typing import Any

import pytest
import yaml

from kubectl_canary.resources import ForbiddenError
from tests.cli import samples

Obj = dict[str, Any]
AGENT_NS = "kubectl-canary"
AGENT = "kubectl-canary-agent"
POD = "kubectl-canary-agent-abc"
PASSWORD = "hunter2-very-secret"
METRICS = "# TYPE canary_ticks_total counter\ncanary_ticks_total 42\n"


def agent(fake) -> None:
    """The agent as a Deployment with one pod, its log and its /metrics."""
    labels = {"app.kubernetes.io/name": AGENT}
    container = {
        "name": "agent",
        "image": "ghcr.io/kubectl-canary/canary-agent:0.1.0",
        "ports": [{"name": "http-metrics", "containerPort": 8080}],
        "env": [{"name": "LOG_LEVEL", "value": "info"}, {"name": "API_TOKEN", "value": PASSWORD}],
    }
    fake.add(
        {
            "apiVersion": "apps/v1",
            "kind": "Deployment",
            "metadata": {"name": AGENT, "namespace": AGENT_NS},
            "spec": {
                "replicas": 1,
                "selector": {"matchLabels": labels},
                "template": {"metadata": {"labels": labels}, "spec": {"containers": [container]}},
            },
            "status": {"replicas": 1, "readyReplicas": 1},
        }
    )
    fake.add(
        {
            "apiVersion": "v1",
            "kind": "Pod",
            "metadata": {"name": POD, "namespace": AGENT_NS, "labels": labels},
            "spec": {"containers": [container]},
        }
    )
    fake.add(
        {
            "apiVersion": "coordination.k8s.io/v1",
            "kind": "Lease",
            "metadata": {"name": AGENT, "namespace": AGENT_NS},
            "spec": {"holderIdentity": f"{POD}_1", "renewTime": "2026-11-27T09:59:59.000000Z"},
        }
    )
    fake.pod_logs[(AGENT_NS, POD)] = ['{"ts": "2026-11-27T09:59:00Z", "msg": "tick"}']
    fake.texts[f"/api/v1/namespaces/{AGENT_NS}/pods/{POD}:8080/proxy/metrics"] = METRICS


def release(fake) -> None:
    """Canary test/mhs mid-release, with a metric template whose provider has a Secret."""
    c = samples.canary("mhs")
    c["spec"]["analysis"]["metrics"].append(
        {"name": "errors", "templateRef": {"name": "errors"}, "thresholdRange": {"max": 1}}
    )
    fake.add(c)
    target = samples.deployment("mhs", "ghcr.io/acme/mhs:1.1.3")
    target["metadata"]["managedFields"] = [{"manager": "kubectl", "operation": "Apply"}]
    target["metadata"]["annotations"] = {
        "kubectl.kubernetes.io/last-applied-configuration": json.dumps({"password": PASSWORD})
    }
    fake.add(target)
    fake.add(samples.deployment("mhs-primary", "ghcr.io/acme/mhs:1.1.2", app="mhs-primary"))
    fake.add(samples.virtual_service("mhs", 80))
    fake.add(samples.metric_template("errors", secret="prom-auth"))
    fake.add(
        {
            "apiVersion": "v1",
            "kind": "Secret",
            "metadata": {"name": "prom-auth", "namespace": "test"},
            "data": {
                "password": base64.b64encode(PASSWORD.encode()).decode(),
                "username": base64.b64encode(b"grafana").decode(),
            },
        }
    )
    for i, (kind, name) in enumerate([("Canary", "mhs"), ("Deployment", "mhs"), ("Pod", "x")]):
        fake.add(
            {
                "apiVersion": "v1",
                "kind": "Event",
                "metadata": {"name": f"e{i}", "namespace": "test"},
                "involvedObject": {"kind": kind, "name": name, "namespace": "test"},
                "reason": "Synced",
                "message": f"about {kind} {name}",
                "lastTimestamp": f"2026-11-27T09:5{9 - i}:00Z",
            }
        )


def bundle(path: Path) -> dict[str, str]:
    with zipfile.ZipFile(path) as zf:
        return {n: zf.read(n).decode() for n in zf.namelist()}


@pytest.fixture
def here(tmp_path, monkeypatch) -> Path:
    monkeypatch.chdir(tmp_path)
    return tmp_path


def test_bundle_members_in_order_with_an_index(run, fake, here):
    agent(fake)
    release(fake)
    result = run("report", "mhs")
    assert result.exit_code == 0, result.output
    name = "kubectl-canary-report-20261127T100000Z.zip"
    assert result.output.startswith(f"wrote {name} (")
    assert [p.name for p in here.iterdir()] == [name]  # no temporary file left
    with zipfile.ZipFile(here / name) as zf:
        members = zf.namelist()
    objects = "canaries/test/mhs/objects/test"
    assert members == [
        "README.txt",
        "agent/deployment.yaml",
        "agent/events.yaml",
        "agent/lease.yaml",
        "agent/logs/kubectl-canary-agent-abc.log",
        "agent/metrics/kubectl-canary-agent-abc.txt",
        "agent/pods/kubectl-canary-agent-abc.yaml",
        "canaries/test/mhs/canary.yaml",
        "canaries/test/mhs/events.yaml",
        f"{objects}/deployment/mhs-primary.yaml",
        f"{objects}/deployment/mhs.yaml",
        f"{objects}/metrictemplate/errors.yaml",
        f"{objects}/secret/prom-auth.yaml",
        f"{objects}/virtualservice/mhs.yaml",
        "doctor.json",
        "version.json",
    ]
    files = bundle(here / name)
    assert files["agent/metrics/kubectl-canary-agent-abc.txt"] == METRICS
    assert files["agent/logs/kubectl-canary-agent-abc.log"].endswith('"msg": "tick"}\n')
    events = yaml.safe_load(files["canaries/test/mhs/events.yaml"])
    assert [e["message"] for e in events] == ["about Deployment mhs", "about Canary mhs"]
    assert json.loads(files["version.json"])["server"] == "v1.32.0"
    assert any(c["name"] == "canary test/mhs" for c in json.loads(files["doctor.json"]))
    index = files["README.txt"]
    assert "Taken:      2026-11-27T10:00:00Z" in index
    assert "Scope:      canary mhs in namespace test (1 found)" in index
    for member in members[1:]:
        assert f"\n  {member}  " in index, member
    # What the Canary names but does not exist is listed, not silently left out.
    assert f"{objects}/service/mhs.yaml: not found" in index
    assert fake.writes == []
    again = here / "again.zip"
    assert run("report", "mhs", "-o", str(again)).exit_code == 0
    assert again.read_bytes() == (here / name).read_bytes()  # same cluster, same bytes


def test_secret_values_never_leave_the_cluster_unless_asked(run, fake, here):
    agent(fake)
    release(fake)
    assert run("report", "-A", "-o", "r.zip").exit_code == 0
    files = bundle(here / "r.zip")
    secret = yaml.safe_load(files["canaries/test/mhs/objects/test/secret/prom-auth.yaml"])
    assert secret["data"] == {"password": "<redacted>", "username": "<redacted>"}
    encoded = base64.b64encode(PASSWORD.encode()).decode()
    for member, text in files.items():
        assert PASSWORD not in text and encoded not in text, member
        assert "managedFields:" not in text, member
    pod = yaml.safe_load(files["agent/pods/kubectl-canary-agent-abc.yaml"])
    assert pod["spec"]["containers"][0]["env"] == [
        {"name": "LOG_LEVEL", "value": "info"},
        {"name": "API_TOKEN", "value": "<redacted>"},
    ]

    assert run("report", "-A", "-o", "with.zip", "--include-secrets").exit_code == 0
    files = bundle(here / "with.zip")
    secret = yaml.safe_load(files["canaries/test/mhs/objects/test/secret/prom-auth.yaml"])
    assert secret["data"]["password"] == encoded
    assert "values INCLUDED" in files["README.txt"]


def test_parts_that_cannot_be_read_are_listed_and_the_bundle_still_written(run, fake, here):
    release(fake)  # no agent installed
    fake.fail("list", "Event", ForbiddenError('events is forbidden: User "dev"', 403), times=None)
    result = run("report", "-o", "r.zip")  # the context's namespace: test
    assert result.exit_code == 0, result.output
    assert "parts not collected: see README.txt" in result.output
    index = bundle(here / "r.zip")["README.txt"]
    not_collected = index.split("Not collected:\n", 1)[1]
    assert "  agent: not installed in namespace kubectl-canary\n" in not_collected
    assert '  canaries/test/mhs/events.yaml: events is forbidden: User "dev"\n' in not_collected


def test_a_named_canary_that_does_not_exist_is_an_error_and_no_file(run, fake, here):
    result = run("report", "nope", "-o", "r.zip")
    assert result.exit_code == 1
    assert result.output == 'error: canary "nope" not found in namespace "test"\n'
    assert list(here.iterdir()) == []


def test_bad_flags_are_usage_errors(run, here):
    assert run("report", "mhs", "-A").exit_code == 2
    bad = run("report", "--logs-since", "soon")
    assert bad.exit_code == 2 and "--logs-since" in bad.output


def test_the_real_client_reads_metrics_text_through_the_pod_proxy(tmp_path):
    from kubectl_canary import kube
    from tests.cli.local_api import local_api

    with local_api() as api:
        api.answer = lambda seen: (200, METRICS.encode())
        config = tmp_path / "config"
        config.write_text(
            f"clusters: [{{name: c, cluster: {{server: '{api.url}'}}}}]\n"
            "users: [{name: u, user: {token: t}}]\n"
            "contexts: [{name: x, context: {cluster: c, user: u}}]\n"
            "current-context: x\n"
        )
        proxy = f"/api/v1/namespaces/{AGENT_NS}/pods/{POD}:8080/proxy/metrics"
        assert kube.connect(str(config)).get_text(proxy) == METRICS
        assert (api.last().method, api.last().path) == ("GET", proxy)


def test_an_unreachable_cluster_is_one_error_line_and_no_file(here):
    from click.testing import CliRunner

    from kubectl_canary.cli.main import cli
    from kubectl_canary.cli.options import Runtime

    config = here / "config"
    config.write_text(
        "clusters: [{name: c, cluster: {server: 'https://127.0.0.1:9'}}]\n"
        "users: [{name: u, user: {token: t}}]\n"
        "contexts: [{name: x, context: {cluster: c, user: u}}]\n"
        "current-context: x\n"
    )
    result = CliRunner().invoke(cli, ["report", "--kubeconfig", str(config)], obj=Runtime())
    assert result.exit_code == 1
    assert result.output.startswith("error: ") and result.output.count("\n") == 1
    assert [p.name for p in here.iterdir()] == ["config"]
