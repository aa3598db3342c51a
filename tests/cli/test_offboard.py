"""offboard and uninstall --force: target restored from the primary, apex Service never without
ready endpoints, nothing of the agent removed before every app is handed back."""

from __future__ import annotations

import json
from datetime import UTC, datetime

from kubectl_canary.api.model import FINALIZER, MANAGED_BY_LABEL, ORIGINAL_SPEC_ANNOTATION
from kubectl_canary.cli.agent_info import AGENT_NAME, DEFAULT_NAMESPACE, LEASE_NAME
from tests.cli import samples
from tests.cli.test_init import play_cluster

AGENT_NAMESPACE = DEFAULT_NAMESPACE

OURS = {MANAGED_BY_LABEL: "mhs"}


def service(fake, name: str, selector: dict, owned: bool = True) -> dict:
    meta: dict = {"name": name, "namespace": "test"}
    if owned:
        meta.update(labels=dict(OURS), ownerReferences=samples.owner(fake))
    return {
        "apiVersion": "v1",
        "kind": "Service",
        "metadata": meta,
        "spec": {"selector": selector, "ports": [{"port": 9898}], "clusterIP": "10.0.0.1"},
    }


def failed_release(fake) -> None:
    """mhs after a failed 1.1.3 release: the primary (1.1.2, 3 replicas) serves everything."""
    c = samples.canary(phase="Failed", weight=0, failed=5)
    c["metadata"]["finalizers"] = [FINALIZER]
    fake.add(c)
    target = samples.deployment("mhs", "ghcr.io/acme/mhs:1.1.3", replicas=0, ready=0)
    fake.add(target)
    primary = samples.deployment(
        "mhs-primary", "ghcr.io/acme/mhs:1.1.2", replicas=3, ready=3, app="mhs-primary"
    )
    primary["metadata"].update(labels=dict(OURS), ownerReferences=samples.owner(fake))
    primary["spec"]["template"]["metadata"]["labels"]["kubectl-canary.dev/app"] = "mhs"
    primary["spec"]["template"]["spec"]["containers"][0]["env"] = [{"name": "A", "value": "1"}]
    fake.add(primary)
    fake.add(service(fake, "mhs", {"app": "mhs-primary"}))
    fake.add(service(fake, "mhs-primary", {"app": "mhs-primary"}))
    fake.add(service(fake, "mhs-canary", {"app": "mhs"}))
    for dr in ("mhs-primary", "mhs-canary"):
        fake.add(
            {
                "apiVersion": "networking.istio.io/v1beta1",
                "kind": "DestinationRule",
                "metadata": {
                    "name": dr,
                    "labels": dict(OURS),
                    "ownerReferences": samples.owner(fake),
                },
                "spec": {"host": dr},
            }
        )
    vs = samples.virtual_service("mhs", 100)
    vs["metadata"].update(labels=dict(OURS), ownerReferences=samples.owner(fake))
    fake.add(vs)
    fake.add(
        {
            "apiVersion": "v1",
            "kind": "Endpoints",
            "metadata": {"name": "mhs"},
            "subsets": [{"addresses": [{"ip": "10.1.0.1"}, {"ip": "10.1.0.2"}]}],
        }
    )


