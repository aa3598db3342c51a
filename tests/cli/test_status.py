"""`kubectl canary status`: table, wide, json/yaml, detail view, --wait and -w."""

from __future__ import annotations

import json

import yaml

from tests.cli import samples


def test_table_in_namespace(run, fake, golden):
    samples.release(fake)
    fake.add(samples.canary("podinfo", phase="Succeeded", weight=0, failed=0))
    fake.add(samples.canary("other", namespace="prod", phase="Failed", weight=0, failed=5))
    result = run("status")
    assert result.exit_code == 0, result.output
    golden("status_table.txt", result.output)


def test_table_all_namespaces_wide(run, fake, golden):
    samples.release(fake)
    fake.add(samples.canary("other", namespace="prod", phase="Failed", weight=0, failed=5))
    fake.add(samples.canary("held", namespace="prod", paused=True))
    result = run("status", "-A", "-o", "wide")
    assert result.exit_code == 0, result.output
    golden("status_table_wide_all.txt", result.output)


def test_empty_namespace_says_so_on_stderr(run):
    result = run("status", "-n", "empty")
    assert result.exit_code == 0
    assert result.stdout == ""
    assert "No canaries found in namespace empty." in result.stderr


def test_list_as_json_and_yaml_is_a_kubernetes_list(run, fake):
    samples.release(fake)
    as_json = json.loads(run("status", "-o", "json").output)
    as_yaml = yaml.safe_load(run("status", "-o", "yaml").output)
    assert as_json["kind"] == as_yaml["kind"] == "List"
    assert [i["metadata"]["name"] for i in as_json["items"]] == ["mhs"]
    assert as_yaml["items"][0]["status"]["canaryWeight"] == 20


def test_detail_view(run, fake, golden):
    samples.release(fake)
    result = run("status", "mhs")
    assert result.exit_code == 0, result.output
    golden("status_detail_progressing.txt", result.output)


def test_detail_view_kubernetes_provider_routes_by_ready_pods(run, fake, golden):
    samples.release(fake, provider="kubernetes")
    result = run("status", "mhs")
    assert result.exit_code == 0, result.output
    golden("status_detail_kubernetes.txt", result.output)


def test_detail_view_failed_and_missing_route(run, fake, golden):
    fake.add(
        samples.canary(
            phase="Failed",
            weight=0,
            failed=5,
            lastMetrics=[],
            lastRequest={
                "id": "x",
                "action": "resume",
                "accepted": False,
                "message": "the canary is not paused",
                "time": "2026-11-27T09:58:30Z",
            },
        )
    )
    fake.add(samples.deployment("mhs-primary", "ghcr.io/acme/mhs:1.1.2", app="mhs-primary"))
    result = run("status", "mhs")
    assert result.exit_code == 0, result.output
    golden("status_detail_failed.txt", result.output)


def test_detail_as_yaml_is_the_object(run, fake):
    samples.release(fake)
    doc = yaml.safe_load(run("status", "mhs", "-o", "yaml").output)
    assert doc["metadata"]["name"] == "mhs" and doc["kind"] == "Canary"


def test_name_with_all_namespaces_is_a_usage_error(run):
    result = run("status", "mhs", "-A")
    assert result.exit_code == 2
    assert "cannot be combined" in result.output


def test_wait_returns_0_once_primary_runs_the_target_template(run, fake, clock):
    c = samples.release(fake)

    # The agent finishes the release after three polls: promoted template, phase Succeeded.
    def agent(t: float) -> None:
        if t >= 1003 and fake.find("Canary", "mhs")["status"]["phase"] != "Succeeded":
            target = fake.find("Deployment", "mhs")

            def promote(primary):
                primary["spec"]["template"]["spec"] = target["spec"]["template"]["spec"]

            def succeed(obj):
                obj["status"].update(phase="Succeeded", canaryWeight=0)
                obj["status"]["history"].append(
                    samples.entry(
                        "2026-11-27T10:03:00Z", "Promotion completed! Scaling down mhs.test"
                    )
                )

            fake.edit("Deployment", "mhs-primary", promote)
            fake.edit("Canary", "mhs", succeed)

    clock.on_sleep.append(agent)
    result = run("status", "mhs", "--wait", "--timeout", "60")
    assert result.exit_code == 0, result.output
    assert "succeeded: Promotion completed! Scaling down mhs.test" in result.output
    assert c["status"]["phase"] == "Progressing"


def test_wait_ignores_a_success_left_from_the_previous_release(run, fake):
    samples.release(fake, phase="Succeeded", weight=0)  # primary 1.1.2, target 1.1.3: not done
    result = run("status", "mhs", "--wait", "--timeout", "5")
    assert result.exit_code == 1
    assert result.stderr.splitlines()[-1] == (
        "error: timed out after 5s waiting for canary mhs (phase Succeeded)"
    )


def test_wait_reports_an_old_failure_after_one_interval(run, fake, clock):
    samples.release(fake, phase="Failed", weight=0, failed=5)
    result = run("status", "mhs", "--wait", "--timeout", "600")
    assert result.exit_code == 1
    assert "canary mhs failed" in result.stderr
    assert 1060 <= clock.t < 1070  # one analysis interval (1m) + slack, not the whole timeout


def test_watch_redraws_only_on_change(run, fake):
    samples.release(fake)

    def while_watched():
        # First a change the view does not show, then one it does.
        fake.edit("Canary", "mhs", lambda c: c["metadata"].update(annotations={"note": "x"}))
        fake.edit("Canary", "mhs", lambda c: c["status"].update(canaryWeight=30))

    fake.on_watch.append(while_watched)
    result = run("status", "-w")
    assert result.exit_code == 0, result.output
    frames = [f for f in result.output.split("\n\n") if f.strip()]
    assert len(frames) == 2
    assert "Progressing   20" in frames[0] and "Progressing   30" in frames[1]


def test_redraw_prints_changes_only_and_at_most_every_200ms():
    from kubectl_canary.cli.watching import Redraw

    frames: list[str] = []
    r = Redraw(frames.append, 0.2)
    assert r.offer("a", 10.0) is None
    assert r.offer("a", 10.05) is None  # unchanged: nothing to draw
    wait = r.offer("b", 10.1)  # changed, but too soon
    assert wait is not None and abs(wait - 0.1) < 1e-9
    assert r.offer("c", 10.15) is not None  # still too soon; only the newest text is kept
    r.flush(10.3)
    assert frames == ["a", "c"]


def test_canary_the_agent_has_not_seen(run, fake):
    c = samples.canary()
    del c["status"]
    fake.add(c)
    assert run("status").output.splitlines()[1].split()[:3] == ["mhs", "<not", "seen>"]
    assert "the agent has not picked this canary up yet" in run("status", "mhs").output


def test_gateway_api_routes_are_read_from_the_httproute(run, fake):
    samples.release(fake, provider="gatewayapi")
    fake.edit(
        "Canary", "mhs", lambda c: c["spec"]["service"].update(gatewayRefs=[{"name": "public"}])
    )
    fake.add(
        {
            "apiVersion": "gateway.networking.k8s.io/v1",
            "kind": "HTTPRoute",
            "metadata": {"name": "mhs"},
            "spec": {
                "rules": [
                    {
                        "backendRefs": [
                            {"name": "mhs-primary", "weight": 70},
                            {"name": "mhs-canary", "weight": 30},
                        ]
                    }
                ]
            },
        }
    )
    out = run("status", "mhs").output
    assert "Routes (HTTPRoute mhs):" in out
    assert "mhs-primary   70" in out and "mhs-canary    30" in out
