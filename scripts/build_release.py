#!/usr/bin/env python3
"""Build the krew release archives of the plugin.

    python3 scripts/build_release.py [--out dist] [--update-manifest]

1. A self-contained zipapp `kubectl-canary` that needs only python3 (3.11+): the
   `kubectl_canary` package (with its manifests) plus the pure-Python parts of its runtime
   dependencies (click, PyYAML; PyYAML's optional C loader is left out, so one archive serves
   every OS and CPU), with bytecode for the building Python's version. The agent is not in
   it: `init` installs the agent's image, and the sandbox-only `--agent-process` / `demo`
   need a pip/pipx install (docs/plugin.md).
2. `kubectl-canary-<version>-<os>.tar.gz` for linux and darwin, each holding the zipapp, the
   `kubectl_complete-canary` helper and LICENSE. The archives are reproducible (sorted entries,
   fixed times and owners), so their sha256 only changes when their content does.
3. Prints each archive's sha256; with --update-manifest, writes them into krew-manifest.yaml.
"""

from __future__ import annotations

import argparse
import gzip
import hashlib
import importlib.util
import io
import os
import py_compile
import re
import shutil
import sys
import tarfile
import tempfile
import zipapp
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
PLATFORMS = ("linux", "darwin")
# Runtime dependencies of the plugin vendored into the zipapp: import name -> license file glob.
VENDORED = ("click", "yaml")
FIXED_TIME = 1_700_000_000  # archive entry times: content alone decides the hash
MAIN = '''"""Entry point of the kubectl-canary zipapp."""
import sys

if sys.version_info < (3, 11):
    sys.stderr.write(
        "error: kubectl-canary needs Python 3.11 or newer, found %d.%d\\n" % sys.version_info[:2]
    )
    sys.exit(1)

from kubectl_canary.cli.main import main

main()
'''


def version() -> str:
    text = (ROOT / "kubectl_canary" / "__init__.py").read_text()
    found = re.search(r'__version__ = "([^"]+)"', text)
    if not found:
        raise SystemExit("cannot find __version__ in kubectl_canary/__init__.py")
    return found.group(1)


def _copy_package(source: Path, dest: Path) -> None:
    """Copy a package's pure-Python files (no bytecode, no compiled extensions)."""
    shutil.copytree(
        source,
        dest,
        ignore=shutil.ignore_patterns("__pycache__", "*.pyc", "*.so", "*.pyd", "*.dylib"),
    )


def _license_of(module: str) -> Path | None:
    """The license file shipped in the installed distribution of `module`."""
    from importlib import metadata

    dist_name = {"yaml": "PyYAML"}.get(module, module)
    try:
        dist = metadata.distribution(dist_name)
    except metadata.PackageNotFoundError:
        return None
    for file in dist.files or []:
        if re.search(r"(LICENSE|LICENCE|COPYING)[^/]*$", str(file), re.IGNORECASE):
            return Path(str(dist.locate_file(file)))
    return None


def precompile(staging: Path) -> None:
    """Bytecode next to each module, where zipimport looks for it.

    zipimport cannot cache bytecode, so without this every run compiles every module from
    source (measured: ~100 ms per command). Hash-based, unchecked .pyc files keep the archive
    reproducible; a Python other than the builder's ignores them and compiles as before.
    """
    for source in sorted(staging.rglob("*.py")):
        if source.name == "__main__.py":
            continue  # the entry script always runs from source
        py_compile.compile(
            str(source),
            cfile=str(source) + "c",
            dfile=str(source.relative_to(staging)),
            doraise=True,
            invalidation_mode=py_compile.PycInvalidationMode.UNCHECKED_HASH,
        )


