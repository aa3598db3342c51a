#!/usr/bin/env python3
"""Build the agent's container image as an OCI archive, from pinned inputs, without Docker.

    python3 scripts/build_image.py [--out dist] [--arch amd64 --arch arm64]
    python3 scripts/build_image.py --rootfs DIR --arch amd64   # the root filesystem only
    python3 scripts/build_image.py --lock                      # re-pin (maintainers)

Writes `dist/canary-agent-<version>-linux-<arch>.oci.tar`: an OCI image layout in a tar, which
`skopeo copy oci-archive:...`, `podman load -i`, `buildah from oci-archive:...` and
`kind load image-archive` accept. One archive per architecture; the release workflow pushes
them and joins them under one multi-arch tag.

What is in it, and why:
- Debian bookworm's Python 3.11 and the shared libraries it needs, unpacked with
  `mmdebstrap --variant=extract` (no maintainer script runs, so nothing is executed for the
  target architecture: arm64 builds on amd64 without emulation). No shell, no package
  manager, no tar: the unpacked dpkg and tar are removed, like documentation and locales.
- The agent's Python dependencies from wheels pinned by sha256 (agent/image-requirements.lock,
  a pip requirements file, so agent/Dockerfile installs the very same files), the
  `agent` and `kubectl_canary` packages as git tracks them, and a launcher
  `/usr/local/bin/canary-agent` (an exec'd Python script: no shell needed at run time).
- Bytecode compiled at build time (unchecked-hash pycs): the agent starts fast and never
  writes, so the root filesystem can be read-only.
- User 65532:65532 (nonroot), HOME=/tmp; the Deployment mounts an emptyDir at /tmp.
Debian packages are pinned by version per architecture in agent/image-debian.lock. The layer
is written here (sorted entries, owner root, fixed times), so two builds from the same inputs
give the same bytes.
"""

from __future__ import annotations

import argparse
import gzip
import hashlib
import io
import json
import os
import shutil
import sys
import tarfile
import tempfile
import zipfile
from importlib import metadata
from pathlib import Path
from urllib.parse import unquote

# build_common sits beside this script; tests load the script from its path.
sys.path.insert(0, str(Path(__file__).resolve().parent))
from build_common import ROOT, pip_download, run, sha256, tracked, version  # noqa: E402

PY_LOCK = ROOT / "agent" / "image-requirements.lock"
DEB_LOCK = ROOT / "agent" / "image-debian.lock"
FIXED_TIME = 1_700_000_000
SUITE = "bookworm"
MIRROR = "http://deb.debian.org/debian"
SECURITY_MIRROR = "http://deb.debian.org/debian-security"
# What the agent runs on; apt adds their dependencies when the lock is written.
DEBIAN_ROOTS = ("python3.11-minimal", "libpython3.11-stdlib")
# The agent's runtime requirements (pyproject's dependencies minus the plugin's own).
REQUIREMENTS = ("kubernetes", "prometheus_client", "PyYAML")
ARCHES = {
    "amd64": ("manylinux_2_28_x86_64", "manylinux_2_17_x86_64", "manylinux2014_x86_64"),
    "arm64": ("manylinux_2_28_aarch64", "manylinux_2_17_aarch64", "manylinux2014_aarch64"),
}
UID = 65532
LIB = "opt/canary-agent/lib"
# Unpacked but never needed at run time; tools an intruder would use go too.
PRUNED = (
    "usr/share/doc",
    "usr/share/man",
    "usr/share/info",
    "usr/share/locale",
    "usr/share/lintian",
    "usr/share/bug",
    "var/cache/apt",
    "var/lib/apt",
    "var/log",
    "bin/tar",
    "usr/bin/tar",
    "usr/sbin/tarcat",
    "usr/sbin/rmt-tar",
    "usr/bin/update-alternatives",
)
PRUNED_GLOBS = ("usr/bin/dpkg*", "usr/sbin/dpkg*", "usr/lib/python3.11/**/__pycache__")
LAUNCHER = """#!/usr/bin/python3.11 -I
import sys

sys.path.insert(0, "/opt/canary-agent/lib")
from agent.main import main

sys.exit(main())
"""
PASSWD = (
    "root:x:0:0:root:/root:/usr/sbin/nologin\n"
    "nonroot:x:65532:65532:nonroot:/tmp:/usr/sbin/nologin\n"
)
GROUP = "root:x:0:\nnonroot:x:65532:\n"


def _wheel_args(arch: str) -> list[str]:
    tags = [a for tag in ARCHES[arch] for a in ("--platform", tag)]
    return [*tags, "--python-version", "3.11", "--implementation", "cp", "--only-binary=:all:"]


