"""init's convergence by label, the hardening it renders, uninstall's reach, doctor's
effective-permissions check: on the fake cluster."""

from __future__ import annotations

import copy
import json

import yaml

from kubectl_canary.cli import manifests
from kubectl_canary.cli.agent_info import AGENT_NAME
from kubectl_canary.cli.init import CREATED_BY_INIT
from kubectl_canary.cli.permissions import DANGEROUS, Access, granted, judge
from tests.cli.test_init import play_cluster

RBAC = "rbac.authorization.k8s.io/v1"


def rendered(run, *args):
    result = run("init", "--dry-run", *args)
    assert result.exit_code == 0, result.output
    return [d for d in yaml.safe_load_all(result.stdout) if d]


def agent_args(docs):
    (dep,) = [d for d in docs if d["kind"] == "Deployment"]
    return dep["spec"]["template"]["spec"]["containers"][0]["args"]


def test_every_rendered_object_carries_both_labels(run):
    for doc in rendered(run):
        labels = doc["metadata"]["labels"]
        assert labels["app.kubernetes.io/part-of"] == "kubectl-canary", doc["kind"]
        assert labels["app.kubernetes.io/managed-by"] == "kubectl-canary", doc["kind"]


def test_namespaced_plan_has_no_cluster_binding_and_a_binding_per_namespace(run):
    docs = rendered(run, "--watch-namespace", "a", "--watch-namespace", "b")
    assert not [d for d in docs if d["kind"] == "ClusterRoleBinding"]
    bound = {
        d["metadata"]["namespace"]
        for d in docs
        if d["kind"] == "RoleBinding" and d["roleRef"]["kind"] == "ClusterRole"
    }
    assert bound == {"a", "b"}


def test_hardening_objects_are_rendered_before_the_deployment(run):
    kinds = [d["kind"] for d in rendered(run)]
    assert kinds.index("NetworkPolicy") < kinds.index("Deployment")
    assert kinds.index("PodDisruptionBudget") < kinds.index("Deployment")
    docs = rendered(run)
    (np,) = [d for d in docs if d["kind"] == "NetworkPolicy"]
    assert np["spec"]["policyTypes"] == ["Ingress"]
    (rule,) = np["spec"]["ingress"]
    assert rule["ports"] == [{"protocol": "TCP", "port": 8080}]
    selector = rule["from"][0]["namespaceSelector"]["matchLabels"]
    assert selector == {"kubectl-canary.dev/metrics-scraper": "true"}
    (pdb,) = [d for d in docs if d["kind"] == "PodDisruptionBudget"]
    assert pdb["spec"]["maxUnavailable"] == 1


def test_agent_process_renders_nothing_for_pods(run):
    kinds = {d["kind"] for d in rendered(run, "--agent-process")}
    assert not kinds & {"Deployment", "NetworkPolicy", "PodDisruptionBudget"}


def test_security_flags_are_rendered_only_when_set(run):
    plain = agent_args(rendered(run))
    assert not [a for a in plain if a.startswith(("--allow-", "--egress-"))]
    args = agent_args(
        rendered(
            run,
            "--allow-egress",
            "http://prom.monitoring:9090",
            "--allow-egress",
            "https://hooks.example.com/",
            "--egress-default",
            "deny",
            "--allow-gateway",
            "istio-system/public",
            "--allow-gateway",
            "edge/*",
            "--allow-wildcard-hosts",
            "--allow-tls-disable",
        )
    )
    assert args[len(plain) :] == [
        "--allow-egress=http://prom.monitoring:9090",
        "--allow-egress=https://hooks.example.com/",
        "--egress-default=deny",
        "--allow-gateway=istio-system/public",
        "--allow-gateway=edge/*",
        "--allow-wildcard-hosts",
        "--allow-tls-disable",
    ]
    bad = run("init", "--dry-run", "--allow-gateway", "no-slash")
    assert bad.exit_code == 2 and "is not NS/NAME or NS/*" in bad.output


def test_the_local_agent_gets_the_security_flags(run, fake, monkeypatch, tmp_path):
    started = {}

    def fake_popen(args, **kwargs):
        started["args"] = args
        raise SystemExit(0)

    monkeypatch.setattr("kubectl_canary.cli.init.subprocess.Popen", fake_popen)
    log = str(tmp_path / "agent.log")
    run("init", "--agent-process", "--agent-log", log, "--allow-egress", "http://p:9090")
    assert started["args"][-1] == "--allow-egress=http://p:9090"
    # Remembered: a re-run without the flag starts the agent with it, and adds the new one.
    run("init", "--agent-process", "--agent-log", log, "--allow-tls-disable")
    assert started["args"][-2:] == ["--allow-egress=http://p:9090", "--allow-tls-disable"]


