"""The krew archives: reproducible, complete, and the zipapp runs with nothing but python3."""

from __future__ import annotations

import hashlib
import subprocess
import sys
import tarfile
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parents[2]


def build(out: Path) -> list[str]:
    done = subprocess.run(
        [sys.executable, str(ROOT / "scripts" / "build_release.py"), "--out", str(out)],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 0, done.stderr
    return done.stdout.splitlines()


def test_archives_are_reproducible_and_hold_the_plugin(tmp_path):
    first = build(tmp_path / "a")
    second = build(tmp_path / "b")
    assert [line.split()[0] for line in first] == [line.split()[0] for line in second]
    for line in first:
        digest, rel = line.split()
        archive = tmp_path / "a" / Path(rel).name
        assert hashlib.sha256(archive.read_bytes()).hexdigest() == digest
        with tarfile.open(archive) as tar:
            members = {m.name: m.mode for m in tar.getmembers()}
        assert members == {
            "LICENSE": 0o644,
            "kubectl-canary": 0o755,
            "kubectl_complete-canary": 0o755,
        }


def test_zipapp_runs_in_an_isolated_interpreter(tmp_path):
    build(tmp_path)
    pyz = tmp_path / "kubectl-canary.pyz"
    # -I -S: no site-packages, no user paths: only what the zipapp carries.
    version = subprocess.run(
        [sys.executable, "-I", "-S", str(pyz), "version", "--client"],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert version.returncode == 0, version.stderr
    assert version.stdout.startswith("Plugin version: ")
    manifests = subprocess.run(
        [sys.executable, "-I", "-S", str(pyz), "init", "--dry-run"],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert manifests.returncode == 0, manifests.stderr
    kinds = [d["kind"] for d in yaml.safe_load_all(manifests.stdout)]
    assert kinds.count("CustomResourceDefinition") == 3 and "Deployment" in kinds


def test_krew_manifest_names_both_platforms():
    manifest = yaml.safe_load((ROOT / "krew-manifest.yaml").read_text())
    assert manifest["apiVersion"] == "krew.googlecontainertools.github.com/v1alpha2"
    assert manifest["kind"] == "Plugin" and manifest["metadata"]["name"] == "canary"
    oses = [p["selector"]["matchLabels"]["os"] for p in manifest["spec"]["platforms"]]
    assert oses == ["linux", "darwin"]
    for platform in manifest["spec"]["platforms"]:
        assert platform["bin"] == "kubectl-canary"
        assert len(platform["sha256"]) == 64
        assert {f["from"] for f in platform["files"]} == {
            "kubectl-canary",
            "kubectl_complete-canary",
            "LICENSE",
        }
