"""Run Debian's `prometheus` binary against the sandbox, for tests and `kubectl canary demo`.

Prometheus scrapes the simulation's Istio-standard metrics from the sandbox, so the agent's real
PromQL is evaluated by a real Prometheus. The server binds 127.0.0.1 on a free port and keeps
its TSDB in `workdir`.
"""

from __future__ import annotations

import json
import shutil
import socket
import subprocess
import tempfile
import time
import urllib.error
import urllib.parse
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

DEFAULT_BINARY = "prometheus"


class PrometheusError(RuntimeError):
    """Prometheus is missing, did not start, or did not answer in time."""


@dataclass
class PrometheusHandle:
    url: str  # e.g. http://127.0.0.1:41234
    process: subprocess.Popen[bytes]
    log_path: Path
    owned_dir: Path | None = None  # a temporary workdir to delete on stop
    _stopped: bool = field(default=False, repr=False)

    def query(self, promql: str, timeout: float = 5.0) -> dict[str, Any]:
        """The JSON body of GET /api/v1/query for `promql` (raises PrometheusError on errors)."""
        address = f"{self.url}/api/v1/query?" + urllib.parse.urlencode({"query": promql})
        try:
            with urllib.request.urlopen(address, timeout=timeout) as response:
                body: dict[str, Any] = json.load(response)
        except urllib.error.HTTPError as error:
            raise PrometheusError(f"query failed ({error.code}): {error.read()!r}") from None
        except (urllib.error.URLError, OSError) as error:
            raise PrometheusError(f"query failed: {error}") from None
        return body

    def stop(self, timeout: float = 10.0) -> None:
        if self._stopped:
            return
        self._stopped = True
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=timeout)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(timeout=timeout)
        if self.owned_dir is not None:
            shutil.rmtree(self.owned_dir, ignore_errors=True)

    def __enter__(self) -> PrometheusHandle:
        return self

    def __exit__(self, *_: object) -> None:
        self.stop()


def find_binary(binary: str = DEFAULT_BINARY) -> str:
    path = shutil.which(binary) or (binary if Path(binary).is_file() else None)
    if path is None:
        raise PrometheusError(
            f"the Prometheus binary {binary!r} is not on PATH; install Debian's `prometheus` "
            "package (apt-get install prometheus) or pass its path"
        )
    return path


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def write_config(path: Path, target: str, metrics_path: str, scrape_interval: str) -> None:
    config = {
        "global": {"scrape_interval": scrape_interval, "evaluation_interval": scrape_interval},
        "scrape_configs": [
            {
                "job_name": "sandbox",
                "metrics_path": metrics_path,
                # The timeout may not exceed the interval, and its default (10s) would.
                "scrape_timeout": scrape_interval,
                "static_configs": [{"targets": [target]}],
            }
        ],
    }
    path.write_text(yaml.safe_dump(config, sort_keys=False))


def start_prometheus(
    target: str,
    metrics_path: str = "/sandbox/metrics",
    workdir: Path | None = None,
    scrape_interval: str = "1s",
    binary: str = DEFAULT_BINARY,
    ready_timeout: float = 30.0,
) -> PrometheusHandle:
    """Start Prometheus scraping http://`target``metrics_path`; returns once it is ready.

    Without `workdir`, config and TSDB go to a temporary directory removed by `stop()`.
    """
    executable = find_binary(binary)
    owned_dir = None
    if workdir is None:
        workdir = owned_dir = Path(tempfile.mkdtemp(prefix="sandbox-prometheus-"))
    workdir.mkdir(parents=True, exist_ok=True)
    config_path = workdir / "prometheus.yml"
    write_config(config_path, target, metrics_path, scrape_interval)
    last_error = ""
    # The free port can be taken between probing and binding; try a few times.
    for attempt in range(3):
        port = _free_port()
        log_path = workdir / f"prometheus-{attempt}.log"
        with log_path.open("wb") as log:
            process = subprocess.Popen(
                [
                    executable,
                    f"--config.file={config_path}",
                    f"--storage.tsdb.path={workdir / 'data'}",
                    f"--web.listen-address=127.0.0.1:{port}",
                    "--storage.tsdb.retention.time=1d",
                    "--log.level=warn",
                ],
                stdout=log,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
            )
        handle = PrometheusHandle(
            url=f"http://127.0.0.1:{port}", process=process, log_path=log_path
        )
        try:
            _wait_ready(handle, ready_timeout)
        except PrometheusError as error:
            handle.stop()
            last_error = f"{error}; log: {log_path.read_text(errors='replace')[-2000:]}"
            continue
        handle.owned_dir = owned_dir
        return handle
    if owned_dir is not None:
        shutil.rmtree(owned_dir, ignore_errors=True)
    raise PrometheusError(f"Prometheus did not start: {last_error}")


def _wait_ready(handle: PrometheusHandle, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if handle.process.poll() is not None:
            raise PrometheusError(f"prometheus exited with code {handle.process.returncode}")
        try:
            with urllib.request.urlopen(f"{handle.url}/-/ready", timeout=2) as response:
                if response.status == 200:
                    return
        except (urllib.error.URLError, OSError):
            pass
        time.sleep(0.2)
    raise PrometheusError(f"prometheus not ready after {timeout}s")


def wait_for_scrape(
    handle: PrometheusHandle, promql: str, timeout: float = 60.0, interval: float = 0.5
) -> dict[str, Any]:
    """Poll until `promql` returns a non-empty result; returns that response body."""
    deadline = time.monotonic() + timeout
    last: dict[str, Any] = {}
    while time.monotonic() < deadline:
        last = handle.query(promql)
        if last.get("status") == "success" and last.get("data", {}).get("result"):
            return last
        time.sleep(interval)
    raise PrometheusError(f"no data for {promql!r} after {timeout}s; last answer: {last}")
