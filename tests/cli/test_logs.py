"""logs: the leader's lines about one canary, a namespace, or all, in order."""

from __future__ import annotations

import json
import os
import socket

import pytest

from kubectl_canary.cli.agent_info import AGENT_NAME, LEASE_NAME, LOCAL_AGENT_CONFIGMAP
from tests.cli import samples

AGENT_NS = "kubectl-canary"


def line(ts: str, msg: str, canary: str | None = None, **extra) -> str:
    doc = {"ts": ts, "level": "info", "msg": msg, "logger": "agent"}
    if canary:
        doc["canary"] = canary
    doc.update(extra)
    return json.dumps(doc)


LINES = [
    line("2026-11-27T09:40:00.000+00:00", "listening on 0.0.0.0:8080"),
    line(
        "2026-11-27T09:41:00.000+00:00",
        "Initialization done! mhs.test",
        "test/mhs",
        reason="Synced",
    ),
    line("2026-11-27T09:42:00.000+00:00", "Initialization done! web.test", "test/web"),
    line("2026-11-27T09:58:00.000+00:00", "Advance mhs.test canary weight 10", "test/mhs"),
    line("2026-11-27T09:59:00.000+00:00", "Initialization done! mhs.prod", "prod/mhs"),
    "Traceback (most recent call last):",
]


def agent_in_cluster(fake, holder: str = "kubectl-canary-agent-7d9f-x2_1") -> None:
    fake.add(samples.canary("mhs"))
    fake.add(
        {
            "apiVersion": "apps/v1",
            "kind": "Deployment",
            "metadata": {"name": AGENT_NAME, "namespace": AGENT_NS},
            "spec": {
                "replicas": 1,
                "selector": {"matchLabels": {"app": AGENT_NAME}},
                "template": {
                    "metadata": {"labels": {"app": AGENT_NAME}},
                    "spec": {
                        "containers": [
                            {"name": "agent", "image": "ghcr.io/kubectl-canary/canary-agent:0.1.0"}
                        ]
                    },
                },
            },
            "status": {"readyReplicas": 1},
        }
    )
    fake.add(
        {
            "apiVersion": "coordination.k8s.io/v1",
            "kind": "Lease",
            "metadata": {"name": LEASE_NAME, "namespace": AGENT_NS},
            "spec": {
                "holderIdentity": holder,
                "renewTime": "2026-11-27T09:59:58.000000Z",
                "leaseDurationSeconds": 15,
            },
        }
    )
    fake.add(
        {
            "apiVersion": "v1",
            "kind": "Pod",
            "metadata": {"name": "kubectl-canary-agent-7d9f-x2", "namespace": AGENT_NS},
            "spec": {"containers": [{"name": "agent", "image": "canary-agent:0.1.0"}]},
        }
    )
    fake.pod_logs[(AGENT_NS, "kubectl-canary-agent-7d9f-x2")] = LINES


def test_one_canary_from_the_leader_pod(run, fake, golden):
    agent_in_cluster(fake)
    result = run("logs", "mhs")
    assert result.exit_code == 0, result.output
    golden("logs_mhs.txt", result.output)


def test_namespace_and_all(run, fake):
    agent_in_cluster(fake)
    ns = run("logs").output.splitlines()
    assert [x.split(" [")[1].split("]")[0] for x in ns] == ["test/mhs", "test/web", "test/mhs"]
    everything = run("logs", "-A").output.splitlines()
    assert len(everything) == len(LINES)
    assert everything[-1] == "Traceback (most recent call last):"


def test_json_and_since(run, fake):
    agent_in_cluster(fake)
    out = run("logs", "mhs", "-o", "json", "--since", "5m").output.splitlines()
    assert [json.loads(x)["msg"] for x in out] == ["Advance mhs.test canary weight 10"]


def test_bad_since_is_a_usage_error(run, fake):
    agent_in_cluster(fake)
    result = run("logs", "mhs", "--since", "yesterday")
    assert result.exit_code == 2 and "--since" in result.output


def test_since_takes_seconds_too(run, fake):
    agent_in_cluster(fake)
    assert run("logs", "mhs", "--since", "300").output == run("logs", "mhs", "--since", "5m").output


def test_a_missing_canary_is_an_error_not_silence(run, fake):
    agent_in_cluster(fake)
    result = run("logs", "nope")
    assert result.exit_code == 1
    assert result.stderr == 'error: canary "nope" not found in namespace "test"\n'
    other = run("logs", "mhs", "-n", "prod")  # the agent logged about prod/mhs, but it is gone
    assert other.exit_code == 1 and 'namespace "prod"' in other.stderr


