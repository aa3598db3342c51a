"""The generated objects' names are spelled in one module (kubectl_canary/objects/names.py):
every other product module asks it, so the agent and the plugin cannot disagree on what the
primary is called. Prose (docstrings, comments) may mention the suffix; code may not."""

from __future__ import annotations

import ast
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
SUFFIX = "-primary"
NAMES_MODULE = ROOT / "kubectl_canary" / "objects" / "names.py"


def product_files() -> list[Path]:
    files = sorted((ROOT / "agent").rglob("*.py")) + sorted((ROOT / "kubectl_canary").rglob("*.py"))
    sandbox = ROOT / "kubectl_canary" / "sandbox"  # the test bed, not product logic
    return [p for p in files if not p.is_relative_to(sandbox)]


def _docstrings(tree: ast.AST) -> set[int]:
    found = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Module | ast.ClassDef | ast.FunctionDef | ast.AsyncFunctionDef):
            body = node.body
            if body and isinstance(body[0], ast.Expr) and isinstance(body[0].value, ast.Constant):
                found.add(id(body[0].value))
    return found


def literals_spelling(path: Path, text: str) -> list[int]:
    """Lines of string literals (f-string parts included) in `path` that contain `text`,
    docstrings left out."""
    tree = ast.parse(path.read_text(), filename=str(path))
    prose = _docstrings(tree)
    return sorted(
        node.lineno
        for node in ast.walk(tree)
        if isinstance(node, ast.Constant)
        and isinstance(node.value, str)
        and text in node.value
        and id(node) not in prose
    )


def test_the_primary_suffix_is_spelled_in_one_module() -> None:
    spelled = {
        str(path.relative_to(ROOT)): lines
        for path in product_files()
        if (lines := literals_spelling(path, SUFFIX))
    }
    assert list(spelled) == [str(NAMES_MODULE.relative_to(ROOT))], spelled


def test_the_check_sees_f_strings_and_skips_prose(tmp_path: Path) -> None:
    sample = tmp_path / "sample.py"
    sample.write_text(
        '"""Docstring naming <name>-primary."""\n'
        "# a comment naming x-primary\n"
        "def f(name):\n"
        '    """About <name>-primary."""\n'
        '    return f"{name}-primary"\n'
        'PLAIN = "svc-primary"\n'
    )
    assert literals_spelling(sample, SUFFIX) == [5, 6]
