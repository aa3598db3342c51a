"""--request-timeout: the real client against a server that accepts and never answers."""

from __future__ import annotations

import socket
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from click.testing import CliRunner

from kubectl_canary import kube
from kubectl_canary.cli.main import cli
from kubectl_canary.cli.options import KubeFlags, Runtime
from kubectl_canary.resources import UnreachableError


@pytest.fixture
def stuck_server() -> Iterator[str]:
    """A TCP port that accepts connections and then says nothing, like a wedged API server."""
    listener = socket.create_server(("127.0.0.1", 0))
    held: list[socket.socket] = []
    stop = threading.Event()

    def accept() -> None:
        listener.settimeout(0.1)
        while not stop.is_set():
            try:
                conn, _ = listener.accept()
            except TimeoutError:
                continue
            held.append(conn)  # kept open and silent until the test ends

    thread = threading.Thread(target=accept, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{listener.getsockname()[1]}"
    finally:
        stop.set()
        thread.join(timeout=5)
        for conn in held:
            conn.close()
        listener.close()


def kubeconfig(tmp_path: Path, server: str) -> str:
    path = tmp_path / "config"
    path.write_text(
        f"clusters: [{{name: c, cluster: {{server: '{server}'}}}}]\n"
        "users: [{name: u, user: {token: t}}]\n"
        "contexts: [{name: ctx, context: {cluster: c, user: u, namespace: shop}}]\n"
        "current-context: ctx\n"
    )
    return str(path)


def test_status_gives_up_on_a_silent_server_after_the_request_timeout(stuck_server, tmp_path):
    config = kubeconfig(tmp_path, stuck_server)
    start = time.monotonic()
    result = CliRunner().invoke(
        cli, ["status", "--kubeconfig", config, "--request-timeout", "1s"], obj=Runtime()
    )
    elapsed = time.monotonic() - start
    assert result.exit_code == 1, result.output
    assert result.stderr == f"error: the cluster at {stuck_server} did not answer within 1s\n"
    assert elapsed < 5, f"took {elapsed:.1f}s"


def test_the_flag_reaches_the_client_as_seconds(tmp_path):
    seen: list[KubeFlags] = []

    def connect(flags: KubeFlags) -> kube.Kube:
        seen.append(flags)
        raise UnreachableError("stop here")

    for value, seconds in (("0", 0.0), ("2m", 120.0), ("1.5", 1.5)):
        result = CliRunner().invoke(
            cli, ["status", "--request-timeout", value], obj=Runtime(connect=connect)
        )
        assert result.exit_code == 1 and seen[-1].request_timeout == seconds
    bad = CliRunner().invoke(cli, ["status", "--request-timeout", "soon"], obj=Runtime())
    assert bad.exit_code == 2 and "'--request-timeout'" in bad.stderr


def test_timeouts_the_client_sets(tmp_path):
    config = kubeconfig(tmp_path, "http://127.0.0.1:9")
    default = kube.connect(config)._timeout(kube.REQUEST_TIMEOUT)
    assert (default.connect, default.read) == (kube.CONNECT_TIMEOUT, kube.REQUEST_TIMEOUT)
    unlimited = kube.connect(config, request_timeout=0)._timeout(kube.REQUEST_TIMEOUT)
    assert (unlimited.connect, unlimited.read) == (None, None)
    bounded = kube.connect(config, request_timeout=2)
    assert bounded._timeout(kube.REQUEST_TIMEOUT).read == 2
    watch = bounded._timeout(330.0, stream=True)  # waiting for the next event is not a hang
    assert (watch.connect, watch.read) == (2, 330.0)
