"""init / uninstall: manifests rendered and applied idempotently; the agent waited for."""

from __future__ import annotations

import yaml

from kubectl_canary.cli.agent_info import AGENT_NAME, LEASE_NAME
from kubectl_canary.cli.init import KIND_ORDER
from tests.cli import samples


def play_cluster(fake) -> None:
    """The Deployment controller and the agent taking its Lease, for the fake cluster."""

    def react(fake_, verb, obj):
        if (
            verb != "delete"
            and obj["kind"] == "Deployment"
            and obj["metadata"]["name"] == AGENT_NAME
        ):

            def rolled_out(stored):
                stored["status"] = {
                    "replicas": 1,
                    "readyReplicas": 1,
                    "updatedReplicas": 1,
                    "observedGeneration": stored["metadata"]["generation"],
                }

            fake_.edit("Deployment", AGENT_NAME, rolled_out)
            if fake_.find("Lease", LEASE_NAME) is None:
                fake_.add(
                    {
                        "apiVersion": "coordination.k8s.io/v1",
                        "kind": "Lease",
                        "metadata": {"name": LEASE_NAME, "namespace": "kubectl-canary"},
                        "spec": {"holderIdentity": "kubectl-canary-agent-abc_1"},
                    }
                )

    fake.on_write.append(react)


def test_dry_run_yaml_renders_every_placeholder_in_apply_order(run):
    result = run(
        "init",
        "--dry-run",
        "--provider",
        "istio",
        "--image",
        "example/agent:9",
        "--metrics-server",
        "http://prom.monitoring:9090",
    )
    assert result.exit_code == 0, result.output
    docs = list(yaml.safe_load_all(result.output))
    assert "${" not in result.output
    kinds = [d["kind"] for d in docs]
    assert kinds[:3] == ["CustomResourceDefinition"] * 3
    rest = [KIND_ORDER.index(k) for k in kinds[3:]]
    assert rest == sorted(rest)
    agent = next(d for d in docs if d["kind"] == "Deployment")
    container = agent["spec"]["template"]["spec"]["containers"][0]
    assert container["image"] == "example/agent:9"
    assert "--provider=istio" in container["args"]
    assert "--metrics-server=http://prom.monitoring:9090" in container["args"]


def test_watch_namespaces_bind_per_namespace_instead_of_cluster_wide(run):
    result = run("init", "--dry-run", "--watch-namespace", "shop", "--watch-namespace", "web")
    docs = list(yaml.safe_load_all(result.output))
    assert not [d for d in docs if d["kind"] == "ClusterRoleBinding"]
    bound = sorted(
        d["metadata"]["namespace"]
        for d in docs
        if d["kind"] == "RoleBinding" and d["roleRef"]["kind"] == "ClusterRole"
    )
    assert bound == ["shop", "web"]


def test_shards_run_one_replica_each_with_their_leases_allowed(run):
    result = run("init", "--dry-run", "--shards", "3")
    assert result.exit_code == 0, result.output
    docs = list(yaml.safe_load_all(result.output))
    agent = next(d for d in docs if d["kind"] == "Deployment")
    assert agent["spec"]["replicas"] == 3
    assert "--shards=3" in agent["spec"]["template"]["spec"]["containers"][0]["args"]
    role = next(d for d in docs if d["kind"] == "Role" and "leader" in d["metadata"]["name"])
    named = next(r for r in role["rules"] if "resourceNames" in r)
    shards = [f"kubectl-canary-agent-shard-{i}" for i in range(3)]
    assert named["resourceNames"] == [LEASE_NAME, *shards]
    assert "shards: 1 -> 3" in result.stderr


def test_shards_are_refused_for_the_local_agent_process_and_below_one(run):
    local = run("init", "--agent-process", "--shards", "2")
    assert local.exit_code != 0
    assert "--agent-process runs one process" in local.stderr
    zero = run("init", "--dry-run", "--shards", "0")
    assert zero.exit_code != 0
    assert "--shards" in zero.stderr and "at least 1" in zero.stderr


def test_init_applies_waits_and_is_idempotent(run, fake):
    play_cluster(fake)
    first = run("init")
    assert first.exit_code == 0, first.output
    assert "deployment/kubectl-canary-agent created" in first.stdout
    assert "agent ready (1/1), leader kubectl-canary-agent-abc_1" in first.stderr
    writes = len(fake.writes)
    second = run("init")
    assert second.exit_code == 0, second.output
    lines = second.stdout.splitlines()
    assert lines[0] == "settings: no change"
    assert all(line.endswith("unchanged") for line in lines[1:-1])
    assert len(fake.writes) == writes
    third = run("init", "--image", "example/agent:2")
    assert "deployment/kubectl-canary-agent configured" in third.stdout


def test_init_times_out_with_a_hint(run, fake):
    result = run("init", "--timeout", "5")
    assert result.exit_code == 1
    assert (
        "timed out after 5s waiting for the agent: waiting for the agent: 0/1 replicas ready"
        in result.stderr
    )
    assert "use --agent-process" in result.stderr
    # Outside a terminal, progress is one line per change, not one per second of waiting.
    assert result.stderr.splitlines()[:-1] == [
        "CRDs established",
        "waiting for the agent: 0/1 replicas ready (0s)",
    ]


def test_uninstall_refuses_while_canaries_exist(run, fake):
    play_cluster(fake)
    run("init")
    samples.release(fake)
    result = run("uninstall")
    assert result.exit_code == 1
    assert result.stderr.startswith("error: 1 Canaries exist (test/mhs): hand each app back")
    assert fake.find("Deployment", AGENT_NAME) is not None


def test_uninstall_removes_what_init_installed(run, fake):
    play_cluster(fake)
    run("init")
    result = run("uninstall")
    assert result.exit_code == 0, result.output
    assert fake.find("Deployment", AGENT_NAME) is None
    assert fake.find("CustomResourceDefinition", "canaries.kubectl-canary.dev") is None
    assert fake.find("ClusterRole", "kubectl-canary-agent") is None


def test_an_upgrade_keeps_what_others_added_to_metadata(run, fake):
    play_cluster(fake)
    run("init")

    def others_add(agent):
        agent["metadata"].setdefault("annotations", {})["deployment.kubernetes.io/revision"] = "1"
        agent["metadata"]["labels"]["team"] = "platform"

    fake.edit("Deployment", AGENT_NAME, others_add)
    assert run("init", "--image", "example/agent:2").exit_code == 0
    agent = fake.find("Deployment", AGENT_NAME)
    assert agent["spec"]["template"]["spec"]["containers"][0]["image"] == "example/agent:2"
    assert agent["metadata"]["annotations"]["deployment.kubernetes.io/revision"] == "1"
    assert agent["metadata"]["labels"]["team"] == "platform"