def test_no_agent(run, fake):
    fake.add(samples.canary("mhs"))
    result = run("logs", "mhs")
    assert result.exit_code == 1
    assert result.stderr == "error: the agent is not installed: run `kubectl canary init`\n"


def test_lease_held_by_an_unknown_pod(run, fake):
    agent_in_cluster(fake, holder="ghost_7")
    result = run("logs", "mhs")
    assert result.exit_code == 1
    assert (
        'no running agent pod holds the lease in namespace kubectl-canary (holder: "ghost_7")'
        in result.stderr
    )


@pytest.fixture
def local_agent(fake, tmp_path):
    fake.add(samples.canary("mhs"))
    log = tmp_path / "agent.log"
    log.write_text("\n".join(LINES) + "\n")
    fake.add(
        {
            "apiVersion": "v1",
            "kind": "ConfigMap",
            "metadata": {"name": LOCAL_AGENT_CONFIGMAP, "namespace": AGENT_NS},
            "data": {
                "identity": "local-x",
                "pid": str(os.getpid()),
                "host": socket.gethostname(),
                "logFile": str(log),
                "version": "0.1.0",
            },
        }
    )
    fake.add(
        {
            "apiVersion": "coordination.k8s.io/v1",
            "kind": "Lease",
            "metadata": {"name": LEASE_NAME, "namespace": AGENT_NS},
            "spec": {"holderIdentity": "local-x"},
        }
    )
    return log


def test_local_agent_process_log_file(run, local_agent, golden):
    result = run("logs", "mhs")
    assert result.exit_code == 0, result.output
    golden("logs_mhs.txt", result.output)  # same lines as from a leader pod


def test_local_agent_on_another_host(run, fake, local_agent):
    fake.edit("ConfigMap", LOCAL_AGENT_CONFIGMAP, lambda cm: cm["data"].update(host="elsewhere"))
    result = run("logs", "mhs")
    assert result.exit_code == 1
    assert f"runs as a local process on host elsewhere; read its log there: {local_agent}" in (
        result.stderr
    )


def sharded_agent(fake) -> None:
    """An agent of two replicas with `--shards=2`, each holding one shard; the one holding
    test/mhs's shard logged its lines, the other the rest."""
    from kubectl_canary.api.sharding import shard_lease_name, shard_of

    agent_in_cluster(fake)

    def sharded(stored):
        container = stored["spec"]["template"]["spec"]["containers"][0]
        container["args"] = ["--leader-elect", "--shards=2"]

    fake.edit("Deployment", AGENT_NAME, sharded)
    mine = shard_of("test/mhs", 2)
    for shard in (0, 1):
        pod = f"kubectl-canary-agent-7d9f-s{shard}"
        fake.add(
            {
                "apiVersion": "coordination.k8s.io/v1",
                "kind": "Lease",
                "metadata": {"name": shard_lease_name(shard), "namespace": AGENT_NS},
                "spec": {
                    "holderIdentity": f"{pod}_1",
                    "renewTime": "2026-11-27T09:59:58.000000Z",
                    "leaseDurationSeconds": 15,
                },
            }
        )
        fake.add(
            {
                "apiVersion": "v1",
                "kind": "Pod",
                "metadata": {"name": pod, "namespace": AGENT_NS},
                "spec": {"containers": [{"name": "agent", "image": "canary-agent:0.1.0"}]},
            }
        )
        fake.pod_logs[(AGENT_NS, pod)] = [
            x for x in LINES if ('"test/mhs"' in x) == (shard == mine)
        ]


def test_sharded_agent_logs_come_from_the_replica_holding_the_canarys_shard(run, fake):
    sharded_agent(fake)
    result = run("logs", "mhs")
    assert result.exit_code == 0, result.output
    shown = result.output.splitlines()
    assert len(shown) == 2, shown
    assert "Initialization done! mhs.test" in shown[0]
    assert "Advance mhs.test canary weight 10" in shown[1]
    everything = run("logs")
    assert everything.exit_code == 1
    assert "give a canary NAME" in everything.stderr


def test_doctor_checks_every_shards_lease(run, fake):
    sharded_agent(fake)
    result = run("doctor")
    # "RESULT CHECK DETAIL" rows, keyed by the check's first two words.
    checks = {" ".join(x.split()[1:3]): x for x in result.output.splitlines()}
    for shard in (0, 1):
        row = checks[f"shard {shard}"]
        assert row.startswith("ok") and f"(pod kubectl-canary-agent-7d9f-s{shard})" in row, row
    assert not any(key.startswith("leader") for key in checks), result.output
