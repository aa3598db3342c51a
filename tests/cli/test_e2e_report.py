"""`kubectl canary report` through the real kubectl and client, on the sandbox with the real
agent (a local process): the bundle holds the Canary, its generated objects, the agent's log
and its live /metrics."""

from __future__ import annotations

import base64
import json
import zipfile
from collections.abc import Iterator

import pytest
import yaml

from tests.cli import samples
from tests.cli.kubectl_env import KubectlEnv, plugin_on_sandbox

pytestmark = [pytest.mark.e2e, pytest.mark.kubectl]

NS = "shop"
TOKEN_B64 = base64.b64encode(b"very-secret-token").decode()


@pytest.fixture(scope="module")
def cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[KubectlEnv]:
    with plugin_on_sandbox(tmp_path_factory.mktemp("e2e-report")) as env:
        yield env


def test_report_on_an_initialized_canary(cluster, tmp_path):
    cluster.apply(
        {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": NS}},
        {
            "apiVersion": "apps/v1",
            "kind": "Deployment",
            "metadata": {"name": "mhs", "namespace": NS},
            "spec": {
                "replicas": 1,
                "selector": {"matchLabels": {"app": "mhs"}},
                "template": {
                    "metadata": {"labels": {"app": "mhs"}},
                    "spec": {"containers": [{"name": "app", "image": "ghcr.io/acme/mhs:1.1.1"}]},
                },
            },
        },
        {
            "apiVersion": "v1",
            "kind": "Secret",
            "metadata": {"name": "prom-auth", "namespace": NS},
            "data": {"token": TOKEN_B64},
        },
        samples.metric_template("errors", NS, secret="prom-auth"),
    )
    cluster.ok("canary", "create", "mhs", "-n", NS, "--port", "9898", "--interval", "2s")
    patch = {
        "spec": {
            "analysis": {
                "metrics": [
                    {
                        "name": "errors",
                        "templateRef": {"name": "errors"},
                        "thresholdRange": {"max": 1},
                    }
                ]
            }
        }
    }
    cluster.ok(
        "patch", "canaries.kubectl-canary.dev", "mhs", "-n", NS, "--type=merge",
        "-p", json.dumps(patch),
    )  # fmt: skip
    cluster.poll(
        "initialisation",
        lambda: cluster.canary_status(NS, "mhs").get("phase") == "Initialized",
    )

    out = cluster.ok("canary", "report", "mhs", "-n", NS, "-o", str(tmp_path / "r.zip"))
    assert out.startswith(f"wrote {tmp_path / 'r.zip'} (")
    with zipfile.ZipFile(tmp_path / "r.zip") as zf:
        files = {n: zf.read(n).decode() for n in zf.namelist()}
    objects = "canaries/shop/mhs/objects/shop"
    for member in (
        "README.txt",
        "canaries/shop/mhs/canary.yaml",
        "canaries/shop/mhs/events.yaml",
        f"{objects}/deployment/mhs.yaml",
        f"{objects}/deployment/mhs-primary.yaml",
        f"{objects}/service/mhs.yaml",
        f"{objects}/service/mhs-primary.yaml",
        f"{objects}/service/mhs-canary.yaml",
        f"{objects}/metrictemplate/errors.yaml",
        f"{objects}/secret/prom-auth.yaml",
        "agent/lease.yaml",
        "agent/local-process.yaml",
        "agent/logs/local-process.log",
        "agent/metrics/local-process.txt",
        "doctor.json",
        "version.json",
    ):
        assert member in files, member
    assert "Initialization done! mhs.shop" in files["canaries/shop/mhs/events.yaml"]
    assert '"canary":"shop/mhs"' in files["agent/logs/local-process.log"]
    assert "# TYPE " in files["agent/metrics/local-process.txt"]
    secret = yaml.safe_load(files[f"{objects}/secret/prom-auth.yaml"])
    assert secret["data"] == {"token": "<redacted>"}
    assert not any(TOKEN_B64 in text for text in files.values())
    checks = {c["name"]: c["result"] for c in json.loads(files["doctor.json"])}
    assert checks["canary shop/mhs references"] == "ok"
