"""convert, create, version, completion, doctor: each with its real output."""

from __future__ import annotations

import json
from pathlib import Path

import yaml

from kubectl_canary import __version__
from kubectl_canary.api.model import API_VERSION
from tests.cli import samples
from tests.cli.test_init import play_cluster

FLAGGER = Path(__file__).parent / "golden" / "flagger_in.yaml"


def test_convert_writes_ours_and_reports_what_was_dropped(run, golden):
    result = run("convert", "-f", str(FLAGGER))
    assert result.exit_code == 0, result.output
    golden("convert_out.yaml", result.stdout)
    assert result.stderr.splitlines() == [
        "warning: Canary podinfo: spec.service.corsPolicy: not supported, dropped",
        "warning: Canary podinfo: spec.analysis.metrics[0].threshold: deprecated, converted to "
        "thresholdRange.min",
        "warning: Canary podinfo: spec.analysis.sessionAffinity: not supported, dropped",
    ]


def test_convert_from_stdin_as_json(run):
    result = run("convert", "-f", "-", "-o", "json", input=FLAGGER.read_text())
    doc = json.loads(result.stdout)
    assert doc["kind"] == "List" and doc["items"][0]["apiVersion"] == API_VERSION


def test_convert_rejects_what_is_not_yaml(run, tmp_path):
    bad = tmp_path / "bad.yaml"
    bad.write_text("a: [\n")
    result = run("convert", "-f", str(bad))
    assert result.exit_code == 1
    assert result.stderr.startswith(f"error: {bad} is not valid YAML:")
    assert result.stderr.count("\n") == 1


def test_create_dry_run(run, golden):
    result = run(
        "create",
        "mhs",
        "--port",
        "9898",
        "--provider",
        "istio",
        "--success-rate",
        "99",
        "--max-duration",
        "500",
        "--dry-run",
        "-o",
        "yaml",
    )
    assert result.exit_code == 0, result.output
    golden("create_dry_run.yaml", result.output)


def test_create_refuses_an_invalid_canary(run, fake):
    result = run("create", "mhs", "--port", "9898", "--step-weights", "50,20")
    assert result.exit_code == 1
    assert result.stderr.startswith("error: the Canary would be invalid: spec.analysis.stepWeights")
    assert fake.writes == []


def test_create_then_conflict(run, fake):
    fake.add(samples.deployment("mhs", "ghcr.io/acme/mhs:1"))
    first = run("create", "mhs", "--port", "9898")
    assert first.exit_code == 0 and first.stdout == "canary.kubectl-canary.dev/mhs created\n"
    stored = fake.find("Canary", "mhs")
    assert stored["spec"]["targetRef"]["name"] == "mhs"
    again = run("create", "mhs", "--port", "9898")
    assert again.exit_code == 1
    assert again.stderr == 'error: canary "mhs" already exists in namespace "test"\n'


def test_version_client_only_needs_no_cluster(run):
    result = run("version", "--client", "-o", "json")
    assert json.loads(result.output) == {"plugin": __version__}


def test_version_with_agent(run, fake):
    play_cluster(fake)
    run("init", "--image", "ghcr.io/kubectl-canary/canary-agent:0.1.0")
    result = run("version")
    assert result.output == (
        f"Plugin version: {__version__}\n"
        "Agent version:  0.1.0 (ghcr.io/kubectl-canary/canary-agent:0.1.0) "
        "(deployment kubectl-canary/kubectl-canary-agent)\n"
    )


def test_kubectl_completion_speaks_cobra(run, fake):
    from click.testing import CliRunner

    from kubectl_canary.cli.completion import cobra_complete
    from kubectl_canary.cli.main import cli
    from kubectl_canary.cli.options import Runtime

    samples.release(fake)
    fake.add(samples.canary("mhs-two"))

    def complete(*words: str) -> list[str]:
        with CliRunner().isolation() as (out, _, _):
            cobra_complete(cli, list(words), obj=Runtime(connect=lambda *a: fake))
            return out.getvalue().decode().splitlines()

    commands = complete("st")
    assert len(commands) == 2 and commands[1] == ":4"
    assert commands[0].startswith("status\tShow canaries, or one canary in detail")
    assert complete("status", "-o", "") == ["wide", "json", "yaml", ":4"]
    assert complete("abort", "mhs") == ["mhs", "mhs-two", ":4"]
    assert complete("convert", "-f", "") == [":0"]  # files: let the shell complete them


def test_kubectl_completion_script(run):
    result = run("completion", "kubectl")
    assert result.output.startswith("#!/usr/bin/env sh\n")
    assert 'exec kubectl-canary __complete "$@"' in result.output


def test_doctor_reports_and_hints(run, fake, golden):
    play_cluster(fake)
    run("init")
    fake.edit(
        "Lease",
        "kubectl-canary-agent",
        lambda lease: lease["spec"].update(
            renewTime="2026-11-27T09:59:59.000000Z", leaseDurationSeconds=15
        ),
    )
    fake.add(
        {
            "apiVersion": "v1",
            "kind": "Pod",
            "metadata": {"name": "kubectl-canary-agent-abc", "namespace": "kubectl-canary"},
            "spec": {"containers": [{"name": "agent", "image": "canary-agent:0.1.0"}]},
        }
    )
    c = samples.release(fake)  # istio provider: the mesh CRDs are checked
    assert c["spec"]["provider"] == "istio"
    for crd in ("virtualservices.networking.istio.io", "destinationrules.networking.istio.io"):
        fake.remove("CustomResourceDefinition", crd)  # Istio is not installed
    result = run("doctor")
    assert result.exit_code == 1
    golden("doctor.txt", result.output)


def test_help_lists_every_command_with_examples(run):
    from kubectl_canary.cli.main import COMMANDS

    top = run("--help").output
    for name in COMMANDS:
        assert name in top
        assert "Examples:" in run(name, "--help").output, name


def test_every_command_imports_and_registers_itself_by_name():
    import importlib

    from kubectl_canary.cli.main import COMMANDS

    for name, target in COMMANDS.items():
        module, attr = target.split(":")
        assert getattr(importlib.import_module(module), attr).name == name


def test_lease_name_matches_the_agent():
    from agent.main import LEASE_NAME as AGENT_LEASE
    from kubectl_canary.cli.agent_info import LEASE_NAME

    assert LEASE_NAME == AGENT_LEASE


def test_yaml_output_of_status_is_valid_yaml(run, fake):
    samples.release(fake)
    assert yaml.safe_load(run("status", "mhs", "-o", "yaml").output)["kind"] == "Canary"


def test_fast_path_names_match_the_model():
    from kubectl_canary.api.model import API_VERSION, AnalysisSpec
    from kubectl_canary.cli.api_names import CANARY_API_VERSION, DEFAULT_THRESHOLD

    assert CANARY_API_VERSION == API_VERSION
    assert AnalysisSpec().threshold == DEFAULT_THRESHOLD


def test_listing_does_not_import_the_typed_model():
    """`status -A` stays fast: the model's dataclasses load only for the detail view."""
    import subprocess
    import sys

    code = (
        "import sys\n"
        "from click.testing import CliRunner\n"
        "from kubectl_canary.cli.main import cli\n"
        "from kubectl_canary.cli.options import Runtime\n"
        "from tests.store_client import StoreClient\n"
        "runtime = Runtime(connect=lambda *a: StoreClient())\n"
        "r = CliRunner().invoke(cli, ['status', '-A'], obj=runtime)\n"
        "assert r.exit_code == 0, r.output\n"
        "print('kubectl_canary.api.model' in sys.modules)\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert out.stdout.strip() == "False", out.stderr