# ----- the locks -----


def read_debian_lock(arch: str) -> list[str]:
    """`package=version` for apt, this architecture's section of agent/image-debian.lock."""
    pins, section = [], ""
    for raw in DEB_LOCK.read_text().splitlines():
        line = raw.split("#", 1)[0].strip()
        if line.startswith("["):
            section = line.strip("[]")
        elif line and section == arch:
            name, ver = line.split()
            pins.append(f"{name}={ver}")
    if not pins:
        raise SystemExit(f"{DEB_LOCK.relative_to(ROOT)} has no [{arch}] section: run --lock")
    return pins


def _unpacked(rootfs: Path) -> list[tuple[str, str]]:
    """(package, version) of everything unpacked, from the .deb files apt kept: the extract
    variant leaves no dpkg status. Their names are `<package>_<version>_<arch>.deb` with the
    version's epoch colon escaped."""
    found = []
    for deb in (rootfs / "var/cache/apt/archives").glob("*.deb"):
        name, ver, _ = deb.name.split("_")
        found.append((name, unquote(ver)))
    return sorted(found)


def _write_status(rootfs: Path, arch: str) -> None:
    """A dpkg status file naming what is unpacked (no dpkg runs in the image): image scanners
    (trivy, grype) read it to match Debian security advisories."""
    stanzas = []
    for pin in read_debian_lock(arch):
        name, ver = pin.split("=", 1)
        stanzas.append(
            f"Package: {name}\nStatus: install ok installed\nVersion: {ver}\nArchitecture: {arch}\n"
        )
    status = rootfs / "var/lib/dpkg/status"
    status.parent.mkdir(parents=True, exist_ok=True)
    status.write_text("\n".join(stanzas))


def write_locks() -> None:
    """Pin the Python wheels (the versions installed here, which the tests ran with) and the
    Debian packages apt resolves today, for every architecture."""
    installed = {
        d.metadata["Name"].lower().replace("_", "-"): d.version for d in metadata.distributions()
    }
    pins = [f"{r}=={installed[r.lower().replace('_', '-')]}" for r in REQUIREMENTS]
    wheels: dict[tuple[str, str], set[str]] = {}
    deb_lines = [
        "# Debian packages of the agent image, per architecture: name and version.",
        "# Written by `python3 scripts/build_image.py --lock`; do not edit by hand.",
    ]
    with tempfile.TemporaryDirectory() as tmp:
        constraints = Path(tmp) / "constraints.txt"
        constraints.write_text("".join(f"{n}=={v}\n" for n, v in sorted(installed.items())))
        for arch in ARCHES:
            dest = Path(tmp) / arch
            pip_download(dest, [*_wheel_args(arch), "-c", str(constraints), *pins])
            for wheel in dest.glob("*.whl"):
                dist, ver = wheel.name.split("-")[:2]
                wheels.setdefault((dist.lower().replace("_", "-"), ver), set()).add(sha256(wheel))
            rootfs = Path(tmp) / f"rootfs-{arch}"
            _mmdebstrap(rootfs, arch, list(DEBIAN_ROOTS), keep_debs=True)
            deb_lines += ["", f"[{arch}]"]
            deb_lines += [f"{name} {ver}" for name, ver in _unpacked(rootfs)]
    py_lines = [
        "# The agent image's Python packages, every wheel pinned by sha256 (all architectures).",
        "# Written by `python3 scripts/build_image.py --lock`; do not edit by hand.",
        "# Install with: pip install --no-deps --require-hashes -r agent/image-requirements.lock",
    ]
    for (dist, ver), digests in sorted(wheels.items()):
        hashes = " ".join(f"--hash=sha256:{d}" for d in sorted(digests))
        py_lines.append(f"{dist}=={ver} {hashes}")
    PY_LOCK.write_text("\n".join(py_lines) + "\n")
    DEB_LOCK.write_text("\n".join(deb_lines) + "\n")
    print(f"{PY_LOCK.relative_to(ROOT)} and {DEB_LOCK.relative_to(ROOT)} written")


# ----- the root filesystem -----


