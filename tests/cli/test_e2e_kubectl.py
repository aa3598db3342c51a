"""`kubectl canary ...` through the real kubectl, against the sandbox and the real agent.

kubectl finds the plugin as `kubectl-canary` on PATH (a shim running this checkout), exactly
as after a krew install; the agent runs as a local process (`init --agent-process`), since the
sandbox has no kubelet. One sandbox and agent serve the whole module to keep it lean.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Iterator

import pytest

from kubectl_canary import __version__
from kubectl_canary.cli.completion import KUBECTL_SCRIPT
from tests.cli.kubectl_env import ROOT, STATUS_ALL_COLUMNS, KubectlEnv, plugin_on_sandbox

pytestmark = [pytest.mark.e2e, pytest.mark.kubectl]

NS = "shop"


def deployment(tag: str) -> str:
    return json.dumps(
        {
            "apiVersion": "apps/v1",
            "kind": "Deployment",
            "metadata": {"name": "mhs", "namespace": NS},
            "spec": {
                "replicas": 2,
                "selector": {"matchLabels": {"app": "mhs"}},
                "template": {
                    "metadata": {"labels": {"app": "mhs"}},
                    "spec": {"containers": [{"name": "app", "image": f"ghcr.io/acme/mhs:{tag}"}]},
                },
            },
        }
    )


class Env(KubectlEnv):
    def phase(self) -> str:
        return str(self.canary_status(NS, "mhs").get("phase", ""))


@pytest.fixture(scope="module")
def cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Env]:
    tmp = tmp_path_factory.mktemp("e2e-kubectl")
    with plugin_on_sandbox(tmp, Env) as e:
        completion = tmp / "bin" / "kubectl_complete-canary"
        completion.write_text(KUBECTL_SCRIPT)
        completion.chmod(0o755)
        yield e


def test_plugin_and_agent_versions(cluster):
    out = cluster.ok("canary", "version")
    assert f"Plugin version: {__version__}" in out
    assert f"Agent version:  {__version__} (local process" in out


def test_release_story(cluster):
    cluster.ok(
        "apply",
        "-f",
        "-",
        input=json.dumps({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": NS}}),
    )
    cluster.ok("apply", "-f", "-", input=deployment("1.1.1"))
    out = cluster.ok(
        "canary",
        "create",
        "mhs",
        "-n",
        NS,
        "--port",
        "9898",
        "--interval",
        "2s",
        "--step-weight",
        "25",
        "--max-weight",
        "50",
    )
    assert out == "canary.kubectl-canary.dev/mhs created\n"
    cluster.poll("initialisation", lambda: cluster.phase() == "Initialized")
    cluster.ok("apply", "-f", "-", input=deployment("1.1.2"))
    waited = cluster.run("canary", "status", "mhs", "-n", NS, "--wait", "--timeout", "90")
    assert waited.returncode == 0, waited.stderr
    assert "succeeded: Promotion completed! Scaling down mhs.shop" in waited.stdout
    table = cluster.ok("canary", "status", "-A").splitlines()
    assert table[0].split() == STATUS_ALL_COLUMNS
    assert table[1].split()[:5] == [NS, "mhs", "Succeeded", "0", "0/5"]
    detail = cluster.ok("canary", "status", "mhs", "-n", NS)
    assert "ghcr.io/acme/mhs:1.1.2   2/2" in detail
    assert "Advance mhs.shop canary weight 25" in detail
    logs = cluster.ok("canary", "logs", "mhs", "-n", NS)
    assert "Promotion completed! Scaling down mhs.shop" in logs
    assert all("[" not in line.split(" ")[2] for line in logs.splitlines())  # one canary only
    # kubectl's own view of the same object (printer columns from the CRD).
    assert "Succeeded" in cluster.ok("get", "canaries.kubectl-canary.dev", "-n", NS)


def test_steering_a_release(cluster):
    refused = cluster.run("canary", "retry", "mhs", "-n", NS)
    assert refused.returncode == 1
    assert refused.stderr == (
        "error: canary mhs is Succeeded, not Failed: retry re-runs the analysis of a failed "
        "revision\n"
    )
    # Ten steps of 2 s: pause, resume and abort (a plugin start each) land mid-release even on
    # a loaded machine; two steps left no time for them.
    smaller_steps = '{"spec":{"analysis":{"stepWeight":5,"maxWeight":50}}}'
    cluster.ok(
        "patch", "canaries.kubectl-canary.dev", "mhs", "-n", NS, "--type=merge", "-p", smaller_steps
    )
    cluster.ok("apply", "-f", "-", input=deployment("1.1.3"))
    cluster.poll("the new release", lambda: cluster.phase() == "Progressing")
    paused = cluster.ok("canary", "pause", "mhs", "-n", NS)
    assert paused.startswith("canary mhs: pause accepted")
    assert "Progressing (paused)" in cluster.ok("canary", "status", "-n", NS)
    assert cluster.ok("canary", "resume", "mhs", "-n", NS).startswith("canary mhs: resume accepted")
    assert cluster.ok("canary", "abort", "mhs", "-n", NS).startswith("canary mhs: abort accepted")
    cluster.poll("the rollback", lambda: cluster.phase() == "Failed")
    failed = cluster.run("canary", "status", "mhs", "-n", NS, "--wait", "--timeout", "30")
    # Progress lines come first on stderr; the outcome is the last line.
    assert failed.returncode == 1, failed.stderr
    assert failed.stderr.splitlines()[-1].startswith("error: canary mhs failed: "), failed.stderr


def test_expected_failures_are_one_line(cluster):
    missing = cluster.run("canary", "status", "nope", "-n", NS)
    assert (missing.returncode, missing.stdout) == (1, "")
    assert missing.stderr == 'error: canary "nope" not found in namespace "shop"\n'
    nowhere = cluster.run("canary", "status", "--kubeconfig", "/nonexistent/config")
    assert nowhere.returncode == 1
    assert nowhere.stderr == "error: kubeconfig /nonexistent/config does not exist\n"


def test_kubectl_completes_the_plugin(cluster):
    out = cluster.ok("__complete", "canary", "st")
    assert out.splitlines()[0].startswith("status\t")
    names = cluster.ok("__complete", "canary", "abort", "-n", NS, "m")
    assert "mhs" in names.splitlines()


def test_doctor_is_happy(cluster):
    out = cluster.run("canary", "doctor")
    assert out.returncode == 0, out.stdout + out.stderr
    assert "ok       leader" in out.stdout


def test_offboard_hands_the_app_back(cluster):
    plan = cluster.ok("canary", "offboard", "mhs", "-n", NS, "--dry-run")
    assert "restore deployment mhs from mhs-primary (ghcr.io/acme/mhs:1.1.2)" in plan
    cluster.ok("canary", "offboard", "mhs", "-n", NS, "--timeout", "60")
    dep = json.loads(cluster.ok("get", "deployment", "mhs", "-n", NS, "-o", "json"))
    assert dep["spec"]["template"]["spec"]["containers"][0]["image"] == "ghcr.io/acme/mhs:1.1.2"
    assert dep["status"]["readyReplicas"] == 2
    svc = json.loads(cluster.ok("get", "service", "mhs", "-n", NS, "-o", "json"))
    assert svc["spec"]["selector"] == {"app": "mhs"}
    gone = cluster.run("get", "deployment", "mhs-primary", "-n", NS)
    assert gone.returncode != 0 and "NotFound" in gone.stderr
    left = cluster.ok("get", "canaries.kubectl-canary.dev", "-A", "-o", "json")
    assert json.loads(left)["items"] == []


@pytest.mark.timeout(240)
def test_demo_tells_the_story(tmp_path):
    """The demo on its own sandbox (the sandbox's query endpoint, to stay independent of
    Prometheus here): install, a good release promoted, a bad one rolled back."""
    done = subprocess.run(
        [
            sys.executable,
            "-c",
            "from kubectl_canary.cli.main import main; main()",
            "demo",
            "--interval",
            "2s",
            "--no-prometheus",
        ],
        env={**os.environ, "PYTHONPATH": str(ROOT), "HOME": str(tmp_path)},
        capture_output=True,
        text=True,
        timeout=230,
    )
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    out = done.stdout
    assert "the sandbox itself answers the built-in queries" in out
    assert "Promotion completed! Scaling down mhs.application" in out
    assert "Rolling back mhs.application failed checks threshold reached 3" in out
    assert out.index("Promotion completed") < out.index("Rolling back")
    assert "ghcr.io/stefanprodan/podinfo:1.1.2   2/2" in out  # 1.1.2 keeps serving


def test_offboard_of_an_istio_canary_removes_the_routing_it_made(cluster):
    web = json.loads(deployment("2.0.0").replace('"mhs"', '"web"').replace(NS, "mesh"))
    cluster.ok(
        "apply",
        "-f",
        "-",
        input=json.dumps({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "mesh"}}),
    )
    cluster.ok("apply", "-f", "-", input=json.dumps(web))
    cluster.ok(
        "canary",
        "create",
        "web",
        "-n",
        "mesh",
        "--port",
        "8080",
        "--provider",
        "istio",
        "--interval",
        "2s",
    )

    cluster.poll(
        "initialisation",
        lambda: cluster.canary_status("mesh", "web").get("phase") == "Initialized",
    )
    assert (
        cluster.run("get", "virtualservices.networking.istio.io", "web", "-n", "mesh").returncode
        == 0
    )
    out = cluster.ok("canary", "offboard", "web", "-n", "mesh", "--timeout", "60")
    assert "[4/6] hand VirtualService web back" in out
    for kind, name in [
        ("virtualservices.networking.istio.io", "web"),
        ("destinationrules.networking.istio.io", "web-primary"),
        ("destinationrules.networking.istio.io", "web-canary"),
        ("services", "web-canary"),
        ("deployments", "web-primary"),
    ]:
        gone = cluster.run("get", kind, name, "-n", "mesh")
        assert gone.returncode != 0 and "NotFound" in gone.stderr, (kind, name)
    svc = json.loads(cluster.ok("get", "service", "web", "-n", "mesh", "-o", "json"))
    assert svc["spec"]["selector"] == {"app": "web"}
    assert "ownerReferences" not in svc["metadata"]
