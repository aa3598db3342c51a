"""Expected failures: one line on stderr, exit status 1, never a traceback."""

from __future__ import annotations

import socket

import pytest
from click.testing import CliRunner

from kubectl_canary.cli.main import cli
from kubectl_canary.cli.options import Runtime
from kubectl_canary.resources import ConflictError, ForbiddenError
from tests.cli import samples


def assert_one_line(result, expected: str) -> None:
    assert result.exit_code == 1, result.output
    assert result.stdout == ""
    assert result.stderr == f"error: {expected}\n"
    assert "Traceback" not in result.output


def real_cli(*args: str, env: dict[str, str]):
    """The CLI with the real kube adapter (no fake), under a controlled environment."""
    return CliRunner().invoke(cli, list(args), obj=Runtime(), env=env)


def test_no_kubeconfig(tmp_path):
    result = real_cli(
        "status", env={"KUBECONFIG": "", "HOME": str(tmp_path), "KUBERNETES_SERVICE_HOST": ""}
    )
    assert_one_line(
        result,
        "no kubeconfig found: set KUBECONFIG, pass --kubeconfig or create ~/.kube/config",
    )


def test_kubeconfig_flag_to_missing_file(tmp_path):
    result = real_cli("status", "--kubeconfig", str(tmp_path / "nope"), env={})
    assert_one_line(result, f"kubeconfig {tmp_path / 'nope'} does not exist")


def test_unknown_context(tmp_path):
    cfg = tmp_path / "config"
    cfg.write_text(kubeconfig_text("http://127.0.0.1:1"))
    result = real_cli("status", "--context", "other", env={"KUBECONFIG": str(cfg)})
    assert_one_line(result, 'context "other" does not exist in the kubeconfig')


def kubeconfig_text(server: str) -> str:
    return f"""apiVersion: v1
kind: Config
clusters:
- name: c
  cluster: {{server: "{server}"}}
users:
- name: u
  user: {{token: abc}}
contexts:
- name: ctx
  context: {{cluster: c, user: u, namespace: shop}}
current-context: ctx
"""


def test_unreachable_cluster(tmp_path):
    with socket.socket() as s:  # a port nothing listens on
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    cfg = tmp_path / "config"
    cfg.write_text(kubeconfig_text(f"http://127.0.0.1:{port}"))
    result = real_cli("status", env={"KUBECONFIG": str(cfg)})
    assert_one_line(
        result, f"cannot reach the cluster at http://127.0.0.1:{port}: Connection refused"
    )


def test_crds_missing_hints_init(run, fake):
    fake.remove("CustomResourceDefinition", "canaries.kubectl-canary.dev")
    assert_one_line(
        run("status", "-A"),
        "the kubectl-canary CRDs are not installed in this cluster: "
        "run `kubectl canary init` to install kubectl-canary",
    )


@pytest.mark.parametrize("command", [["status", "nope"], ["abort", "nope"], ["retry", "nope"]])
def test_not_found(run, command):
    assert_one_line(run(*command), 'canary "nope" not found in namespace "test"')


def test_forbidden(run, fake):
    samples.release(fake)
    forbidden = ForbiddenError('canary is forbidden: User "dev" cannot patch resource', 403)
    fake.fail("patch", "Canary", forbidden, times=None)
    assert_one_line(run("pause", "mhs"), 'canary is forbidden: User "dev" cannot patch resource')


def test_conflict(run, fake):
    samples.release(fake)

    def racing_writer(fake_, verb, obj):
        raise ConflictError(
            'Operation cannot be fulfilled on canaries "mhs": the object has been modified', 409
        )

    fake.on_write.append(racing_writer)
    assert_one_line(
        run("abort", "mhs"),
        'Operation cannot be fulfilled on canaries "mhs": the object has been modified',
    )
