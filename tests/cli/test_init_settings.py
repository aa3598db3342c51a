"""init remembers its settings: a re-run keeps them, a flag changes one, and it says which."""

from __future__ import annotations

import json

import pytest
import yaml

from kubectl_canary.cli.agent_info import AGENT_NAME
from kubectl_canary.cli.errors import CliError
from kubectl_canary.cli.install_settings import (
    SETTINGS_ANNOTATION,
    InstallSettings,
    from_json,
    to_json,
)
from kubectl_canary.cli.manifests import DEFAULT_IMAGE
from tests.cli.test_init import play_cluster


def agent_container(fake):
    return fake.find("Deployment", AGENT_NAME, "kubectl-canary")["spec"]["template"]["spec"][
        "containers"
    ][0]


def recorded(fake):
    sa = fake.find("ServiceAccount", AGENT_NAME, "kubectl-canary")
    return json.loads(sa["metadata"]["annotations"][SETTINGS_ANNOTATION])


@pytest.fixture
def installed(run, fake):
    play_cluster(fake)
    fake.add({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "shop"}})
    done = run(
        "init",
        "--provider",
        "istio",
        "--metrics-server",
        "http://prom:9090",
        "--watch-namespace",
        "shop",
        "--allow-tls-disable",
    )
    assert done.exit_code == 0, done.output
    assert done.stdout.splitlines()[:4] == [
        "provider: kubernetes -> istio",
        "metrics-server: (none) -> http://prom:9090",
        "watch-namespace: (all) -> shop",
        "allow-tls-disable: false -> true",
    ]


def test_a_rerun_without_flags_keeps_every_setting(run, fake, installed):
    done = run("init")
    assert done.exit_code == 0, done.output
    assert done.stdout.splitlines()[0] == "settings: no change"
    args = agent_container(fake)["args"]
    assert "--provider=istio" in args
    assert "--metrics-server=http://prom:9090" in args
    assert "--watch-namespace=shop" in args
    assert "--allow-tls-disable" in args
    assert recorded(fake)["provider"] == "istio"


def test_a_flag_changes_only_its_setting_and_says_so(run, fake, installed):
    done = run("init", "--provider", "gatewayapi", "--no-allow-tls-disable")
    assert done.exit_code == 0, done.output
    assert done.stdout.splitlines()[:2] == [
        "provider: istio -> gatewayapi",
        "allow-tls-disable: true -> false",
    ]
    assert "deployment/kubectl-canary-agent configured" in done.stdout
    args = agent_container(fake)["args"]
    assert "--provider=gatewayapi" in args
    assert "--metrics-server=http://prom:9090" in args
    assert "--allow-tls-disable" not in args
    assert recorded(fake)["metricsServer"] == "http://prom:9090"


def test_dry_run_shows_the_changes_and_renders_the_kept_settings(run, fake, installed):
    writes = len(fake.writes)
    done = run("init", "--dry-run", "--metrics-server", "")
    assert done.exit_code == 0, done.output
    assert done.stderr.splitlines()[0] == "metrics-server: http://prom:9090 -> (none)"
    docs = list(yaml.safe_load_all(done.stdout))
    (dep,) = [d for d in docs if d["kind"] == "Deployment"]
    args = dep["spec"]["template"]["spec"]["containers"][0]["args"]
    assert "--provider=istio" in args and "--metrics-server=" in args
    assert len(fake.writes) == writes


def test_reset_goes_back_to_the_defaults(run, fake, installed):
    done = run("init", "--reset", "--metrics-server", "http://prom:9090")
    assert done.exit_code == 0, done.output
    assert done.stdout.splitlines()[:3] == [
        "provider: istio -> kubernetes",
        "watch-namespace: shop -> (all)",
        "allow-tls-disable: true -> false",
    ]
    assert recorded(fake) == json.loads(to_json(InstallSettings(metrics_server="http://prom:9090")))


def test_an_image_given_is_kept_and_an_empty_one_is_the_plugins_own(run, fake, installed):
    assert agent_container(fake)["image"] == DEFAULT_IMAGE
    assert run("init", "--image", "example/agent:2").exit_code == 0
    done = run("init")
    assert agent_container(fake)["image"] == "example/agent:2"
    done = run("init", "--image", "")
    assert done.stdout.splitlines()[0] == "image: example/agent:2 -> (default)"
    assert agent_container(fake)["image"] == DEFAULT_IMAGE


def test_a_fresh_install_reports_against_the_defaults(run, fake):
    play_cluster(fake)
    done = run("init")
    assert done.stdout.splitlines()[0] == "settings: the defaults"
    assert recorded(fake) == json.loads(to_json(InstallSettings()))


def test_a_damaged_record_is_one_line_and_reset_repairs_it(run, fake, installed):
    def damage(sa):
        sa["metadata"]["annotations"][SETTINGS_ANNOTATION] = "{not json"

    fake.edit("ServiceAccount", AGENT_NAME, damage, "kubectl-canary")
    done = run("init")
    assert done.exit_code == 1
    assert done.stderr.startswith(f"error: annotation {SETTINGS_ANNOTATION} of serviceaccount/")
    assert "run init with --reset" in done.stderr
    assert run("init", "--reset").exit_code == 0
    assert recorded(fake)["provider"] == "kubernetes"


def test_the_record_round_trips_and_ignores_keys_it_does_not_know():
    settings = InstallSettings(
        provider="istio", watch_namespace=("a", "b"), allow_wildcard_hosts=True
    )
    assert from_json(to_json(settings), "test") == settings
    newer = json.dumps({"provider": "istio", "someFutureSetting": 3})
    assert from_json(newer, "test") == InstallSettings(provider="istio")
    with pytest.raises(CliError, match="watchNamespace is 'a'"):
        from_json(json.dumps({"watchNamespace": "a"}), "test")
