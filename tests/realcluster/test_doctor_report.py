"""doctor and report on a real API server, run by someone who may read the product's objects
but not Secrets: the real 403 becomes doctor's "cannot check (forbidden)" warning and a part
of the bundle listed as not collected, while an admin's run finds every reference."""

from __future__ import annotations

import json
import zipfile
from pathlib import Path

import pytest
import yaml

from tests.cli import samples
from tests.realcluster.bed import Bed, plain_canary

pytestmark = [pytest.mark.realcluster]

READ = ["get", "list"]


def reader_rbac(ns: str, role: str) -> list[dict[str, object]]:
    """A ServiceAccount that may read the product's objects cluster-wide, but no Secret."""
    rules = [
        {"apiGroups": ["kubectl-canary.dev"], "resources": ["*"], "verbs": READ},
        {
            "apiGroups": [""],
            "resources": ["pods", "services", "events", "configmaps", "serviceaccounts"],
            "verbs": READ,
        },
        {"apiGroups": ["apps"], "resources": ["deployments"], "verbs": READ},
        {"apiGroups": ["coordination.k8s.io"], "resources": ["leases"], "verbs": READ},
    ]
    return [
        {
            "apiVersion": "v1",
            "kind": "ServiceAccount",
            "metadata": {"name": "reader", "namespace": ns},
        },
        {
            "apiVersion": "rbac.authorization.k8s.io/v1",
            "kind": "ClusterRole",
            "metadata": {"name": role},
            "rules": rules,
        },
        {
            "apiVersion": "rbac.authorization.k8s.io/v1",
            "kind": "ClusterRoleBinding",
            "metadata": {"name": role},
            "roleRef": {
                "apiGroup": "rbac.authorization.k8s.io",
                "kind": "ClusterRole",
                "name": role,
            },
            "subjects": [{"kind": "ServiceAccount", "name": "reader", "namespace": ns}],
        },
    ]


def references(bed: Bed, ns: str, *kubeconfig: str) -> dict[str, object]:
    done = bed.kubectl("canary", "doctor", "-o", "json", *kubeconfig, check=False)
    checks = {c["name"]: c for c in json.loads(done.stdout)}
    return dict(checks[f"canary {ns}/web references"])


@pytest.mark.timeout(180)
def test_doctor_and_report_without_access_to_secrets(bed: Bed, ns: str, tmp_path: Path) -> None:
    canary = plain_canary(ns, "web")
    canary["spec"]["analysis"]["metrics"] = [
        {"name": "errors", "templateRef": {"name": "errors"}, "thresholdRange": {"max": 1}}
    ]
    deployment = samples.deployment("web", "ghcr.io/acme/web:1", namespace=ns)
    del deployment["status"]
    secret = {
        "apiVersion": "v1",
        "kind": "Secret",
        "metadata": {"name": "prom-auth", "namespace": ns},
        "stringData": {"token": "very-secret-token"},
    }
    objects = [deployment, secret, samples.metric_template("errors", ns, "prom-auth"), canary]
    role = f"{ns}-reader"
    bed.kubectl("apply", "-f", "-", input=yaml.safe_dump_all(objects + reader_rbac(ns, role)))
    try:
        assert references(bed, ns) == {
            "name": f"canary {ns}/web references",
            "result": "ok",
            "detail": "present: deployment/web, metrictemplate/errors, secret/prom-auth",
            "hint": "",
        }
        reader = ("--kubeconfig", str(bed.kubeconfig_for(ns, "reader")))
        limited = references(bed, ns, *reader)
        assert limited["result"] == "warn"
        assert limited["detail"] == (
            "secret/prom-auth (spec.analysis.metrics[0].templateRef provider.secretRef): "
            "cannot check (forbidden)"
        )

        target = tmp_path / "r.zip"
        done = bed.kubectl("canary", "report", "web", "-n", ns, "-o", str(target), *reader)
        assert done.stdout.startswith(f"wrote {target} (")
        with zipfile.ZipFile(target) as zf:
            members = zf.namelist()
            index = zf.read("README.txt").decode()
        home = f"canaries/{ns}/web"
        for member in (
            f"{home}/canary.yaml",
            f"{home}/events.yaml",
            f"{home}/objects/{ns}/deployment/web.yaml",
            f"{home}/objects/{ns}/metrictemplate/errors.yaml",
            "doctor.json",
        ):
            assert member in members, member
        not_collected = index.split("Not collected:\n", 1)[1]
        assert f"  {home}/objects/{ns}/secret/prom-auth.yaml: " in not_collected
        line = next(x for x in not_collected.splitlines() if "secret/prom-auth" in x)
        assert "forbidden" in line
    finally:
        bed.kubectl("delete", "clusterrolebinding,clusterrole", role, "--ignore-not-found")
