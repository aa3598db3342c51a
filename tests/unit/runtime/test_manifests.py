"""The agent's install manifests: every placeholder documented and filled, a hardened Pod,
probes on the agent's real endpoints, RBAC without wildcards, args the agent accepts."""

from __future__ import annotations

import re
from pathlib import Path

import yaml

from agent.main import parse_options

ROOT = Path(__file__).resolve().parents[3]
MANIFESTS = ROOT / "kubectl_canary" / "manifests" / "agent"
DOC = (ROOT / "docs" / "agent.md").read_text()
VALUES = {
    "NAMESPACE": "kc-system",
    "IMAGE": "example.org/agent:1.0",
    "PROVIDER": "istio",
    "METRICS_SERVER": "http://prometheus:9090",
    "WATCH_NAMESPACES": "app1,app2",
    "WATCH_NAMESPACE": "app1",
}


def rendered() -> dict[str, list[dict]]:
    out = {}
    for path in sorted(MANIFESTS.glob("*.yaml")):
        text = path.read_text()
        for name in set(re.findall(r"\$\{([A-Z_]+)\}", text)):
            assert name in VALUES, f"{path.name}: unknown placeholder {name}"
            text = text.replace("${" + name + "}", VALUES[name])
        assert "${" not in text
        out[path.name] = [d for d in yaml.safe_load_all(text) if d]
    return out


def test_every_placeholder_is_documented() -> None:
    for name in VALUES:
        assert "${" + name + "}" in DOC, f"docs/agent.md does not explain ${{{name}}}"


def test_deployment_is_hardened_and_probed() -> None:
    (dep,) = rendered()["deployment.yaml"]
    pod = dep["spec"]["template"]["spec"]
    assert pod["securityContext"]["runAsNonRoot"] is True
    assert pod["serviceAccountName"] == "kubectl-canary-agent"
    (container,) = pod["containers"]
    sc = container["securityContext"]
    assert sc["readOnlyRootFilesystem"] is True and sc["allowPrivilegeEscalation"] is False
    assert sc["capabilities"]["drop"] == ["ALL"]
    assert (
        container["resources"]["requests"]["cpu"] and container["resources"]["requests"]["memory"]
    )
    assert container["livenessProbe"]["httpGet"]["path"] == "/healthz"
    assert container["readinessProbe"]["httpGet"]["path"] == "/readyz"
    assert container["image"] == VALUES["IMAGE"]
    opts = parse_options(container["args"])
    assert opts.namespaces == ("app1", "app2")
    assert opts.args.provider == "istio" and opts.args.metrics_server == VALUES["METRICS_SERVER"]
    assert opts.listen[1] == container["ports"][0]["containerPort"]


def test_empty_watch_namespaces_means_all() -> None:
    (dep,) = rendered()["deployment.yaml"]
    args = [
        a.replace("app1,app2", "") for a in dep["spec"]["template"]["spec"]["containers"][0]["args"]
    ]
    assert parse_options(args).namespaces == ()


def test_rbac_has_no_wildcards_and_binds_the_service_account() -> None:
    docs = rendered()
    for name in ("clusterrole.yaml", "role-leader-election.yaml"):
        for doc in docs[name]:
            for rule in doc.get("rules", []):
                for key in ("apiGroups", "resources", "verbs"):
                    assert "*" not in rule[key], f"{name}: wildcard in {key}"
    bindings = [
        d
        for f in (
            "clusterrolebinding.yaml",
            "rolebinding-watched.yaml",
            "role-leader-election.yaml",
        )
        for d in docs[f]
        if d["kind"].endswith("Binding")
    ]
    assert len(bindings) == 3
    for b in bindings:
        assert b["subjects"] == [
            {"kind": "ServiceAccount", "name": "kubectl-canary-agent", "namespace": "kc-system"}
        ]
    (watched,) = docs["rolebinding-watched.yaml"]
    assert watched["metadata"]["namespace"] == "app1"
    assert watched["roleRef"]["kind"] == "ClusterRole"


def test_metrics_service_targets_the_agent() -> None:
    (svc,) = rendered()["service.yaml"]
    (dep,) = rendered()["deployment.yaml"]
    labels = dep["spec"]["template"]["metadata"]["labels"]
    assert all(labels.get(k) == v for k, v in svc["spec"]["selector"].items())
    assert svc["spec"]["ports"][0]["targetPort"] == "http-metrics"


def test_dockerfile_builds_what_build_image_builds() -> None:
    """agent/Dockerfile's image equals scripts/build_image.py's: its build stage runs that
    script, and its final stage sets the same user and entrypoint as the OCI config does;
    the Deployment runs the image as that user."""
    text = (ROOT / "agent" / "Dockerfile").read_text()
    script = (ROOT / "scripts" / "build_image.py").read_text()
    assert re.search(r"^RUN .*\n?.*scripts/build_image\.py --rootfs /rootfs", text, re.M)
    assert re.search(r"^FROM scratch$", text, re.M)
    uid = re.search(r"^UID = (\d+)$", script, re.M)
    assert uid is not None
    assert re.search(rf"^USER {uid[1]}:{uid[1]}$", text, re.M)
    entrypoint = re.search(r'"Entrypoint": (\[[^]]*\])', script)
    assert entrypoint is not None
    assert f"ENTRYPOINT {entrypoint[1]}" in text
    deployment = yaml.safe_load((MANIFESTS / "deployment.yaml").read_text())
    pod = deployment["spec"]["template"]["spec"]
    assert pod["securityContext"]["runAsUser"] == int(uid[1])
    (container,) = pod["containers"]
    assert container["securityContext"]["readOnlyRootFilesystem"] is True