def build_zipapp(staging: Path, target: Path) -> None:
    _copy_package(ROOT / "kubectl_canary", staging / "kubectl_canary")
    licenses = staging / "vendored-licenses"
    licenses.mkdir()
    for module in VENDORED:
        spec = importlib.util.find_spec(module)
        if spec is None or spec.origin is None:
            raise SystemExit(f"{module} is not installed; pip install it to build")
        _copy_package(Path(spec.origin).parent, staging / module)
        license_file = _license_of(module)
        if license_file is None:
            raise SystemExit(f"no license file found for vendored {module}")
        shutil.copy(license_file, licenses / f"{module}-{license_file.name}")
    (staging / "__main__.py").write_text(MAIN)
    precompile(staging)
    for path in staging.rglob("*"):  # zip entries carry times: fix them for reproducibility
        os.utime(path, (FIXED_TIME, FIXED_TIME))
    zipapp.create_archive(staging, target, interpreter="/usr/bin/env python3", compressed=True)
    target.chmod(0o755)


def completion_script() -> bytes:
    sys.path.insert(0, str(ROOT))
    try:
        from kubectl_canary.cli.completion import KUBECTL_SCRIPT
    finally:
        sys.path.pop(0)
    return KUBECTL_SCRIPT.encode()


def _add(tar: tarfile.TarFile, name: str, data: bytes, mode: int) -> None:
    info = tarfile.TarInfo(name)
    info.size = len(data)
    info.mode = mode
    info.mtime = FIXED_TIME
    info.uid = info.gid = 0
    info.uname = info.gname = ""
    tar.addfile(info, io.BytesIO(data))


def build_archive(zipapp_path: Path, out: Path, platform: str, ver: str) -> Path:
    archive = out / f"kubectl-canary-v{ver}-{platform}.tar.gz"
    raw = io.BytesIO()
    with tarfile.open(fileobj=raw, mode="w", format=tarfile.PAX_FORMAT) as tar:
        _add(tar, "LICENSE", (ROOT / "LICENSE").read_bytes(), 0o644)
        _add(tar, "kubectl-canary", zipapp_path.read_bytes(), 0o755)
        _add(tar, "kubectl_complete-canary", completion_script(), 0o755)
    with archive.open("wb") as f, gzip.GzipFile(fileobj=f, mode="wb", mtime=FIXED_TIME) as gz:
        gz.write(raw.getvalue())
    return archive


def sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def update_manifest(hashes: dict[str, str], ver: str) -> None:
    """Rewrite the sha256 and version lines of krew-manifest.yaml, keeping everything else."""
    path = ROOT / "krew-manifest.yaml"
    lines = path.read_text().splitlines(keepends=True)
    platform = None
    for i, line in enumerate(lines):
        os_match = re.match(r"\s+os: (\w+)", line)
        if os_match:
            platform = os_match.group(1)
        if re.match(r"\s+sha256: ", line) and platform in hashes:
            lines[i] = re.sub(r"sha256: .*", f"sha256: {hashes[platform]}", line)
        if re.match(r"\s+uri: ", line) and platform:
            lines[i] = re.sub(
                r"/v[^/]+/kubectl-canary-v[^/]+-", f"/v{ver}/kubectl-canary-v{ver}-", line
            )
        if re.match(r"  version: ", line):
            lines[i] = f"  version: v{ver}\n"
    path.write_text("".join(lines))


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--out", type=Path, default=ROOT / "dist", help="output directory")
    parser.add_argument(
        "--update-manifest", action="store_true", help="write the sha256s into krew-manifest.yaml"
    )
    args = parser.parse_args()
    ver = version()
    args.out.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix="kubectl-canary-build-") as tmp:
        zip_path = Path(tmp) / "kubectl-canary"
        build_zipapp(Path(tmp) / "staging", zip_path)
        shutil.copy(zip_path, args.out / "kubectl-canary.pyz")
        hashes = {}
        for platform in PLATFORMS:
            archive = build_archive(zip_path, args.out, platform, ver)
            hashes[platform] = sha256(archive)
            print(f"{hashes[platform]}  {archive.relative_to(args.out.parent)}")
    if args.update_manifest:
        update_manifest(hashes, ver)
        print("krew-manifest.yaml updated")
    return 0


if __name__ == "__main__":
    sys.exit(main())