def _mmdebstrap(rootfs: Path, arch: str, packages: list[str], keep_debs: bool = False) -> None:
    if shutil.which("mmdebstrap") is None:
        raise SystemExit("mmdebstrap not found: apt-get install -y mmdebstrap")
    env = {**os.environ, "SOURCE_DATE_EPOCH": str(FIXED_TIME)}
    sources = [
        f"deb {MIRROR} {SUITE} main",
        f"deb {MIRROR} {SUITE}-updates main",
        f"deb {SECURITY_MIRROR} {SUITE}-security main",
    ]
    cmd = ["mmdebstrap", "--variant=extract", "--mode=auto", f"--architectures={arch}"]
    cmd += ["--include=" + ",".join(packages), "-q", SUITE, str(rootfs), *sources]
    if keep_debs:
        cmd.insert(1, "--skip=cleanup/apt/cache")
    run(cmd, env=env)


def _prune(rootfs: Path) -> None:
    for rel in PRUNED:
        path = rootfs / rel
        if path.is_dir() and not path.is_symlink():
            shutil.rmtree(path)
        elif path.exists() or path.is_symlink():
            path.unlink()
    for pattern in PRUNED_GLOBS:
        for path in sorted(rootfs.glob(pattern), reverse=True):
            if path.is_dir() and not path.is_symlink():
                shutil.rmtree(path)
            else:
                path.unlink()
    dev = rootfs / "dev"
    if dev.exists():  # the container runtime provides /dev
        shutil.rmtree(dev)
    dev.mkdir()


def _add_python(rootfs: Path, arch: str) -> None:
    """The pinned wheels unpacked into LIB, then the product's packages."""
    lib = rootfs / LIB
    lib.mkdir(parents=True)
    with tempfile.TemporaryDirectory() as tmp:
        args = [*_wheel_args(arch), "--no-deps", "--require-hashes", "-r", str(PY_LOCK)]
        pip_download(Path(tmp), args)
        for wheel in sorted(Path(tmp).glob("*.whl")):
            with zipfile.ZipFile(wheel) as z:
                z.extractall(lib)
    for rel in tracked("agent", "kubectl_canary"):
        target = lib / rel
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(ROOT / rel, target)


def _compile(rootfs: Path) -> None:
    """Bytecode for the standard library and LIB with this (3.11) interpreter: the format is
    the same for every 3.11 and every CPU; unchecked-hash pycs carry no source times."""
    if sys.version_info[:2] != (3, 11):
        raise SystemExit("build the image with Python 3.11 (its bytecode goes into the image)")
    for rel in ("usr/lib/python3.11", LIB):
        run(
            [sys.executable, "-m", "compileall", "-q", "-j", "0"]
            + ["--invalidation-mode", "unchecked-hash", "-s", str(rootfs), "-p", "/"]
            + ["-x", r"(/test/|/tests/|lib2to3|idlelib|tkinter|turtledemo)", str(rootfs / rel)]
        )


def build_rootfs(rootfs: Path, arch: str) -> None:
    _mmdebstrap(rootfs, arch, read_debian_lock(arch))
    _prune(rootfs)
    _write_status(rootfs, arch)
    _add_python(rootfs, arch)
    launcher = rootfs / "usr/local/bin/canary-agent"
    launcher.parent.mkdir(parents=True, exist_ok=True)
    launcher.write_text(LAUNCHER)
    launcher.chmod(0o755)
    (rootfs / "etc/passwd").write_text(PASSWD)
    (rootfs / "etc/group").write_text(GROUP)
    tmp = rootfs / "tmp"
    tmp.mkdir(exist_ok=True)
    tmp.chmod(0o1777)
    _compile(rootfs)


# ----- the image -----


def layer(rootfs: Path) -> bytes:
    """The root filesystem as one tar: sorted, owned by root, fixed times (reproducible)."""
    raw = io.BytesIO()
    with tarfile.open(fileobj=raw, mode="w", format=tarfile.PAX_FORMAT) as tar:
        paths = sorted(p.relative_to(rootfs).as_posix() for p in rootfs.rglob("*"))
        for rel in paths:
            info = tar.gettarinfo(str(rootfs / rel), arcname=rel)
            if not (info.isfile() or info.isdir() or info.issym()):
                continue  # no device nodes or sockets: the runtime makes /dev
            info.uid = info.gid = 0
            info.uname = info.gname = ""
            info.mtime = FIXED_TIME
            info.pax_headers = {}
            if info.isfile():
                with (rootfs / rel).open("rb") as f:
                    tar.addfile(info, f)
            else:
                tar.addfile(info)
    return raw.getvalue()


def _blob(blobs: dict[str, bytes], data: bytes, media_type: str) -> dict[str, object]:
    digest = "sha256:" + hashlib.sha256(data).hexdigest()
    blobs[digest] = data
    return {"mediaType": media_type, "digest": digest, "size": len(data)}


