"""Real kubectl (v1.32) against the sandbox: the commands users and scripts run."""

from __future__ import annotations

import json
import threading
import urllib.request
import uuid
from collections.abc import Iterator

import pytest

from kubectl_canary.sandbox.process import SandboxHandle

from .conftest import KubectlRunner

pytestmark = pytest.mark.kubectl

DEPLOYMENT = """
apiVersion: apps/v1
kind: Deployment
metadata:
  name: web
  labels: {{app: web}}
spec:
  replicas: 2
  selector: {{matchLabels: {{app: web}}}}
  template:
    metadata: {{labels: {{app: web}}}}
    spec:
      containers:
      - name: web
        image: {image}
        env: [{{name: MODE, value: "{mode}"}}]
---
apiVersion: v1
kind: Service
metadata: {{name: web}}
spec:
  selector: {{app: web}}
  ports: [{{port: 80, targetPort: 8080}}]
"""

CANARY = """
apiVersion: kubectl-canary.dev/v1alpha1
kind: Canary
metadata: {{name: web}}
spec:
  provider: {provider}
  targetRef: {{apiVersion: apps/v1, kind: Deployment, name: web}}
  service: {{port: 80}}
  analysis: {{interval: 1m, threshold: 5, maxWeight: 50, stepWeight: 10}}
"""


@pytest.fixture
def ns(kubectl: KubectlRunner) -> Iterator[str]:
    name = f"k-{uuid.uuid4().hex[:8]}"
    kubectl(
        "apply", "-f", "-", input=f"apiVersion: v1\nkind: Namespace\nmetadata: {{name: {name}}}\n"
    )
    try:
        yield name
    finally:
        kubectl("delete", "namespace", name, "--wait=false")


def get_json(kubectl: KubectlRunner, ns: str, *what: str) -> dict:
    return json.loads(kubectl("get", *what, "-n", ns, "-o", "json").stdout)


def test_api_resources_from_discovery(kubectl: KubectlRunner) -> None:
    out = kubectl("api-resources", "-o", "name").stdout.split()
    for resource in (
        "deployments.apps",
        "canaries.kubectl-canary.dev",
        "virtualservices.networking.istio.io",
        "httproutes.gateway.networking.k8s.io",
        "namespaces",
    ):
        assert resource in out
    wide = kubectl("api-resources", "--api-group=apps").stdout
    assert "deploy" in wide and "Deployment" in wide


def test_apply_reapply_and_get(kubectl: KubectlRunner, ns: str) -> None:
    out = kubectl("apply", "-n", ns, "-f", "-", input=DEPLOYMENT.format(image="web:1", mode="a"))
    assert "deployment.apps/web created" in out.stdout
    out = kubectl("apply", "-n", ns, "-f", "-", input=DEPLOYMENT.format(image="web:2", mode="b"))
    assert "deployment.apps/web configured" in out.stdout
    assert "service/web unchanged" in out.stdout
    dep = get_json(kubectl, ns, "deployment", "web")
    container = dep["spec"]["template"]["spec"]["containers"][0]
    assert (container["image"], container["env"]) == ("web:2", [{"name": "MODE", "value": "b"}])
    assert dep["metadata"]["generation"] == 2
    assert "kubectl.kubernetes.io/last-applied-configuration" in dep["metadata"]["annotations"]
    table = kubectl("get", "deploy", "-n", ns, "-o", "wide").stdout
    assert table.split("\n")[0].split()[:4] == ["NAME", "READY", "UP-TO-DATE", "AVAILABLE"]
    assert "web:2" in table
    yaml_out = kubectl("get", "svc", "web", "-n", ns, "-o", "yaml").stdout
    assert "clusterIP:" in yaml_out


def test_server_side_apply_creates_then_merges(kubectl: KubectlRunner, ns: str) -> None:
    kubectl("apply", "--server-side", "-n", ns, "-f", "-", input=CANARY.format(provider="istio"))
    kubectl(
        "apply", "--server-side", "-n", ns, "-f", "-", input=CANARY.format(provider="kubernetes")
    )
    canary = get_json(kubectl, ns, "canary", "web")
    assert canary["spec"]["provider"] == "kubernetes"
    assert canary["spec"]["progressDeadlineSeconds"] == 600  # CRD default applied


