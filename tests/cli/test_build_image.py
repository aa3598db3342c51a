"""The agent image's pure parts (scripts/build_image.py): the layer and the OCI layout are
deterministic and well formed, the locks are read as apt and pip expect. The real build, run
against a real API server, is tests/realcluster/test_agent_image.py."""

from __future__ import annotations

import hashlib
import importlib.util
import io
import json
import sys
import tarfile
from pathlib import Path
from types import ModuleType

import pytest

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def build_image() -> ModuleType:
    path = ROOT / "scripts" / "build_image.py"
    spec = importlib.util.spec_from_file_location("build_image", path)
    assert spec and spec.loader
    module = importlib.util.module_from_spec(spec)
    sys.modules.setdefault("build_image", module)
    spec.loader.exec_module(module)
    return module


def _tree(root: Path) -> Path:
    (root / "usr/bin").mkdir(parents=True)
    (root / "usr/bin/python3.11").write_bytes(b"\x7fELF")
    (root / "usr/bin/python3.11").chmod(0o755)
    (root / "usr/bin/python3").symlink_to("python3.11")
    (root / "etc").mkdir()
    (root / "etc/passwd").write_text("nonroot:x:65532:65532::/tmp:/usr/sbin/nologin\n")
    return root


def test_the_layer_is_sorted_owned_by_root_and_timeless(
    build_image: ModuleType, tmp_path: Path
) -> None:
    first = build_image.layer(_tree(tmp_path / "a"))
    second = build_image.layer(_tree(tmp_path / "b"))
    assert first == second
    with tarfile.open(fileobj=io.BytesIO(first)) as tar:
        members = tar.getmembers()
    names = [m.name for m in members]
    assert names == sorted(names)
    assert {(m.uid, m.gid, m.mtime) for m in members} == {(0, 0, build_image.FIXED_TIME)}
    link = next(m for m in members if m.name == "usr/bin/python3")
    assert link.issym() and link.linkname == "python3.11"
    assert next(m for m in members if m.name == "usr/bin/python3.11").mode & 0o111


def test_the_oci_layout_links_index_manifest_config_and_layer(
    build_image: ModuleType, tmp_path: Path
) -> None:
    layer = build_image.layer(_tree(tmp_path / "root"))
    out = tmp_path / "out"
    out.mkdir()
    archive = build_image.oci_archive(layer, "arm64", out)
    again = build_image.oci_archive(layer, "arm64", out)
    assert again == archive and archive.name.endswith("-linux-arm64.oci.tar")
    with tarfile.open(archive) as tar:

        def read(name: str) -> bytes:
            member = tar.extractfile(name)
            assert member is not None
            return member.read()

        def blob(descriptor: dict[str, str]) -> bytes:
            data = read("blobs/sha256/" + descriptor["digest"].removeprefix("sha256:"))
            assert "sha256:" + hashlib.sha256(data).hexdigest() == descriptor["digest"]
            assert len(data) == int(descriptor["size"])
            return data

        assert json.loads(read("oci-layout")) == {"imageLayoutVersion": "1.0.0"}
        (entry,) = json.loads(read("index.json"))["manifests"]
        assert entry["platform"] == {"architecture": "arm64", "os": "linux"}
        manifest = json.loads(blob(entry))
        config = json.loads(blob(manifest["config"]))
        (layer_desc,) = manifest["layers"]
        with tarfile.open(fileobj=io.BytesIO(blob(layer_desc))) as layer_tar:
            assert "usr/bin/python3.11" in layer_tar.getnames()
    assert config["architecture"] == "arm64"
    assert config["config"]["User"] == "65532:65532"
    assert config["rootfs"]["diff_ids"] == ["sha256:" + hashlib.sha256(layer).hexdigest()]


def test_the_locks_pin_every_package_for_every_architecture(build_image: ModuleType) -> None:
    for arch in build_image.ARCHES:
        pins = build_image.read_debian_lock(arch)
        names = {pin.split("=", 1)[0] for pin in pins}
        assert set(build_image.DEBIAN_ROOTS) <= names
        assert all("=" in pin and pin.split("=", 1)[1] for pin in pins)
    lines = [
        line
        for line in build_image.PY_LOCK.read_text().splitlines()
        if line and not line.startswith("#")
    ]
    pinned = {line.split("==", 1)[0] for line in lines}
    assert {"kubernetes", "prometheus-client", "pyyaml"} <= pinned
    assert all("--hash=sha256:" in line for line in lines)
