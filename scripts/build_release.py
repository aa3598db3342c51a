#!/usr/bin/env python3
"""Build the plugin's krew archives, its krew manifest and the Python wheel, reproducibly.

    python3 scripts/build_release.py [--out dist] [--write-manifest] [--wheel]
    python3 scripts/build_release.py --lock        # re-pin the bundled wheels (maintainers)

1. One archive per krew platform (linux/darwin x amd64/arm64):
   `kubectl-canary-v<version>-<os>-<arch>.tar.gz` holding a launcher `kubectl-canary` (runs with
   the user's python3 >= 3.11), `lib/` with the `kubectl_canary` package and its runtime
   dependencies unpacked from pinned wheels, `kubectl_complete-canary` and LICENSE.
   Why not one zipapp: the plugin's client (kr8s) needs `cryptography` and `cffi`, compiled
   extensions that no zip can import and that differ by OS and CPU. The archive carries them
   for every supported CPython (their file names carry the ABI, so they sit side by side).
2. The wheels are pinned by file name and sha256 in scripts/plugin-bundle.lock; a download that
   does not match is refused. Entries are sorted, times fixed, owners and modes normalised, so
   two builds of one commit are byte-identical on any machine.
3. `plugins/canary.yaml`, the krew manifest, is generated from the archives' sha256s: the
   repository is a custom krew index (`kubectl krew index add kubectl-canary <repo>`). It
   names the release's archives, so the release workflow writes it; it records a digest of its
   inputs, and tests/cli/test_build_release.py fails when a manifest of the current inputs
   does not match their build (or when it is not what the generator makes of its values).
4. `--wheel`: the kubectl-canary wheel, built with SOURCE_DATE_EPOCH so it is reproducible too.
"""

from __future__ import annotations

import argparse
import gzip
import hashlib
import io
import os
import subprocess
import sys
import tarfile
import tempfile
import zipfile
from dataclasses import dataclass
from importlib import metadata
from pathlib import Path

# build_common sits beside this script; tests load the script from its path.
sys.path.insert(0, str(Path(__file__).resolve().parent))
from build_common import ROOT, pip_download, sha256, tracked, version  # noqa: E402

LOCK = ROOT / "scripts" / "plugin-bundle.lock"
MANIFEST = ROOT / "plugins" / "canary.yaml"
HOMEPAGE = "https://github.com/kubectl-canary/kubectl-canary"
FIXED_TIME = 1_700_000_000  # entry times: content alone decides the hash
PYTHONS = ("3.11", "3.12", "3.13", "3.14")  # CPython versions the archives carry extensions for
# The plugin's own runtime dependencies (the agent's, `kubernetes` and `prometheus_client`,
# stay out): their closure is what the lock pins.
PLUGIN_REQUIREMENTS = ("click", "PyYAML", "kr8s", "tabulate")
# Used through their pure-Python code only: one wheel serves every platform, compiled parts left
# out (PyYAML falls back to its Python loader, python-box to its Python classes). Their
# extensions would be four copies per archive, two thirds of its size.
PURE_ONLY = ("pyyaml", "python_box")
COMPILED = (".so", ".pyd", ".c")
WHEEL_CACHE = Path(os.environ.get("XDG_CACHE_HOME", Path.home() / ".cache")) / "kubectl-canary"


@dataclass(frozen=True)
class Platform:
    os: str
    arch: str
    wheel_tags: tuple[str, ...]  # pip --platform values, most specific first

    @property
    def name(self) -> str:
        return f"{self.os}-{self.arch}"


PLATFORMS = (
    Platform(
        "linux", "amd64", ("manylinux_2_28_x86_64", "manylinux_2_17_x86_64", "manylinux2014_x86_64")
    ),
    Platform(
        "linux",
        "arm64",
        ("manylinux_2_28_aarch64", "manylinux_2_17_aarch64", "manylinux2014_aarch64"),
    ),
    Platform(
        "darwin", "amd64", ("macosx_10_13_x86_64", "macosx_10_9_universal2", "macosx_10_9_x86_64")
    ),
    Platform("darwin", "arm64", ("macosx_11_0_arm64", "macosx_10_9_universal2")),
)

