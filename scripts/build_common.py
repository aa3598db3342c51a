"""What the release builds share: the version, the files git tracks, checked subprocesses and
pip downloads, sha256. Imported by build_release.py (plugin archives, wheel) and
build_image.py (agent image); both are run as scripts, so this sits beside them."""

from __future__ import annotations

import hashlib
import re
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def version() -> str:
    text = (ROOT / "kubectl_canary" / "__init__.py").read_text()
    found = re.search(r'__version__ = "([^"]+)"', text)
    if not found:
        raise SystemExit("cannot find __version__ in kubectl_canary/__init__.py")
    return found.group(1)


def run(cmd: list[str], what: str | None = None, **kw: object) -> None:
    """Run a build step; a failure ends the build with the step's last output."""
    done = subprocess.run(cmd, capture_output=True, text=True, **kw)  # type: ignore[call-overload]
    if done.returncode != 0:
        tail = (done.stderr or done.stdout).strip()[-1500:]
        raise SystemExit(f"{what or cmd[0]} failed ({done.returncode}): {tail}")


def pip_download(dest: Path, args: list[str]) -> None:
    pip = [sys.executable, "-m", "pip", "download", "-q", "--disable-pip-version-check"]
    run([*pip, "-d", str(dest), *args], what="pip download")


def sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def tracked(*paths: str) -> list[str]:
    """Files under `paths` as git tracks them: never what a checkout happens to hold."""
    listed = subprocess.run(
        ["git", "-C", str(ROOT), "ls-files", "-z", *paths], capture_output=True, check=True
    ).stdout.decode()
    return sorted(filter(None, listed.split("\0")))
