"""manifests/: the GitOps install is what `init` renders, in every form it ships in."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import yaml

from kubectl_canary.cli.init import plan
from kubectl_canary.cli.install_settings import InstallSettings

from .kubectl_env import require_kubectl

ROOT = Path(__file__).resolve().parents[2]
MANIFESTS = ROOT / "manifests"


def _objects(docs: list[dict[str, Any]]) -> dict[tuple[str, str, str], dict[str, Any]]:
    return {
        (d["kind"], d["metadata"].get("namespace", ""), d["metadata"]["name"]): d for d in docs if d
    }


def _init_renders(*watch: str) -> dict[tuple[str, str, str], dict[str, Any]]:
    settings = InstallSettings(watch_namespace=watch)
    return _objects(plan("kubectl-canary", settings, agent_process=False))


def test_committed_manifests_are_a_fresh_rendering() -> None:
    done = subprocess.run(
        [sys.executable, str(ROOT / "scripts" / "render_manifests.py"), "--check"],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 0, done.stderr


def test_install_yaml_is_what_init_applies() -> None:
    text = (MANIFESTS / "install.yaml").read_text()
    assert "${" not in text  # no template placeholder reaches a GitOps user
    assert _objects(list(yaml.safe_load_all(text))) == _init_renders()


@pytest.mark.kubectl
@pytest.mark.parametrize(("overlay", "watch"), [("base", ()), ("overlays/namespaced", ("apps",))])
def test_kustomize_builds_what_init_renders(overlay: str, watch: tuple[str, ...]) -> None:
    done = subprocess.run(
        [require_kubectl(), "kustomize", str(MANIFESTS / "kustomize" / overlay)],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 0, done.stderr
    assert _objects(list(yaml.safe_load_all(done.stdout))) == _init_renders(*watch)