def test_custom_resource_validation_errors(kubectl: KubectlRunner, ns: str) -> None:
    bad = kubectl("apply", "-n", ns, "-f", "-", input=CANARY.format(provider="nope"), check=False)
    assert bad.returncode != 0
    assert 'The Canary "web" is invalid' in bad.stderr
    assert "spec.provider: Unsupported value" in bad.stderr
    kubectl("apply", "-n", ns, "-f", "-", input=CANARY.format(provider="istio"))
    smp = kubectl(
        "patch", "canary", "web", "-n", ns, "-p", '{"spec":{"provider":"kubernetes"}}', check=False
    )
    assert smp.returncode != 0
    assert "application/strategic-merge-patch+json is not supported" in smp.stderr
    table = kubectl("get", "canaries", "-n", ns).stdout
    assert table.split("\n")[0].split()[:3] == ["NAME", "STATUS", "WEIGHT"]


def test_patch_types_scale_label_annotate(kubectl: KubectlRunner, ns: str) -> None:
    kubectl("apply", "-n", ns, "-f", "-", input=DEPLOYMENT.format(image="web:1", mode="a"))
    kubectl("patch", "deploy", "web", "-n", ns, "--type", "merge", "-p", '{"spec":{"paused":true}}')
    kubectl(
        "patch",
        "deploy",
        "web",
        "-n",
        ns,
        "--type",
        "json",
        "-p",
        '[{"op":"test","path":"/spec/replicas","value":2},'
        '{"op":"replace","path":"/spec/replicas","value":3}]',
    )
    failed = kubectl(
        "patch",
        "deploy",
        "web",
        "-n",
        ns,
        "--type",
        "json",
        "-p",
        '[{"op":"test","path":"/spec/replicas","value":2}]',
        check=False,
    )
    assert failed.returncode != 0 and "testing value /spec/replicas failed" in failed.stderr
    sidecar = '{"spec":{"template":{"spec":{"containers":[{"name":"proxy","image":"proxy:1"}]}}}}'
    kubectl("patch", "deploy", "web", "-n", ns, "--type", "strategic", "-p", sidecar)
    kubectl("scale", "deploy", "web", "-n", ns, "--replicas=5")
    kubectl("label", "deploy", "web", "-n", ns, "tier=front")
    kubectl("annotate", "deploy", "web", "-n", ns, "owner=team-a")
    dep = get_json(kubectl, ns, "deployment", "web")
    assert dep["spec"]["paused"] is True
    assert dep["spec"]["replicas"] == 5
    assert [c["name"] for c in dep["spec"]["template"]["spec"]["containers"]] == ["web", "proxy"]
    assert dep["metadata"]["labels"]["tier"] == "front"
    assert dep["metadata"]["annotations"]["owner"] == "team-a"
    names = kubectl("get", "deploy", "-n", ns, "-l", "tier=front", "-o", "name").stdout.split()
    assert names == ["deployment.apps/web"]


def test_wait_and_rollout_status_follow_status_writes(
    kubectl: KubectlRunner, sandbox: SandboxHandle, ns: str
) -> None:
    kubectl("apply", "-n", ns, "-f", "-", input=DEPLOYMENT.format(image="web:1", mode="a"))
    url = f"{sandbox.url}/apis/apps/v1/namespaces/{ns}/deployments/web"

    def become_available() -> None:
        # Plays the deployment controller: a status write once kubectl is already waiting.
        with urllib.request.urlopen(url, timeout=10) as resp:
            dep = json.loads(resp.read())
        dep["status"] = {
            "observedGeneration": dep["metadata"]["generation"],
            "replicas": 2,
            "updatedReplicas": 2,
            "readyReplicas": 2,
            "availableReplicas": 2,
            "conditions": [
                {"type": "Available", "status": "True", "reason": "MinimumReplicasAvailable"},
                {"type": "Progressing", "status": "True", "reason": "NewReplicaSetAvailable"},
            ],
        }
        req = urllib.request.Request(
            url + "/status",
            data=json.dumps(dep).encode(),
            method="PUT",
            headers={"Content-Type": "application/json"},
        )
        urllib.request.urlopen(req, timeout=10).close()

    timer = threading.Timer(1.0, become_available)
    timer.start()
    try:
        waited = kubectl(
            "wait", "-n", ns, "--for=condition=Available", "deploy/web", "--timeout=30s"
        )
    finally:
        timer.join()
    assert "condition met" in waited.stdout
    rollout = kubectl("rollout", "status", "-n", ns, "deploy/web", "--timeout=30s")
    assert 'deployment "web" successfully rolled out' in rollout.stdout