class Cluster:
    """Plays the Deployment and Endpoints controllers, and records apex endpoint counts."""

    def __init__(self, fake, target_becomes_ready: bool = True) -> None:
        self.fake = fake
        self.ready = target_becomes_ready
        self.apex_endpoints: list[int] = []
        fake.on_write.append(self.react)

    def ready_pods(self, selector: dict) -> int:
        n = 0
        for d in self.fake.all("Deployment"):
            labels = d["spec"]["template"]["metadata"].get("labels", {})
            if all(labels.get(k) == v for k, v in selector.items()):
                n += int(d.get("status", {}).get("readyReplicas", 0))
        return n

    def react(self, fake, verb, obj) -> None:
        # The agent notices the suspension (the last patch, of the finalizer, lets it go).
        if obj["kind"] == "Canary" and verb == "patch" and fake.find("Canary", "mhs"):

            def observed(stored):
                stored["status"]["observedGeneration"] = stored["metadata"]["generation"]

            fake.edit("Canary", "mhs", observed)
        if obj["kind"] == "Deployment" and verb == "update" and self.ready:
            want = obj["spec"]["replicas"]

            def rolled_out(stored):
                stored["status"] = {
                    "replicas": want,
                    "readyReplicas": want,
                    "updatedReplicas": want,
                    "availableReplicas": want,
                    "observedGeneration": stored["metadata"].get("generation", 1),
                }

            fake.edit("Deployment", obj["metadata"]["name"], rolled_out)
        if obj["kind"] == "Service" and obj["metadata"]["name"] == "mhs":
            count = self.ready_pods(obj["spec"]["selector"])
            addresses = [{"ip": f"10.2.0.{i}"} for i in range(count)]
            fake.edit("Endpoints", "mhs", lambda ep: ep.update(subsets=[{"addresses": addresses}]))
            self.apex_endpoints.append(count)


def test_dry_run_shows_the_plan_and_changes_nothing(run, fake, golden):
    failed_release(fake)
    result = run("offboard", "mhs", "--dry-run")
    assert result.exit_code == 0, result.output
    golden("offboard_dry_run.txt", result.output)
    assert fake.writes == []


def test_offboard_after_a_failed_release(run, fake, golden):
    failed_release(fake)
    cluster = Cluster(fake)
    result = run("offboard", "mhs")
    assert result.exit_code == 0, result.output
    golden("offboard_run.txt", result.output)
    target = fake.find("Deployment", "mhs")
    # The last good version (the primary's), not the failed 1.1.3, at the primary's scale.
    assert target["spec"]["replicas"] == 3
    container = target["spec"]["template"]["spec"]["containers"][0]
    assert container["image"] == "ghcr.io/acme/mhs:1.1.2" and container["env"][0]["value"] == "1"
    assert target["spec"]["template"]["metadata"]["labels"] == {"app": "mhs"}
    apex = fake.find("Service", "mhs")
    assert apex["spec"]["selector"] == {"app": "mhs"}
    assert "ownerReferences" not in apex["metadata"]
    assert MANAGED_BY_LABEL not in apex["metadata"].get("labels", {})
    for kind, name in [
        ("Deployment", "mhs-primary"),
        ("Service", "mhs-primary"),
        ("Service", "mhs-canary"),
        ("DestinationRule", "mhs-primary"),
        ("DestinationRule", "mhs-canary"),
        ("VirtualService", "mhs"),
        ("Canary", "mhs"),
    ]:
        assert fake.find(kind, name) is None, (kind, name)
    assert cluster.apex_endpoints and min(cluster.apex_endpoints) > 0


def test_target_never_ready_stops_before_touching_traffic(run, fake):
    failed_release(fake)
    Cluster(fake, target_becomes_ready=False)
    result = run("offboard", "mhs", "--timeout", "10")
    assert result.exit_code == 1
    assert result.stderr.startswith(
        "error: step 2 failed: timed out after 10s waiting for deployment mhs to be ready"
    )
    assert "run `kubectl canary offboard mhs -n test` again to continue" in result.stderr
    assert result.stderr.count("\n") == 1
    assert fake.find("Service", "mhs")["spec"]["selector"] == {"app": "mhs-primary"}
    assert fake.find("Canary", "mhs")["spec"]["suspend"] is True
    assert fake.find("Deployment", "mhs-primary") is not None


def test_rerun_continues_after_a_failure(run, fake):
    failed_release(fake)
    cluster = Cluster(fake, target_becomes_ready=False)
    assert run("offboard", "mhs", "--timeout", "5").exit_code == 1
    cluster.ready = True

    def rolled_out(target):
        target["status"] = {
            "replicas": 3,
            "readyReplicas": 3,
            "updatedReplicas": 3,
            "observedGeneration": target["metadata"]["generation"],
        }

    fake.edit("Deployment", "mhs", rolled_out)
    result = run("offboard", "mhs")
    assert result.exit_code == 0, result.output
    assert "[1/6] suspend canary mhs so the agent stops acting on it: skipped" in result.output
    assert "[2/6] restore deployment mhs" in result.output and "skipped (already restored)" in (
        result.output
    )
    assert fake.find("Canary", "mhs") is None


