"""Fixtures for the sandbox API server tests: an in-process store, a served sandbox process,
and a kubectl runner that fails loudly when kubectl is missing."""

from __future__ import annotations

import json
import shutil
import subprocess
from collections.abc import Callable, Iterator
from functools import lru_cache
from pathlib import Path
from typing import Any

import pytest

from kubectl_canary.sandbox.__main__ import crd_paths, default_crds_dir
from kubectl_canary.sandbox.crd_files import load_crds
from kubectl_canary.sandbox.process import SandboxHandle, start_sandbox
from kubectl_canary.sandbox.store import Store

WATCH_WINDOW = 5  # small, so tests reach "410 Gone" with a handful of writes


@lru_cache(maxsize=1)
def _all_crds() -> tuple[str, ...]:
    # Parsed once per session (megabytes of YAML); each store gets fresh copies.
    return tuple(json.dumps(c) for c in load_crds(crd_paths(default_crds_dir(), [])))


@pytest.fixture
def store() -> Store:
    s = Store(watch_window=WATCH_WINDOW)
    for crd in _all_crds():
        s.create(json.loads(crd))
    return s


@pytest.fixture(scope="module")
def sandbox(tmp_path_factory: pytest.TempPathFactory) -> Iterator[SandboxHandle]:
    handle = start_sandbox(
        tmp_path_factory.mktemp("sandbox"),
        simulation=False,
        watch_window=WATCH_WINDOW,
        bookmark_interval=0.5,
    )
    try:
        yield handle
    finally:
        handle.stop()


KubectlRunner = Callable[..., subprocess.CompletedProcess[str]]


@pytest.fixture
def kubectl(sandbox: SandboxHandle) -> KubectlRunner:
    binary = shutil.which("kubectl")
    if binary is None:
        pytest.fail("kubectl is not on PATH: these tests need the real kubectl (v1.32) binary")

    def run(*args: str, input: str | None = None, check: bool = True) -> Any:
        proc = subprocess.run(
            [binary, "--kubeconfig", str(sandbox.kubeconfig), *args],
            input=input,
            capture_output=True,
            text=True,
            timeout=60,
        )
        if check and proc.returncode != 0:
            pytest.fail(f"kubectl {' '.join(args)} failed ({proc.returncode}): {proc.stderr}")
        return proc

    return run


def crd_file(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "crd.yaml"
    path.write_text(text)
    return path