def test_image_by_digest(run, monkeypatch):
    digest = "sha256:" + "a" * 64
    args = ("--image", f"registry.example.com/agent@{digest}")
    (dep,) = [d for d in rendered(run, *args) if d["kind"] == "Deployment"]
    image = dep["spec"]["template"]["spec"]["containers"][0]["image"]
    assert image == f"registry.example.com/agent@{digest}"
    assert "@" not in manifests.DEFAULT_IMAGE  # dev builds: IMAGE_DIGEST is empty


def _bindings(fake):
    return sorted(
        (o["kind"], o["metadata"].get("namespace", ""), o["metadata"]["name"])
        for o in fake.all("ClusterRoleBinding") + fake.all("RoleBinding")
        if "leader" not in o["metadata"]["name"]
    )


def _namespaces(fake, *names):
    for name in names:
        fake.add({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": name}})


def _everything(fake):
    return {
        (o["kind"], o["metadata"].get("namespace", ""), o["metadata"]["name"]) for o in fake.all()
    }


def test_switching_modes_prunes_bindings_both_ways(run, fake):
    play_cluster(fake)
    _namespaces(fake, "a", "b")
    assert run("init").exit_code == 0
    assert _bindings(fake) == [("ClusterRoleBinding", "", AGENT_NAME)]
    preview = run("init", "--dry-run", "--watch-namespace", "a", "--watch-namespace", "b")
    assert "clusterrolebinding/kubectl-canary-agent would be pruned" in preview.stderr
    assert fake.find("ClusterRoleBinding", AGENT_NAME) is not None
    done = run("init", "--watch-namespace", "a", "--watch-namespace", "b")
    assert done.exit_code == 0, done.output
    assert "clusterrolebinding/kubectl-canary-agent pruned" in done.stdout
    assert _bindings(fake) == [("RoleBinding", "a", AGENT_NAME), ("RoleBinding", "b", AGENT_NAME)]
    done = run("init", "--watch-namespace", "a")
    assert "rolebinding/kubectl-canary-agent -n b pruned" in done.stdout
    assert _bindings(fake) == [("RoleBinding", "a", AGENT_NAME)]
    done = run("init", "--watch-namespace", "")  # a re-run keeps the namespaces: '' clears
    assert "rolebinding/kubectl-canary-agent -n a pruned" in done.stdout
    assert _bindings(fake) == [("ClusterRoleBinding", "", AGENT_NAME)]


def test_a_same_named_binding_without_our_labels_is_left(run, fake):
    play_cluster(fake)
    _namespaces(fake, "a")
    fake.add(
        {
            "apiVersion": RBAC,
            "kind": "ClusterRoleBinding",
            "metadata": {"name": AGENT_NAME},
            "roleRef": {"kind": "ClusterRole", "name": "someone-elses"},
            "subjects": [],
        }
    )
    done = run("init", "--watch-namespace", "a")
    assert done.exit_code == 0, done.output
    assert "clusterrolebinding/kubectl-canary-agent not ours" in done.stdout
    assert fake.find("ClusterRoleBinding", AGENT_NAME)["roleRef"]["name"] == "someone-elses"


def test_another_installs_labelled_binding_is_not_pruned(run, fake):
    play_cluster(fake)
    _namespaces(fake, "a", "c")
    assert run("init", "--watch-namespace", "a").exit_code == 0
    other = copy.deepcopy(fake.find("RoleBinding", AGENT_NAME, "a"))
    other["metadata"] = {**other["metadata"], "namespace": "c"}
    other["metadata"].pop("resourceVersion", None)
    other["subjects"] = [{**other["subjects"][0], "namespace": "other-install"}]
    fake.add(other)
    done = run("init", "--watch-namespace", "a")
    assert done.exit_code == 0, done.output
    assert fake.find("RoleBinding", AGENT_NAME, "c") is not None  # another agent's


def test_uninstall_removes_only_what_carries_our_labels(run, fake):
    play_cluster(fake)
    _namespaces(fake, "a", "b")
    before = _everything(fake)
    assert run("init", "--watch-namespace", "a", "--watch-namespace", "b").exit_code == 0
    assert fake.find("Namespace", "kubectl-canary")["metadata"]["annotations"] == {
        CREATED_BY_INIT: "true"
    }
    fake.add(
        {
            "apiVersion": RBAC,
            "kind": "RoleBinding",
            "metadata": {"name": "team-binding", "namespace": "a"},
            "roleRef": {"kind": "ClusterRole", "name": "view"},
        }
    )
    done = run("uninstall")
    assert done.exit_code == 0, done.output
    # The CRDs go too, and the Lease with the namespace.
    crds = {o for o in before if o[0] == "CustomResourceDefinition" and "kubectl-canary" in o[2]}
    assert _everything(fake) == before - crds | {("RoleBinding", "a", "team-binding")}
    assert "namespace/kubectl-canary deleted" in done.stdout


def test_uninstall_keeps_a_namespace_init_did_not_create(run, fake):
    play_cluster(fake)
    fake.add({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "kubectl-canary"}})
    assert run("init").exit_code == 0
    assert not fake.find("Namespace", "kubectl-canary")["metadata"].get("annotations")
    done = run("uninstall", "--keep-crds")
    assert done.exit_code == 0, done.output
    assert fake.find("Namespace", "kubectl-canary") is not None
    assert "namespace/kubectl-canary left: init did not create it" in done.stdout
    assert fake.find("CustomResourceDefinition", "canaries.kubectl-canary.dev") is not None
    assert fake.find("Deployment", AGENT_NAME) is None


# ----- doctor: agent permissions -----


def _plan_grants(run, *args):
    return granted(rendered(run, *args), [a for a in args if not a.startswith("-")])


def test_judge_names_missing_grants_and_dangerous_extras():
    wanted = [Access("apps", "deployments", "get"), Access("", "secrets", "get")]
    allowed = {Access("apps", "deployments", "get"), Access("", "nodes", "get")}
    missing, excess = judge(wanted, lambda a: a in allowed)
    assert missing == [Access("", "secrets", "get")]
    assert excess == [Access("", "nodes", "get")]
    assert str(missing[0]) == "get secrets cluster-wide"


def test_namespaced_grants_are_checked_per_watched_namespace(run):
    grants = _plan_grants(run, "--watch-namespace", "a", "--watch-namespace", "b")
    deploy_get = {a.namespace for a in grants if (a.resource, a.verb) == ("deployments", "get")}
    assert deploy_get == {"a", "b"}
    lease = [a for a in grants if a.resource == "leases" and a.verb == "update"]
    assert lease == [
        Access(
            "coordination.k8s.io", "leases", "update", "kubectl-canary", "", "kubectl-canary-agent"
        )
    ]


def _doctor_permissions(run):
    out = run("doctor", "-o", "json")
    return [c for c in json.loads(out.stdout) if c["name"] == "agent permissions"]


def _reviewer(grants):
    def review(spec):
        attrs = spec["resourceAttributes"]
        assert spec["user"] == "system:serviceaccount:kubectl-canary:kubectl-canary-agent"
        assert "system:serviceaccounts:kubectl-canary" in spec["groups"]
        a = Access(
            attrs["group"],
            attrs["resource"],
            attrs["verb"],
            attrs.get("namespace", ""),
            attrs.get("subresource", ""),
            attrs.get("name", ""),
        )
        return a in grants

    return review


def test_doctor_passes_when_exactly_the_plan_is_allowed(run, fake):
    play_cluster(fake)
    run("init")
    fake.access_review = _reviewer(set(_plan_grants(run)))
    (check,) = _doctor_permissions(run)
    assert check["result"] == "ok", check


def test_doctor_names_excess_and_the_binding_granting_it(run, fake):
    play_cluster(fake)
    run("init")
    fake.add(
        {
            "apiVersion": RBAC,
            "kind": "ClusterRoleBinding",
            "metadata": {"name": "oops"},
            "roleRef": {"kind": "ClusterRole", "name": "cluster-admin"},
            "subjects": [
                {"kind": "ServiceAccount", "name": AGENT_NAME, "namespace": "kubectl-canary"}
            ],
        }
    )
    fake.access_review = lambda spec: True
    (check,) = _doctor_permissions(run)
    assert check["result"] == "fail"
    for extra in DANGEROUS:
        assert str(extra) in check["detail"]
    assert "clusterrolebinding/oops -> cluster-admin" in check["detail"]


def test_doctor_names_missing_grants(run, fake):
    play_cluster(fake)
    run("init")
    fake.access_review = _reviewer({a for a in _plan_grants(run) if a.resource != "secrets"})
    (check,) = _doctor_permissions(run)
    assert check["result"] == "fail"
    assert "missing: get secrets cluster-wide" in check["detail"]


def test_doctor_warns_when_reviews_are_not_served(run, fake):
    play_cluster(fake)
    run("init")
    (check,) = _doctor_permissions(run)
    assert check["result"] == "warn" and "SubjectAccessReview unavailable" in check["detail"]


def test_doctor_checks_the_rbac_of_the_installed_mode(run, fake):
    play_cluster(fake)
    _namespaces(fake, "a")
    assert run("init", "--watch-namespace", "a").exit_code == 0
    (check,) = [c for c in json.loads(run("doctor", "-o", "json").stdout) if c["name"] == "rbac"]
    assert check["result"] == "ok", check