def test_taken_over_virtual_service_gets_its_original_spec_back(run, fake):
    failed_release(fake)
    Cluster(fake)
    original = {
        "hosts": ["mhs.example.com"],
        "gateways": ["public"],
        "http": [{"route": [{"destination": {"host": "mhs"}}]}],
    }

    def taken_over(vs):
        vs["metadata"].pop("ownerReferences")
        vs["metadata"]["annotations"] = {ORIGINAL_SPEC_ANNOTATION: json.dumps(original)}

    fake.edit("VirtualService", "mhs", taken_over)
    result = run("offboard", "mhs")
    assert result.exit_code == 0, result.output
    vs = fake.find("VirtualService", "mhs")
    assert vs["spec"] == original
    assert ORIGINAL_SPEC_ANNOTATION not in vs["metadata"].get("annotations", {})


def test_gateway_virtual_service_we_created_is_kept_and_sent_to_the_apex(run, fake):
    failed_release(fake)
    Cluster(fake)
    fake.edit("VirtualService", "mhs", lambda vs: vs["spec"].update(gateways=["public"]))
    assert run("offboard", "mhs").exit_code == 0
    vs = fake.find("VirtualService", "mhs")
    assert vs["spec"]["http"][0]["route"] == [
        {"destination": {"host": "mhs", "port": {"number": 9898}}, "weight": 100}
    ]
    assert "ownerReferences" not in vs["metadata"]


def test_without_a_running_agent_the_suspension_is_not_confirmed_but_offboard_goes_on(run, fake):
    failed_release(fake)
    cluster = Cluster(fake)
    fake.on_write.remove(cluster.react)
    fake.on_write.append(
        lambda f, verb, obj: None if obj["kind"] == "Canary" else cluster.react(f, verb, obj)
    )
    result = run("offboard", "mhs")
    assert result.exit_code == 0, result.output
    assert "warning: the agent did not confirm the suspension" in result.stderr


def test_a_virtual_service_bound_only_to_the_mesh_is_deleted(run, fake):
    failed_release(fake)
    Cluster(fake)
    fake.edit("VirtualService", "mhs", lambda vs: vs["spec"].update(gateways=["mesh"]))
    assert run("offboard", "mhs").exit_code == 0
    assert fake.find("VirtualService", "mhs") is None


def test_the_target_gets_the_original_configs_back_and_the_copies_go(run, fake):
    """The primary reads `-primary` copies of the tracked configs: the handed-back target must
    name the originals (the copies are deleted), and a user's config is never touched."""
    failed_release(fake)

    def reads_copies(primary):
        pod = primary["spec"]["template"]["spec"]
        pod["containers"][0]["envFrom"] = [{"configMapRef": {"name": "mhs-config-primary"}}]
        pod["volumes"] = [{"name": "creds", "secret": {"secretName": "mhs-creds-primary"}}]

    fake.edit("Deployment", "mhs-primary", reads_copies)
    for kind, name in [("ConfigMap", "mhs-config"), ("Secret", "mhs-creds")]:
        original = {"apiVersion": "v1", "kind": kind, "metadata": {"name": name}, "data": {}}
        fake.add(original)
        copied = {
            "apiVersion": "v1",
            "kind": kind,
            "metadata": {
                "name": name + "-primary",
                "labels": dict(OURS),
                "ownerReferences": samples.owner(fake),
            },
            "data": {},
        }
        fake.add(copied)
    Cluster(fake)

    plan = run("offboard", "mhs", "--dry-run")
    assert "configmap/mhs-config-primary, secret/mhs-creds-primary" in plan.output
    result = run("offboard", "mhs")

    assert result.exit_code == 0, result.output
    pod = fake.find("Deployment", "mhs")["spec"]["template"]["spec"]
    assert pod["containers"][0]["envFrom"] == [{"configMapRef": {"name": "mhs-config"}}]
    assert pod["volumes"] == [{"name": "creds", "secret": {"secretName": "mhs-creds"}}]
    assert fake.find("ConfigMap", "mhs-config-primary") is None
    assert fake.find("Secret", "mhs-creds-primary") is None
    assert fake.find("ConfigMap", "mhs-config") is not None
    assert fake.find("Secret", "mhs-creds") is not None


