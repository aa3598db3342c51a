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
    # Pure knowledge of the generated objects: their names, and the weights routers report.
    "kubectl_canary.objects.names",
    "kubectl_canary.objects.routes",
    "kubectl_canary.api.steering",
}
# The plugin's modules the core may import run inside the core, so they obey its rules too.
CORE_SHARED = [
    ROOT.joinpath(*m.split(".")).with_suffix(".py")
    for m in sorted(CORE_ALLOWED)
    if m.startswith("kubectl_canary.")
]


def module_name(path: Path, root: Path = ROOT) -> str:
    parts = path.relative_to(root).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def _runtime_nodes(tree: ast.AST) -> list[ast.AST]:
    """Every node except those under `if TYPE_CHECKING:` (imports that never run)."""
    skipped: set[int] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.If) and "TYPE_CHECKING" in ast.unparse(node.test):
            skipped.update(id(inner) for stmt in node.body for inner in ast.walk(stmt))
    return [n for n in ast.walk(tree) if id(n) not in skipped]


def imported_modules(path: Path, root: Path = ROOT) -> set[str]:
    """What `path` imports at run time, top level or inside functions, with relative imports
    resolved against its package (`from .. import kube` in agent/core is `agent.kube`)."""
    tree = ast.parse(path.read_text(), filename=str(path))
    package = path.relative_to(root).with_suffix("").parts[:-1] if path.is_relative_to(root) else ()
    found: set[str] = set()
    for node in _runtime_nodes(tree):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            if node.level == 0:
                base = node.module or ""
            else:
                parent = package[: len(package) - (node.level - 1)]
                base = ".".join([*parent, *([node.module] if node.module else [])])
            found.add(base)
            # `from pkg import name` may import a module `pkg.name`.
            found.update(f"{base}.{alias.name}" for alias in node.names if alias.name != "*")
    return {m for m in found if m}


# Calls the pure core must not make: clock reads and I/O builtins (the modules that do more,
# time, socket, os, urllib, ..., are not importable there at all).
CORE_BANNED_CALLS = {"now", "utcnow", "today", "open", "print", "input", "exec", "eval"}
CORE_BANNED_CALLS |= {"__import__", "breakpoint"}


def impure_calls(path: Path) -> list[str]:
    tree = ast.parse(path.read_text(), filename=str(path))
    found = []
    for node in ast.walk(tree):
        if not isinstance(node, ast.Call):
            continue
        func = node.func
        name = func.attr if isinstance(func, ast.Attribute) else getattr(func, "id", "")
        if name in CORE_BANNED_CALLS:
            found.append(f"{ast.unparse(func)}() at line {node.lineno}")
    return found


def allowed(module: str, rules: set[str]) -> bool:
    return any(module == rule or module.startswith(rule + ".") for rule in rules)


def python_files(folder: str) -> list[Path]:
    files = sorted((ROOT / folder).rglob("*.py"))
    assert files, f"no Python files under {folder}: layout changed?"
    return files


def core_imports_outside_the_rules(path: Path, root: Path = ROOT) -> list[str]:
    # `from datetime import UTC` is recorded as datetime.UTC too: judge by the module.
    return sorted(m for m in imported_modules(path, root) if not allowed(m, CORE_ALLOWED))


@pytest.mark.parametrize(
    "path", python_files("agent/core") + CORE_SHARED, ids=lambda p: str(p.relative_to(ROOT))
)
def test_core_is_pure(path: Path) -> None:
    bad = core_imports_outside_the_rules(path)
    assert not bad, f"{path.relative_to(ROOT)} imports {bad}: agent/core must stay free of I/O"
    calls = impure_calls(path)
    assert not calls, f"{path.relative_to(ROOT)} calls {calls}: the core takes `now` as input"


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
    assert imported_modules(sample, tmp_path) == {
        "urllib.request",
        "agent.kube",
        "agent.kube.Client",
    }


def test_a_probe_hiding_behind_a_relative_import_and_the_clock_is_caught(tmp_path: Path) -> None:
    """The probe that passed the old check: the shell through a relative import, and a clock
    read through an allowed module."""
    probe = tmp_path / "agent" / "core" / "probe.py"
    probe.parent.mkdir(parents=True)
    probe.write_text(
        "from datetime import UTC, datetime\n"
        "from .. import kube\n"
        "from . import types\n"
        "def tick():\n"
        "    return kube, types, datetime.now(UTC)\n"
    )
    assert core_imports_outside_the_rules(probe, tmp_path) == ["agent", "agent.kube"]
    assert impure_calls(probe) == ["datetime.now() at line 5"]


def import_cycles(files: list[Path], root: Path = ROOT) -> list[list[str]]:
    """Groups of product modules that import each other, directly or round a loop (imports
    inside functions count; `if TYPE_CHECKING:` ones never run, so they do not)."""
    modules = {module_name(p, root): p for p in files}
    # A module's own parent packages are initialised before it whatever it imports
    # (`from pkg import submodule` names the package too): no edge to them.
    graph = {
        name: sorted(
            m
            for m in imported_modules(path, root)
            if m in modules and m != name and not name.startswith(m + ".")
        )
        for name, path in modules.items()
    }
    # Tarjan's strongly connected components, iteratively (no recursion limit to meet).
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    cycles: list[list[str]] = []
    for start in sorted(graph):
        if start in index:
            continue
        work = [(start, 0)]
        while work:
            node, i = work.pop()
            if i == 0:
                index[node] = low[node] = len(index)
                stack.append(node)
                on_stack.add(node)
            if i < len(graph[node]):
                work.append((node, i + 1))
                nxt = graph[node][i]
                if nxt not in index:
                    work.append((nxt, 0))
                elif nxt in on_stack:
                    low[node] = min(low[node], index[nxt])
                continue
            if work:
                parent = work[-1][0]
                low[parent] = min(low[parent], low[node])
            if low[node] == index[node]:
                group = []
                while True:
                    member = stack.pop()
                    on_stack.discard(member)
                    group.append(member)
                    if member == node:
                        break
                if len(group) > 1:
                    cycles.append(sorted(group))
    return cycles


def test_no_import_cycles_in_the_product() -> None:
    files = python_files("agent") + python_files("kubectl_canary")
    assert import_cycles(files) == []


def test_a_cycle_is_reported(tmp_path: Path) -> None:
    pkg = tmp_path / "kubectl_canary" / "cli"
    pkg.mkdir(parents=True)
    (pkg / "a.py").write_text("def f():\n    from kubectl_canary.cli.b import g\n")
    (pkg / "b.py").write_text("from . import c\n")
    (pkg / "c.py").write_text("from .a import f\n")
    (pkg / "d.py").write_text(
        "from typing import TYPE_CHECKING\nif TYPE_CHECKING:\n    from . import a\n"
    )
    files = sorted(pkg.glob("*.py"))
    assert import_cycles(files, tmp_path) == [
        ["kubectl_canary.cli.a", "kubectl_canary.cli.b", "kubectl_canary.cli.c"]
    ]