LAUNCHER = '''#!/usr/bin/env python3
"""kubectl-canary, as krew installs it: the plugin runs from the lib/ directory beside this file."""
import os
import sys

SUPPORTED = {supported}
if sys.version_info[:2] not in SUPPORTED:
    sys.stderr.write(
        "error: this kubectl-canary archive runs on Python %s, found %d.%d; "
        "or install it with: pipx install kubectl-canary\\n"
        % (", ".join("%d.%d" % v for v in sorted(SUPPORTED)), *sys.version_info[:2])
    )
    sys.exit(1)
sys.path.insert(0, os.path.join(os.path.dirname(os.path.realpath(__file__)), "lib"))

from kubectl_canary.cli.main import main

main()
'''


# ----- the lock: which wheel files, with which sha256, for which platform and Python -----


def read_lock() -> dict[str, list[tuple[str, str]]]:
    """platform name -> [(wheel file name, sha256)]; "any" holds the pure-Python wheels."""
    lock: dict[str, list[tuple[str, str]]] = {}
    section = ""
    for raw in LOCK.read_text().splitlines():
        line = raw.split("#", 1)[0].strip()
        if not line:
            continue
        if line.startswith("[") and line.endswith("]"):
            section = line[1:-1]
            lock[section] = []
            continue
        name, digest = line.split()
        lock[section].append((name, digest))
    return lock


def write_lock() -> None:
    """Resolve the plugin's dependency closure for every platform and Python, pinned to the
    versions installed here (the ones the tests ran with)."""
    installed = {}
    for dist in metadata.distributions():
        installed[dist.metadata["Name"].lower().replace("_", "-")] = dist.version
    pins = [f"{r}=={installed[r.lower()]}" for r in PLUGIN_REQUIREMENTS]
    constraints = [f"{n}=={v}" for n, v in sorted(installed.items())]
    sections: dict[str, set[str]] = {}
    with tempfile.TemporaryDirectory() as tmp:
        cfile = Path(tmp) / "constraints.txt"
        cfile.write_text("\n".join(constraints) + "\n")
        for platform in PLATFORMS:
            for python in PYTHONS:
                dest = Path(tmp) / platform.name / python
                tags = [a for tag in platform.wheel_tags for a in ("--platform", tag)]
                pip_download(
                    dest,
                    [*tags, "--python-version", python, "--implementation", "cp"]
                    + ["--only-binary=:all:", "-c", str(cfile), *pins],
                )
                sections.setdefault(platform.name, set()).update(
                    f"{w.name} {sha256(w)}" for w in dest.glob("*.whl")
                )
        pure = set.intersection(*sections.values())
        for dist in PURE_ONLY:
            found = sorted(e for entries in sections.values() for e in entries if _dist(e) == dist)
            pure.add(found[0])
            for entries in sections.values():
                entries.difference_update(found)
        lines = [
            "# Wheels bundled into the krew archives: file name and sha256.",
            "# Written by `python3 scripts/build_release.py --lock`; do not edit by hand.",
            "[any]",
            *sorted(pure),
        ]
        for name, entries in sections.items():
            lines += ["", f"[{name}]", *sorted(entries - pure)]
        LOCK.write_text("\n".join(lines) + "\n")
    print(f"{LOCK.relative_to(ROOT)} written")


def _dist(wheel_name: str) -> str:
    return wheel_name.split("-", 1)[0].lower()


def _download_args(wheel_name: str) -> list[str]:
    """pip download arguments that fetch exactly this wheel file, from any machine."""
    dist, ver, python, _abi, platform = wheel_name[: -len(".whl")].split("-")
    args = ["--no-deps", "--only-binary=:all:", f"{dist}=={ver}"]
    if platform == "any":
        return args
    args += [a for tag in platform.split(".") for a in ("--platform", tag)]
    return [*args, "--python-version", python[2:], "--implementation", python[:2]]


def fetch(platform: Platform, lock: dict[str, list[tuple[str, str]]]) -> list[Path]:
    """The platform's wheels from the cache, downloaded when missing, checked by sha256."""
    wanted = lock["any"] + lock[platform.name]
    WHEEL_CACHE.mkdir(parents=True, exist_ok=True)
    for name, digest in wanted:
        path = WHEEL_CACHE / name
        if path.exists() and sha256(path) == digest:
            continue
        with tempfile.TemporaryDirectory() as tmp:
            pip_download(Path(tmp), _download_args(name))
            got = Path(tmp) / name
            if not got.exists():
                raise SystemExit(f"pip did not fetch {name} (found {os.listdir(tmp)})")
            if sha256(got) != digest:
                raise SystemExit(f"{name}: sha256 {sha256(got)} does not match the lock")
            got.replace(path)
    return [WHEEL_CACHE / name for name, _ in wanted]