# ----- uninstall --force: the same hand-back for every Canary, then the agent goes -----


def test_uninstall_force_hands_every_app_back_before_removing_the_agent(run, fake):
    play_cluster(fake)
    assert run("init").exit_code == 0
    failed_release(fake)
    cluster = Cluster(fake)
    result = run("uninstall", "--force")
    assert result.exit_code == 0, result.output
    lines = result.stdout.splitlines()
    assert lines[0] == "canary/test/mhs: handing the app back"
    handed = lines.index("canary/test/mhs handed back and deleted")
    agent_gone = lines.index(f"deployment/{AGENT_NAME} -n {AGENT_NAMESPACE} deleted")
    assert handed < agent_gone, "the agent goes only after every app is handed back"
    target = fake.find("Deployment", "mhs")
    assert target["spec"]["replicas"] == 3, "as many pods as the primary served"
    assert target["spec"]["template"]["spec"]["containers"][0]["image"].endswith(":1.1.2")
    assert fake.find("Service", "mhs")["spec"]["selector"] == {"app": "mhs"}
    assert cluster.apex_endpoints and min(cluster.apex_endpoints) > 0
    assert fake.find("Canary", "mhs") is None and fake.find("Deployment", "mhs-primary") is None
    assert fake.find("Deployment", AGENT_NAME) is None


def test_uninstall_force_stops_before_removing_anything_when_a_hand_back_waits(run, fake):
    play_cluster(fake)
    assert run("init").exit_code == 0
    failed_release(fake)
    Cluster(fake, target_becomes_ready=False)
    result = run("uninstall", "--force", "--timeout", "5")
    assert result.exit_code == 1
    assert result.stderr.count("\n") == 1, result.stderr
    assert result.stderr.startswith(
        "error: canary test/mhs was not handed back: step 2 failed: timed out after 5s waiting "
        "for deployment mhs to be ready"
    )
    assert "nothing of the agent was removed" in result.stderr
    # Traffic stays on the primary; the agent, its RBAC and the CRDs stay.
    assert fake.find("Service", "mhs")["spec"]["selector"] == {"app": "mhs-primary"}
    assert fake.find("Deployment", "mhs-primary") is not None
    assert fake.find("Deployment", AGENT_NAME) is not None
    assert fake.find("CustomResourceDefinition", "canaries.kubectl-canary.dev") is not None


def test_uninstall_force_waits_for_the_running_agent_to_hand_back_a_deleting_canary(run, fake):
    play_cluster(fake)
    assert run("init").exit_code == 0
    failed_release(fake)
    fake.remove("Canary", "mhs")  # the finalizer holds it: the agent is handing it back
    now = datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")

    def renewed(lease):
        lease["spec"].update(renewTime=now, leaseDurationSeconds=3600)

    fake.edit("Lease", LEASE_NAME, renewed)

    def still_waiting(c):
        c["status"]["history"] = [{"message": "Waiting for mhs.test before reverting: 0/3 ready"}]

    fake.edit("Canary", "mhs", still_waiting)
    result = run("uninstall", "--force", "--timeout", "3")
    assert result.exit_code == 1
    assert result.stderr == (
        "error: canary test/mhs was not handed back within 3s: Waiting for mhs.test before "
        "reverting: 0/3 ready; nothing of the agent was removed\n"
    )
    assert fake.find("Service", "mhs")["spec"]["selector"] == {"app": "mhs-primary"}
    assert fake.find("Deployment", AGENT_NAME) is not None
