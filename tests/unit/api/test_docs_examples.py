"""Every Canary / MetricTemplate example in the project's Markdown docs must validate, so the
docs cannot drift from the API. (The manifests/samples files are checked in test_crds.py.)"""

from __future__ import annotations

import re
from typing import Any

import yaml

from kubectl_canary.api.model import GROUP
from kubectl_canary.api.validate import validate_canary, validate_metric_template
from tests.unit.api.crd_schema import MANIFESTS

REPO = MANIFESTS.parent.parent
_FENCE = re.compile(r"^```ya?ml\n(.*?)^```", re.MULTILINE | re.DOTALL)


def doc_examples(markdown: str) -> list[Any]:
    """Our resources in the ```yaml blocks of one Markdown text."""
    found = []
    for block in _FENCE.findall(markdown):
        for doc in yaml.safe_load_all(block):
            if isinstance(doc, dict) and str(doc.get("apiVersion", "")).startswith(GROUP + "/"):
                found.append(doc)
    return found


def test_doc_examples_validate() -> None:
    problems = []
    for path in sorted(REPO.rglob("*.md")):
        if any(part.startswith(".") for part in path.relative_to(REPO).parts):
            continue
        for doc in doc_examples(path.read_text(encoding="utf-8")):
            check = validate_canary if doc.get("kind") == "Canary" else validate_metric_template
            if doc.get("kind") not in ("Canary", "MetricTemplate"):
                problems.append(f"{path}: unknown kind {doc.get('kind')!r}")
                continue
            problems += [f"{path}: {doc['metadata'].get('name')}: {p}" for p in check(doc)]
    assert problems == []


def test_doc_examples_are_found() -> None:
    # Guards the extraction above: a fenced example is found, a bad one is reported.
    markdown = (
        "Intro\n\n```yaml\napiVersion: kubectl-canary.dev/v1alpha1\nkind: Canary\n"
        "metadata: {name: web}\nspec:\n  targetRef: {name: web}\n  service: {port: 0}\n```\n"
        "```yaml\napiVersion: v1\nkind: Service\n```\n"
    )
    (doc,) = doc_examples(markdown)
    assert [str(p) for p in validate_canary(doc)] == ["spec.service.port: must be 1..65535, got 0"]
