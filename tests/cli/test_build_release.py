"""The krew archives and the wheel: byte-identical builds, the committed krew manifest matches
them, and an archive runs with nothing but python3 and what it carries."""

from __future__ import annotations

import hashlib
import importlib.util
import re
import subprocess
import sys
import tarfile
from pathlib import Path

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[2]
PLATFORMS = ["linux-amd64", "linux-arm64", "darwin-amd64", "darwin-arm64"]

# Building downloads pinned wheels (cached) and compresses four archives: one group, so the two
# workers do not both build at once.
pytestmark = pytest.mark.xdist_group("serial")


def build(out: Path) -> dict[str, str]:
    done = subprocess.run(
        [sys.executable, str(ROOT / "scripts" / "build_release.py"), "--out", str(out), "--wheel"],
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert done.returncode == 0, done.stderr[-2000:]
    return {name: digest for digest, name in (line.split() for line in done.stdout.splitlines())}


@pytest.fixture(scope="module")
def builds(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, dict[str, str], dict[str, str]]:
    base = tmp_path_factory.mktemp("release")
    return base / "a", build(base / "a"), build(base / "b")


def test_two_builds_are_byte_identical(builds) -> None:
    out, first, second = builds
    assert first == second
    names = sorted(first)
    assert names == sorted(
        [f"kubectl-canary-v0.1.0-{p}.tar.gz" for p in PLATFORMS]
        + ["kubectl_canary-0.1.0-py3-none-any.whl"]
    )
    for name, digest in first.items():
        assert hashlib.sha256((out / name).read_bytes()).hexdigest() == digest


def _recorded_inputs(manifest_text: str) -> str:
    found = re.search(r"^# inputs: ([0-9a-f]{64})$", manifest_text, re.M)
    assert found, "the krew manifest does not record the inputs it was built from"
    return found.group(1)


def test_committed_krew_manifest_matches_the_build(builds) -> None:
    out, first, _ = builds
    committed = (ROOT / "plugins" / "canary.yaml").read_text()
    built = (out / "canary.yaml").read_text()
    manifest = yaml.safe_load(committed)
    assert manifest["kind"] == "Plugin" and manifest["metadata"]["name"] == "canary"
    hashes = {}
    for platform in manifest["spec"]["platforms"]:
        labels = platform["selector"]["matchLabels"]
        name = f"{labels['os']}-{labels['arch']}"
        assert platform["uri"].endswith(
            f"/{manifest['spec']['version']}/kubectl-canary-"
            f"{manifest['spec']['version']}-{name}.tar.gz"
        )
        assert platform["bin"] == "kubectl-canary"
        hashes[name] = platform["sha256"]
    assert sorted(hashes) == sorted(PLATFORMS)
    recorded = _recorded_inputs(committed)
    if recorded == _recorded_inputs(built):
        # A manifest of this very code: its sha256s must be this build's.
        assert committed == built, (
            "plugins/canary.yaml does not match the build: "
            "run python3 scripts/build_release.py --write-manifest"
        )
    else:
        # The last release's manifest (the release workflow writes it; main has moved on
        # since): it must still be exactly what the generator makes of its own values.
        assert committed == release_script().manifest(hashes, recorded)


def release_script():  # type: ignore[no-untyped-def]
    spec = importlib.util.spec_from_file_location(
        "build_release", ROOT / "scripts" / "build_release.py"
    )
    assert spec and spec.loader
    module = importlib.util.module_from_spec(spec)
    # Registered before it runs: its dataclasses look their module up in sys.modules.
    sys.modules.setdefault("build_release", module)
    spec.loader.exec_module(module)
    return module


def test_archive_holds_the_plugin_and_its_dependencies_only(builds) -> None:
    out, _, _ = builds
    with tarfile.open(out / "kubectl-canary-v0.1.0-linux-amd64.tar.gz") as tar:
        members = {m.name: m for m in tar.getmembers()}
    top = {name.split("/")[0] for name in members}
    assert top == {"kubectl-canary", "kubectl_complete-canary", "LICENSE", "lib"}
    assert members["kubectl-canary"].mode == 0o755 and members["LICENSE"].mode == 0o644
    assert {m.mtime for m in members.values()} == {1_700_000_000}
    assert {(m.uid, m.gid, m.uname) for m in members.values()} == {(0, 0, "")}
    packages = {name.split("/")[1] for name in members if name.startswith("lib/")}
    assert "agent" not in packages  # the agent ships as an image
    assert {"kubectl_canary", "click", "yaml", "kr8s", "httpx", "cryptography"} <= packages
    assert not any("__pycache__" in name or name.endswith(".pyc") for name in members)
    # One cffi backend per supported CPython, side by side.
    backends = [n for n in members if n.startswith("lib/_cffi_backend.cpython-")]
    assert len(backends) == 4


def test_archive_runs_in_an_isolated_interpreter(builds, tmp_path: Path) -> None:
    out, _, _ = builds
    with tarfile.open(out / "kubectl-canary-v0.1.0-linux-amd64.tar.gz") as tar:
        tar.extractall(tmp_path, filter="data")
    launcher = tmp_path / "kubectl-canary"

    def run(*args: str) -> subprocess.CompletedProcess[str]:
        # -I -S: no site-packages, no user paths: only what the archive carries.
        return subprocess.run(
            [sys.executable, "-I", "-S", *args], capture_output=True, text=True, timeout=60
        )

    version = run(str(launcher), "version", "--client")
    assert version.returncode == 0, version.stderr
    assert version.stdout.startswith("Plugin version: ")
    manifests = run(str(launcher), "init", "--dry-run")
    assert manifests.returncode == 0, manifests.stderr
    kinds = [d["kind"] for d in yaml.safe_load_all(manifests.stdout)]
    assert kinds.count("CustomResourceDefinition") == 3 and "Deployment" in kinds
    demo = run(str(launcher), "demo")
    assert demo.returncode != 0
    assert "needs the full package (the krew build is plugin-only)" in demo.stderr
    # The cluster client and its compiled dependencies load from lib/ alone.
    client = run(
        "-c",
        f"import sys; sys.path.insert(0, {str(tmp_path / 'lib')!r}); "
        "import kr8s, cryptography.x509, yaml; print(kr8s.__file__)",
    )
    assert client.returncode == 0, client.stderr
    assert client.stdout.startswith(str(tmp_path / "lib"))
