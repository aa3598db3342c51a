"""The process API: a background sandbox managed by pid file, and start failures."""

from __future__ import annotations

import json
import urllib.request
from pathlib import Path

import pytest

from kubectl_canary.sandbox.process import SandboxError, down, start_sandbox, status, up


def test_up_status_down(tmp_path: Path) -> None:
    state = tmp_path / "state"
    assert status(state).running is False
    try:
        started = up(state)
        assert started.running and started.url and started.kubeconfig
        with urllib.request.urlopen(started.url + "/version", timeout=5) as resp:
            assert json.loads(resp.read())["major"] == "1"
        assert "current-context: sandbox" in started.kubeconfig.read_text()
        again = up(state)
        assert again.pid == started.pid  # idempotent: one sandbox per state dir
    finally:
        stopped = down(state)
    assert stopped is True
    assert status(state).running is False
    assert down(state) is False


def test_start_failure_reports_the_log(tmp_path: Path) -> None:
    with pytest.raises(SandboxError, match="sandbox.log"):
        start_sandbox(tmp_path, extra_crds=[tmp_path / "missing.yaml"], simulation=False)
