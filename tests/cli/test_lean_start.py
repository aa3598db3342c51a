"""Commands that need no cluster start without the cluster libraries: kr8s and httpx (the
plugin's client, ~0.4 s to import) and `kubernetes` (the agent's) stay unloaded for `--help`,
completion, `version --client`, `convert` and `create --dry-run` (which reads the context's
namespace from the kubeconfig, and nothing more)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

FLAGGER = Path(__file__).parent / "golden" / "flagger_in.yaml"
HEAVY = ("kr8s", "httpx", "anyio", "kubernetes", "tabulate")

COMMANDS = {
    "help": ["--help"],
    "completion": ["completion", "bash"],
    "version-client": ["version", "--client"],
    "convert": ["convert", "-f", str(FLAGGER)],
    "create-dry-run": ["create", "mhs", "--port", "9898", "--dry-run", "-o", "yaml"],
}


@pytest.mark.parametrize("args", COMMANDS.values(), ids=COMMANDS.keys())
def test_commands_without_a_cluster_import_no_cluster_library(
    args: list[str], tmp_path: Path
) -> None:
    config = tmp_path / "config"
    config.write_text(
        "clusters: [{name: c, cluster: {server: 'https://127.0.0.1:9'}}]\n"
        "users: [{name: u, user: {token: t}}]\n"
        "contexts: [{name: ctx, context: {cluster: c, user: u, namespace: shop}}]\n"
        "current-context: ctx\n"
    )
    code = (
        "import json, sys\n"
        "from click.testing import CliRunner\n"
        "from kubectl_canary.cli.main import cli\n"
        "r = CliRunner().invoke(cli, json.loads(sys.argv[1]))\n"
        "assert r.exit_code == 0, r.output\n"
        "assert 'create' not in sys.argv[1] or 'namespace: shop' in r.output, r.output\n"
        f"print(json.dumps(sorted(m for m in sys.modules if m.split('.')[0] in {HEAVY!r})))\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", code, json.dumps(args)],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
        cwd=Path(__file__).parents[2],
        env={**os.environ, "KUBECONFIG": str(config)},
    )
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout.strip().splitlines()[-1]) == []
