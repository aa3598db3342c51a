"""The GitOps manifests on a real API server: every object of install.yaml and of the
kustomize overlay passes the server's validation and admission (a server-side dry run, so the
tier's own installation stays as it is)."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.realcluster.bed import Bed

pytestmark = pytest.mark.realcluster

MANIFESTS = Path(__file__).resolve().parents[2] / "manifests"


@pytest.mark.parametrize(
    "source",
    [
        ("-f", str(MANIFESTS / "install.yaml")),
        ("-k", str(MANIFESTS / "kustomize" / "base")),
        ("-k", str(MANIFESTS / "kustomize" / "overlays" / "namespaced")),
    ],
    ids=["install.yaml", "kustomize-base", "kustomize-namespaced"],
)
def test_the_api_server_accepts_the_gitops_install(bed: Bed, source: tuple[str, str]) -> None:
    # The namespaced overlay's example namespace, as a user's would exist before the install.
    bed.kubectl(
        "apply", "-f", "-", input="apiVersion: v1\nkind: Namespace\nmetadata:\n  name: apps\n"
    )
    done = bed.kubectl("apply", "--server-side", "--dry-run=server", "--force-conflicts", *source)
    applied = [line for line in done.stdout.splitlines() if "(server dry run)" in line]
    assert len(applied) >= 13, done.stdout