def test_create_and_delete(kubectl: KubectlRunner, ns: str) -> None:
    cm = "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: settings}\ndata: {a: '1'}\n"
    assert "configmap/settings created" in kubectl("create", "-n", ns, "-f", "-", input=cm).stdout
    again = kubectl("create", "-n", ns, "-f", "-", input=cm, check=False)
    assert "AlreadyExists" in again.stderr
    assert 'configmap "settings" deleted' in kubectl("delete", "cm", "settings", "-n", ns).stdout
    missing = kubectl("get", "cm", "settings", "-n", ns, check=False)
    assert 'configmaps "settings" not found' in missing.stderr


GENERATORS = [
    ("namespace", "gen-ns"),
    ("configmap", "cfg", "--from-literal=a=1", "--from-literal=b=two"),
    ("secret", "generic", "pw", "--from-literal=password=s3cret"),
    ("secret", "docker-registry", "reg", "--docker-username=u", "--docker-password=p"),
    ("serviceaccount", "bot"),
    ("deployment", "app", "--image=app:1.2", "--replicas=3", "--port=8080"),
    ("deployment", "idle", "--image=app:1.2", "--replicas=0"),
    ("service", "clusterip", "svc", "--tcp=80:8080"),
    ("service", "nodeport", "np", "--tcp=80:http"),
    ("role", "reader", "--verb=get,list", "--resource=pods"),
    ("clusterrole", "watcher", "--verb=watch", "--resource=deployments.apps"),
    ("rolebinding", "rb", "--role=reader", "--serviceaccount=default:bot"),
    ("clusterrolebinding", "crb", "--clusterrole=watcher", "--user=alice"),
]


def _contains(want: object, got: object, path: str = "") -> list[str]:
    """Differences where `got` lacks or changes something `want` has (server additions and
    empty values are fine)."""
    if isinstance(want, dict):
        problems = []
        for key, value in want.items():
            if value in ({}, [], None, "") or key == "status":
                continue
            if not isinstance(got, dict) or key not in got:
                problems.append(f"{path}.{key} missing")
            else:
                problems += _contains(value, got[key], f"{path}.{key}")
        return problems
    if isinstance(want, list):
        if not isinstance(got, list) or len(got) != len(want):
            return [f"{path}: {want!r} != {got!r}"]
        return [
            p
            for i, (w, g) in enumerate(zip(want, got, strict=True))
            for p in _contains(w, g, f"{path}[{i}]")
        ]
    return [] if want == got else [f"{path}: {want!r} != {got!r}"]


@pytest.mark.parametrize("generator", GENERATORS, ids=lambda g: "-".join(g[:2]))
def test_create_generators_send_protobuf_that_is_decoded_faithfully(
    kubectl: KubectlRunner, ns: str, generator: tuple[str, ...]
) -> None:
    # kubectl's typed generators POST protobuf; its client-side dry run prints the very
    # object it would send, which the stored object must contain unchanged.
    args = ("create", *generator, "-n", ns, "-o", "json")
    want = json.loads(kubectl(*args, "--dry-run=client").stdout)
    got = json.loads(kubectl(*args).stdout)
    assert _contains(want, got) == []
    if generator[0] == "namespace":
        kubectl("delete", "namespace", generator[1], "--wait=false")


def test_server_dry_run_validates_without_storing(kubectl: KubectlRunner, ns: str) -> None:
    out = kubectl(
        "apply", "--dry-run=server", "-n", ns, "-f", "-", input=CANARY.format(provider="istio")
    )
    assert "(server dry run)" in out.stdout
    assert kubectl("get", "canaries", "-n", ns, "-o", "name").stdout == ""
    bad = CANARY.format(provider="nope")
    rejected = kubectl("apply", "--dry-run=server", "-n", ns, "-f", "-", input=bad, check=False)
    assert "spec.provider: Unsupported value" in rejected.stderr
    kubectl("apply", "-n", ns, "-f", "-", input=CANARY.format(provider="istio"))
    kubectl("delete", "canary", "web", "-n", ns, "--dry-run=server")
    kubectl(
        "patch",
        "canary",
        "web",
        "-n",
        ns,
        "--type",
        "merge",
        "--dry-run=server",
        "-p",
        '{"spec":{"provider":"kubernetes"}}',
    )
    assert get_json(kubectl, ns, "canary", "web")["spec"]["provider"] == "istio"