# ----- the archive -----


class Tree:
    """The archive's files: path -> (bytes, mode), checked for clashes between wheels."""

    def __init__(self) -> None:
        self.files: dict[str, tuple[bytes, int]] = {}

    def add(self, path: str, data: bytes, mode: int = 0o644) -> None:
        known = self.files.get(path)
        if known is not None and known[0] != data:
            raise SystemExit(f"two sources disagree about {path}")
        self.files[path] = (data, mode)

    def add_wheel(self, wheel: Path) -> None:
        pure_only = _dist(wheel.name) in PURE_ONLY
        with zipfile.ZipFile(wheel) as z:
            for info in z.infolist():
                if info.is_dir() or (pure_only and info.filename.endswith(COMPILED)):
                    continue
                # RECORD lists the wheel's own files; two Pythons' wheels of one version differ
                # only there and in their compiled modules.
                if info.filename.endswith(".dist-info/RECORD"):
                    continue
                if info.filename.endswith(".dist-info/WHEEL"):
                    continue
                executable = (info.external_attr >> 16) & 0o111
                self.add(f"lib/{info.filename}", z.read(info), 0o755 if executable else 0o644)

    def add_package(self) -> None:
        """kubectl_canary's files as git tracks them: nothing a checkout happens to hold
        (bytecode, editor files, a local sandbox's state) reaches the archive."""
        for rel in tracked("kubectl_canary"):
            self.add(f"lib/{rel}", (ROOT / rel).read_bytes())

    def tar_gz(self, target: Path) -> None:
        raw = io.BytesIO()
        with tarfile.open(fileobj=raw, mode="w", format=tarfile.PAX_FORMAT) as tar:
            for path in sorted(self.files):
                data, mode = self.files[path]
                info = tarfile.TarInfo(path)
                info.size, info.mode, info.mtime = len(data), mode, FIXED_TIME
                info.uid = info.gid = 0
                info.uname = info.gname = ""
                tar.addfile(info, io.BytesIO(data))
        with (
            target.open("wb") as f,
            gzip.GzipFile(filename="", fileobj=f, mode="wb", mtime=FIXED_TIME) as gz,
        ):
            gz.write(raw.getvalue())


def completion_script() -> bytes:
    sys.path.insert(0, str(ROOT))
    try:
        from kubectl_canary.cli.completion import KUBECTL_SCRIPT
    finally:
        sys.path.pop(0)
    return KUBECTL_SCRIPT.encode()


def build_archive(platform: Platform, lock: dict[str, list[tuple[str, str]]], out: Path) -> Path:
    tree = Tree()
    supported = tuple(tuple(int(p) for p in v.split(".")) for v in PYTHONS)
    tree.add("kubectl-canary", LAUNCHER.format(supported=supported).encode(), 0o755)
    tree.add("kubectl_complete-canary", completion_script(), 0o755)
    tree.add("LICENSE", (ROOT / "LICENSE").read_bytes())
    tree.add_package()
    for wheel in fetch(platform, lock):
        tree.add_wheel(wheel)
    archive = out / f"kubectl-canary-v{version()}-{platform.name}.tar.gz"
    tree.tar_gz(archive)
    return archive


# ----- the krew manifest -----

DESCRIPTION = """\
kubectl canary installs a lightweight in-cluster agent that runs Flagger-style canary
releases (Istio, Gateway API or plain Services; Prometheus checks), and lets you watch and
steer them: status with the full release history, per-canary agent logs, abort, promote,
pause, resume, retry of a failed revision, and a zero-downtime offboard.
Run `kubectl canary init`, then `kubectl canary status -A`; `kubectl canary demo` shows the
whole story on a local sandbox.
"""


