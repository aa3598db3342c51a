"""init / uninstall / doctor against the sandbox's API server (real HTTP, real label storage):
pruning when switching modes, uninstall's reach, doctor where SubjectAccessReview is not
served. `--no-wait`: the sandbox runs no pods, and these tests are about the objects."""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from click.testing import CliRunner, Result

from kubectl_canary.cli.main import cli
from kubectl_canary.cli.options import Runtime
from kubectl_canary.kube import Kube, connect

pytestmark = [pytest.mark.e2e]

RBAC = "rbac.authorization.k8s.io/v1"
AGENT = "kubectl-canary-agent"


@pytest.fixture(scope="module")
def sandbox(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    from kubectl_canary.sandbox.process import start_sandbox

    with start_sandbox(tmp_path_factory.mktemp("install-sandbox"), simulation=False) as sb:
        yield sb.kubeconfig


@pytest.fixture
def kube(sandbox: Path) -> Kube:
    return connect(str(sandbox))


@pytest.fixture
def run(sandbox: Path) -> Callable[..., Result]:
    def invoke(*args: str) -> Result:
        return CliRunner().invoke(cli, [*args, "--kubeconfig", str(sandbox)], obj=Runtime())

    return invoke


def bindings(kube: Kube) -> list[tuple[str, str]]:
    found = []
    for kind in ("ClusterRoleBinding", "RoleBinding"):
        for b in kube.list(RBAC, kind, None)[0]:
            if b["metadata"]["name"] == AGENT:
                found.append((kind, b["metadata"].get("namespace", "")))
    return sorted(found)


def test_switching_modes_prunes_and_uninstall_removes_what_init_made(run, kube):
    kube.create({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "a"}})
    kube.create({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "b"}})
    done = run("init", "--no-wait")
    assert done.exit_code == 0, done.output
    assert bindings(kube) == [("ClusterRoleBinding", "")]
    ns = kube.get("v1", "Namespace", "", "kubectl-canary")
    assert ns is not None
    assert ns["metadata"]["annotations"]["kubectl-canary.dev/created-by-init"] == "true"
    assert kube.get("networking.k8s.io/v1", "NetworkPolicy", "kubectl-canary", AGENT)
    assert kube.get("policy/v1", "PodDisruptionBudget", "kubectl-canary", AGENT)

    done = run("init", "--no-wait", "--watch-namespace", "a", "--watch-namespace", "b")
    assert done.exit_code == 0, done.output
    assert "clusterrolebinding/kubectl-canary-agent pruned" in done.stdout
    assert bindings(kube) == [("RoleBinding", "a"), ("RoleBinding", "b")]

    done = run("init", "--no-wait", "--watch-namespace", "a")
    assert "rolebinding/kubectl-canary-agent -n b pruned" in done.stdout
    assert bindings(kube) == [("RoleBinding", "a")]

    # A re-run keeps the watched namespaces; an empty one clears them.
    preview = run("init", "--dry-run", "--watch-namespace", "")
    assert "watch-namespace: a -> (all)" in preview.stderr
    assert "rolebinding/kubectl-canary-agent -n a would be pruned" in preview.stderr
    done = run("init", "--no-wait", "--watch-namespace", "")
    assert bindings(kube) == [("ClusterRoleBinding", "")]

    doctor = run("doctor", "-o", "json")
    (check,) = [c for c in json.loads(doctor.stdout) if c["name"] == "agent permissions"]
    assert check["result"] == "warn" and "SubjectAccessReview unavailable" in check["detail"]

    kube.create(
        {
            "apiVersion": RBAC,
            "kind": "RoleBinding",
            "metadata": {"name": "team", "namespace": "a"},
            "roleRef": {
                "apiGroup": "rbac.authorization.k8s.io",
                "kind": "ClusterRole",
                "name": "view",
            },
        }
    )
    done = run("uninstall")
    assert done.exit_code == 0, done.output
    assert bindings(kube) == []
    assert kube.get(RBAC, "RoleBinding", "a", "team")
    assert "namespace/kubectl-canary deleted" in done.stdout
    for api_version, kind in (
        ("apps/v1", "Deployment"),
        ("v1", "ServiceAccount"),
        ("networking.k8s.io/v1", "NetworkPolicy"),
        ("policy/v1", "PodDisruptionBudget"),
    ):
        names = [o["metadata"]["name"] for o in kube.list(api_version, kind, None)[0]]
        assert AGENT not in names, kind
