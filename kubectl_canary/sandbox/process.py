"""Starting and stopping the sandbox as a separate process.

`start_sandbox` is for tests and the demo (a child process tied to a `with` block);
`up`/`down`/`status` manage a background sandbox that outlives the command, tracked by a pid
file, for `kubectl canary sandbox up|down|status`.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
import urllib.error
import urllib.request
from dataclasses import dataclass
from pathlib import Path
from types import TracebackType

DEFAULT_STATE_DIR = Path.home() / ".kube-canary-sandbox"
START_TIMEOUT = 30.0
STOP_TIMEOUT = 10.0


class SandboxError(RuntimeError):
    """The sandbox process did not start or stop as expected."""


@dataclass
class SandboxHandle:
    process: subprocess.Popen[bytes] | None
    pid: int
    port: int
    state_dir: Path

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def kubeconfig(self) -> Path:
        return self.state_dir / "kubeconfig"

    @property
    def log_file(self) -> Path:
        return self.state_dir / "sandbox.log"

    def stop(self, timeout: float = STOP_TIMEOUT) -> None:
        """Terminate, wait, then kill if it does not exit in time."""
        if self.process is not None:
            if self.process.poll() is None:
                self.process.terminate()
                try:
                    self.process.wait(timeout)
                except subprocess.TimeoutExpired:
                    self.process.kill()
                    self.process.wait(timeout)
            return
        _terminate_pid(self.pid, timeout)

    def __enter__(self) -> SandboxHandle:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()


def _ready(port: int) -> bool:
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/readyz", timeout=1.0) as resp:
            return bool(resp.status == 200)
    except (urllib.error.URLError, OSError):
        return False


def _serve_command(
    state_dir: Path,
    *,
    speed: float,
    seed: int,
    watch_window: int,
    extra_crds: list[Path],
    crds_dir: Path | None,
    simulation: bool,
    bookmark_interval: float,
) -> list[str]:
    cmd = [sys.executable, "-m", "kubectl_canary.sandbox", "serve", "--port", "0"]
    cmd += ["--state-dir", str(state_dir), "--speed", str(speed), "--seed", str(seed)]
    cmd += ["--watch-window", str(watch_window), "--bookmark-interval", str(bookmark_interval)]
    if crds_dir is not None:
        cmd += ["--crds-dir", str(crds_dir)]
    for crd in extra_crds:
        cmd += ["--extra-crd", str(crd)]
    if not simulation:
        cmd.append("--no-simulation")
    return cmd


def start_sandbox(
    workdir: Path,
    *,
    speed: float = 1.0,
    seed: int = 0,
    watch_window: int = 100,
    extra_crds: list[Path] | None = None,
    crds_dir: Path | None = None,
    simulation: bool = True,
    bookmark_interval: float = 5.0,
    timeout: float = START_TIMEOUT,
    detach: bool = False,
) -> SandboxHandle:
    """Launch `python3 -m kubectl_canary.sandbox serve` with state in `workdir` and wait
    (at most `timeout` seconds) until it answers /readyz. Output goes to workdir/sandbox.log."""
    workdir.mkdir(parents=True, exist_ok=True)
    (workdir / "port").unlink(missing_ok=True)
    cmd = _serve_command(
        workdir,
        speed=speed,
        seed=seed,
        watch_window=watch_window,
        extra_crds=list(extra_crds or []),
        crds_dir=crds_dir,
        simulation=simulation,
        bookmark_interval=bookmark_interval,
    )
    with (workdir / "sandbox.log").open("ab") as logf:
        proc = subprocess.Popen(
            cmd,
            stdin=subprocess.DEVNULL,
            stdout=logf,
            stderr=subprocess.STDOUT,
            start_new_session=detach,  # a background sandbox must survive its parent's ^C
        )
    handle = SandboxHandle(proc, proc.pid, 0, workdir)
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise SandboxError(f"sandbox exited with code {proc.returncode}; see {handle.log_file}")
        port_file = workdir / "port"
        if port_file.exists():
            handle.port = int(port_file.read_text().strip())
            if _ready(handle.port):
                return handle
        time.sleep(0.05)
    handle.stop()
    raise SandboxError(f"sandbox not ready after {timeout:.0f}s; see {handle.log_file}")


# ---- background sandbox -------------------------------------------------------------------


def _pid_alive(pid: int) -> bool:
    try:
        # When this process started the sandbox, an exited one is a zombie until reaped.
        if os.waitpid(pid, os.WNOHANG)[0] == pid:
            return False
    except ChildProcessError:
        pass  # not our child: another command started it
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def _terminate_pid(pid: int, timeout: float) -> None:
    if not _pid_alive(pid):
        return
    os.kill(pid, signal.SIGTERM)
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if not _pid_alive(pid):
            return
        time.sleep(0.05)
    os.kill(pid, signal.SIGKILL)


@dataclass(frozen=True)
class SandboxStatus:
    running: bool
    pid: int | None
    url: str | None
    kubeconfig: Path | None
    state_dir: Path


def _read_pid_file(state_dir: Path) -> dict[str, object] | None:
    try:
        data = json.loads((state_dir / "sandbox.pid").read_text())
    except (OSError, ValueError):
        return None
    return data if isinstance(data, dict) else None


def status(state_dir: Path = DEFAULT_STATE_DIR) -> SandboxStatus:
    info = _read_pid_file(state_dir)
    if info is None:
        return SandboxStatus(False, None, None, None, state_dir)
    pid, port = int(info["pid"]), int(info["port"])  # type: ignore[call-overload]
    running = _pid_alive(pid) and _ready(port)
    return SandboxStatus(
        running,
        pid,
        f"http://127.0.0.1:{port}",
        state_dir / "kubeconfig",
        state_dir,
    )


def up(
    state_dir: Path = DEFAULT_STATE_DIR,
    *,
    speed: float = 1.0,
    seed: int = 0,
    watch_window: int = 100,
    extra_crds: list[Path] | None = None,
    crds_dir: Path | None = None,
) -> SandboxStatus:
    """Start a background sandbox unless one is already running there; returns its status."""
    current = status(state_dir)
    if current.running:
        return current
    handle = start_sandbox(
        state_dir,
        speed=speed,
        seed=seed,
        watch_window=watch_window,
        extra_crds=extra_crds,
        crds_dir=crds_dir,
        detach=True,
    )
    (state_dir / "sandbox.pid").write_text(json.dumps({"pid": handle.pid, "port": handle.port}))
    return status(state_dir)


def down(state_dir: Path = DEFAULT_STATE_DIR, timeout: float = STOP_TIMEOUT) -> bool:
    """Stop the background sandbox; returns False when none was running."""
    info = _read_pid_file(state_dir)
    if info is None:
        return False
    pid = int(info["pid"])  # type: ignore[call-overload]
    was_alive = _pid_alive(pid)
    _terminate_pid(pid, timeout)
    (state_dir / "sandbox.pid").unlink(missing_ok=True)
    return was_alive