def oci_archive(layer_tar: bytes, arch: str, out: Path) -> Path:
    """An OCI image layout (oci-layout, index.json, blobs/) holding one image, as a tar."""
    ver = version()
    compressed = io.BytesIO()
    with gzip.GzipFile(filename="", fileobj=compressed, mode="wb", mtime=0) as gz:
        gz.write(layer_tar)
    created = "2023-11-14T22:13:20Z"  # FIXED_TIME
    config = {
        "architecture": arch,
        "os": "linux",
        "created": created,
        "config": {
            "User": f"{UID}:{UID}",
            "Entrypoint": ["/usr/local/bin/canary-agent"],
            "Env": [
                "PATH=/usr/local/bin:/usr/bin:/bin",
                "HOME=/tmp",
                "PYTHONDONTWRITEBYTECODE=1",
                "PYTHONUNBUFFERED=1",
            ],
            "WorkingDir": "/",
            "ExposedPorts": {"8080/tcp": {}},
            "Labels": {
                "org.opencontainers.image.title": "canary-agent",
                "org.opencontainers.image.version": ver,
                "org.opencontainers.image.source": "https://github.com/kubectl-canary/kubectl-canary",
                "org.opencontainers.image.licenses": "Apache-2.0",
            },
        },
        "rootfs": {
            "type": "layers",
            "diff_ids": ["sha256:" + hashlib.sha256(layer_tar).hexdigest()],
        },
        "history": [{"created": created, "created_by": "scripts/build_image.py"}],
    }
    blobs: dict[str, bytes] = {}
    layer_desc = _blob(blobs, compressed.getvalue(), "application/vnd.oci.image.layer.v1.tar+gzip")
    config_desc = _blob(blobs, _json(config), "application/vnd.oci.image.config.v1+json")
    image_manifest = {
        "schemaVersion": 2,
        "mediaType": "application/vnd.oci.image.manifest.v1+json",
        "config": config_desc,
        "layers": [layer_desc],
    }
    manifest_desc = _blob(
        blobs, _json(image_manifest), "application/vnd.oci.image.manifest.v1+json"
    )
    manifest_desc["platform"] = {"architecture": arch, "os": "linux"}
    manifest_desc["annotations"] = {"org.opencontainers.image.ref.name": ver}
    index = {
        "schemaVersion": 2,
        "mediaType": "application/vnd.oci.image.index.v1+json",
        "manifests": [manifest_desc],
    }
    files = {
        "oci-layout": _json({"imageLayoutVersion": "1.0.0"}),
        "index.json": _json(index),
        **{f"blobs/sha256/{d.removeprefix('sha256:')}": data for d, data in blobs.items()},
    }
    archive = out / f"canary-agent-{ver}-linux-{arch}.oci.tar"
    with tarfile.open(archive, "w", format=tarfile.PAX_FORMAT) as tar:
        for name in ("blobs", "blobs/sha256"):
            info = tarfile.TarInfo(name)
            info.type, info.mode, info.mtime = tarfile.DIRTYPE, 0o755, FIXED_TIME
            tar.addfile(info)
        for name in sorted(files):
            data = files[name]
            info = tarfile.TarInfo(name)
            info.size, info.mode, info.mtime = len(data), 0o644, FIXED_TIME
            tar.addfile(info, io.BytesIO(data))
    return archive


def _json(value: object) -> bytes:
    return json.dumps(value, sort_keys=True, separators=(",", ":")).encode()


def build(arch: str, out: Path) -> Path:
    with tempfile.TemporaryDirectory(prefix="canary-image-") as tmp:
        rootfs = Path(tmp) / "rootfs"
        build_rootfs(rootfs, arch)
        return oci_archive(layer(rootfs), arch, out)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--out", type=Path, default=ROOT / "dist", help="output directory")
    parser.add_argument("--arch", action="append", choices=sorted(ARCHES), help="repeatable")
    parser.add_argument("--rootfs", type=Path, help="only write the root filesystem here")
    parser.add_argument("--lock", action="store_true", help="re-pin wheels and Debian packages")
    args = parser.parse_args()
    if args.lock:
        write_locks()
        return 0
    arches = args.arch or sorted(ARCHES)
    if args.rootfs:
        if len(arches) != 1:
            raise SystemExit("--rootfs builds one architecture: pass one --arch")
        build_rootfs(args.rootfs, arches[0])
        return 0
    args.out.mkdir(parents=True, exist_ok=True)
    for arch in arches:
        archive = build(arch, args.out)
        print(f"{sha256(archive)}  {archive.name}  ({archive.stat().st_size / 2**20:.1f} MiB)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