def inputs_digest() -> str:
    """sha256 over everything an archive is built from: the package as git tracks it, the
    lock, this script and LICENSE. The manifest records it, so a test can tell a manifest of
    this very code (its sha256s must match a build) from the last release's (main moved on)."""
    digest = hashlib.sha256()
    for rel in tracked(
        "kubectl_canary", "scripts/plugin-bundle.lock", "scripts/build_release.py", "LICENSE"
    ):
        digest.update(rel.encode() + b"\0" + (ROOT / rel).read_bytes() + b"\0")
    return digest.hexdigest()


def manifest(hashes: dict[str, str], inputs: str) -> str:
    ver = version()
    pythons = ", ".join(PYTHONS)
    lines = [
        "# Generated by `python3 scripts/build_release.py --write-manifest`; do not edit by hand.",
        f"# inputs: {inputs}",
        "apiVersion: krew.googlecontainertools.github.com/v1alpha2",
        "kind: Plugin",
        "metadata:",
        "  name: canary",
        "spec:",
        f"  version: v{ver}",
        f"  homepage: {HOMEPAGE}",
        "  shortDescription: Progressive canary releases driven by a lightweight agent",
        "  description: |",
        *[f"    {line}" for line in DESCRIPTION.splitlines()],
        "  caveats: |",
        f"    The plugin runs on python3 ({pythons}) from PATH.",
        "    For `kubectl canary <TAB>` completion (kubectl 1.26+), put kubectl_complete-canary",
        "    on PATH:",
        f'      ln -s "${{KREW_ROOT:-$HOME/.krew}}/store/canary/v{ver}/kubectl_complete-canary" \\',
        '        "${KREW_ROOT:-$HOME/.krew}/bin/"',
        "    `demo`, `sandbox` and `init --agent-process` run the agent locally and need the full",
        "    package: pipx install kubectl-canary",
        "  platforms:",
    ]
    for platform in PLATFORMS:
        archive = f"kubectl-canary-v{ver}-{platform.name}.tar.gz"
        lines += [
            "    - selector:",
            "        matchLabels:",
            f"          os: {platform.os}",
            f"          arch: {platform.arch}",
            f"      uri: {HOMEPAGE}/releases/download/v{ver}/{archive}",
            f"      sha256: {hashes[platform.name]}",
            "      bin: kubectl-canary",
            "      files:",
            '        - from: "*"',
            "          to: .",
        ]
    return "\n".join(lines) + "\n"


# ----- the wheel -----


def build_wheel(out: Path) -> Path:
    """`pip wheel` of this checkout with fixed file times (SOURCE_DATE_EPOCH)."""
    with tempfile.TemporaryDirectory() as tmp:
        env = {**os.environ, "SOURCE_DATE_EPOCH": str(FIXED_TIME)}
        # Build isolation installs the pinned setuptools of pyproject.toml's build-system.
        cmd = [sys.executable, "-m", "pip", "wheel", "-q", "--no-deps"]
        done = subprocess.run([*cmd, "-w", tmp, str(ROOT)], capture_output=True, text=True, env=env)
        if done.returncode != 0:
            raise SystemExit(f"pip wheel failed: {done.stderr.strip()[-800:]}")
        (wheel,) = Path(tmp).glob("*.whl")
        return Path(wheel.replace(out / wheel.name))


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--out", type=Path, default=ROOT / "dist", help="output directory")
    parser.add_argument(
        "--write-manifest", action="store_true", help=f"write {MANIFEST.relative_to(ROOT)}"
    )
    parser.add_argument("--wheel", action="store_true", help="also build the Python wheel")
    parser.add_argument("--lock", action="store_true", help="re-pin the bundled wheels")
    args = parser.parse_args()
    if args.lock:
        write_lock()
        return 0
    args.out.mkdir(parents=True, exist_ok=True)
    lock = read_lock()
    hashes = {}
    for platform in PLATFORMS:
        archive = build_archive(platform, lock, args.out)
        hashes[platform.name] = sha256(archive)
        print(f"{hashes[platform.name]}  {archive.name}")
    text = manifest(hashes, inputs_digest())
    (args.out / "canary.yaml").write_text(text)
    if args.write_manifest:
        MANIFEST.parent.mkdir(exist_ok=True)
        MANIFEST.write_text(text)
        print(f"{MANIFEST.relative_to(ROOT)} written")
    if args.wheel:
        wheel = build_wheel(args.out)
        print(f"{sha256(wheel)}  {wheel.name}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
