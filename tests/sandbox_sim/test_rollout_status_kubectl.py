"""`kubectl rollout status` against the sandbox: success for a good image, the progress
deadline for a bad one. Needs /usr/bin/kubectl (fails clearly without it, never skips)."""

from __future__ import annotations

import json
import shutil
import subprocess
from collections.abc import Iterator
from pathlib import Path
from types import SimpleNamespace

import pytest

from kubectl_canary.sandbox.process import SandboxHandle, start_sandbox

pytestmark = [pytest.mark.e2e, pytest.mark.kubectl]


@pytest.fixture
def sandbox(tmp_path: Path) -> Iterator[SandboxHandle]:
    handle = start_sandbox(tmp_path / "sandbox", speed=10.0, seed=5)
    try:
        yield handle
    finally:
        handle.stop()


def kubectl(
    sandbox: SandboxHandle, *args: str, stdin: str | None = None
) -> subprocess.CompletedProcess[str]:
    binary = shutil.which("kubectl")
    if binary is None:
        pytest.fail("kubectl is not on PATH; install the kubectl client to run this test")
    return subprocess.run(
        [binary, "--kubeconfig", str(sandbox.kubeconfig), *args],
        input=stdin,
        capture_output=True,
        text=True,
        timeout=60,
    )


def test_rollout_status_success_and_deadline(sandbox: SandboxHandle, h: SimpleNamespace) -> None:
    namespace = {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "test"}}
    good = h.deployment("good", "acme/good:1", replicas=2)
    bad = h.deployment("bad", "acme/bad:1-crashloop", replicas=1, progressDeadlineSeconds=20)
    for manifest in (namespace, good, bad):
        result = kubectl(sandbox, "apply", "-f", "-", stdin=json.dumps(manifest))
        assert result.returncode == 0, result.stderr

    ok = kubectl(sandbox, "-n", "test", "rollout", "status", "deployment/good", "--timeout=40s")
    assert ok.returncode == 0, ok.stderr
    assert 'deployment "good" successfully rolled out' in ok.stdout

    failed = kubectl(sandbox, "-n", "test", "rollout", "status", "deployment/bad", "--timeout=40s")
    assert failed.returncode != 0
    assert 'deployment "bad" exceeded its progress deadline' in failed.stderr
