"""Import rules that keep the architecture honest (DESIGN §2, §7).

- `agent/core` decides and must stay pure: no client library, network, clock-reading process or
  file-system module, and nothing from the agent's I/O side.
- Client libraries (kubernetes, kr8s) are used behind one adapter module per side.
- The sandbox is the test bed: it must not share product logic, so it imports nothing from
  `agent/` or `kubectl_canary/api/` (a bug there would otherwise be mirrored by the sandbox).
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]

# Modules the pure core may import (besides itself and the plain-data model).
CORE_ALLOWED = {
    "__future__",
    "collections",
    "dataclasses",
    "datetime",
    "enum",
    "functools",
    "hashlib",
    "itertools",
    "json",
    "math",
    "re",
    "typing",
    "agent.core",
    "kubectl_canary.api.model",
    "kubectl_canary.api.durations",
}


def imported_modules(path: Path) -> set[str]:
    tree = ast.parse(path.read_text(), filename=str(path))
    found: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            found.add(node.module)
    return found


def allowed(module: str, rules: set[str]) -> bool:
    return any(module == rule or module.startswith(rule + ".") for rule in rules)


def python_files(folder: str) -> list[Path]:
    files = sorted((ROOT / folder).rglob("*.py"))
    assert files, f"no Python files under {folder}: layout changed?"
    return files


@pytest.mark.parametrize("path", python_files("agent/core"), ids=lambda p: p.name)
def test_core_is_pure(path: Path) -> None:
    bad = sorted(m for m in imported_modules(path) if not allowed(m, CORE_ALLOWED))
    assert not bad, f"{path.relative_to(ROOT)} imports {bad}: agent/core must stay free of I/O"


@pytest.mark.parametrize("path", python_files("kubectl_canary/sandbox"), ids=lambda p: p.name)
def test_sandbox_shares_no_product_logic(path: Path) -> None:
    bad = sorted(
        m
        for m in imported_modules(path)
        if allowed(m, {"agent", "kubectl_canary.api", "kubectl_canary.cli"})
    )
    assert not bad, f"{path.relative_to(ROOT)} imports {bad}: the sandbox must stay independent"


CLIENT_LIBRARIES = {"kubernetes", "kr8s", "urllib3"}
# Each side keeps its client library behind one adapter module (DESIGN §2).
CLIENT_ADAPTERS = {ROOT / "agent" / "kube.py", ROOT / "kubectl_canary" / "kube.py"}


@pytest.mark.parametrize(
    "path",
    [p for p in python_files("agent") + python_files("kubectl_canary") if p not in CLIENT_ADAPTERS],
    ids=lambda p: str(p.relative_to(ROOT)),
)
def test_client_libraries_stay_behind_their_adapter(path: Path) -> None:
    bad = sorted(m for m in imported_modules(path) if allowed(m, CLIENT_LIBRARIES))
    assert not bad, (
        f"{path.relative_to(ROOT)} imports {bad}: use agent/kube.py or kubectl_canary/kube.py"
    )


def test_rules_catch_a_violation(tmp_path: Path) -> None:
    sample = tmp_path / "bad.py"
    sample.write_text("import urllib.request\nfrom agent.kube import Client\n")
    assert not allowed("urllib.request", CORE_ALLOWED)
    assert imported_modules(sample) == {"urllib.request", "agent.kube"}
