"""The mesh CRDs shipped in the package are the unchanged upstream files (DESIGN §7)."""

from __future__ import annotations

from pathlib import Path

import pytest

from kubectl_canary.sandbox.__main__ import MESH_CRD_FILES, PACKAGED_MESH_CRDS

SHARED = Path(__file__).resolve().parents[3] / "shared" / "crds"


@pytest.mark.parametrize("name", MESH_CRD_FILES)
def test_packaged_crd_is_the_upstream_file(name: str) -> None:
    upstream = SHARED / name
    assert upstream.is_file(), f"{upstream} is missing: the project's shared/ must sit beside it"
    assert (PACKAGED_MESH_CRDS / name).read_bytes() == upstream.read_bytes()
