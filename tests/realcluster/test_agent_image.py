"""The agent image, built here from its pinned inputs (scripts/build_image.py: mmdebstrap and
a layer written by the script, no Docker), run with buildah against the real API server.

One canary is taken from a new Deployment to Promoted by the `canary-agent` inside the image,
as UID 65532, through a kubeconfig mounted read-only. Afterwards the container's own layer is
committed and must hold no file but what the runner provides: the agent wrote nothing to its
root filesystem, so it runs with `readOnlyRootFilesystem`. The image has no shell. Its size is
printed.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
import tarfile
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.e2e.agent_harness import deployment
from tests.e2e.scenario_helpers import image
from tests.realcluster.bed import Bed, in_ci, plain_canary
from tests.realcluster.bed import image as tagged

pytestmark = [pytest.mark.realcluster]

REPO = Path(__file__).resolve().parents[2]
TOOLS = ("mmdebstrap", "buildah")


def _buildah(*args: str) -> str:
    done = subprocess.run(["buildah", *args], capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, f"buildah {' '.join(args)}: {done.stderr.strip()[-1500:]}"
    return done.stdout.strip()


@pytest.fixture(scope="module")
def archive(tmp_path_factory: pytest.TempPathFactory) -> Path:
    missing = [tool for tool in TOOLS if shutil.which(tool) is None]
    if missing:
        reason = f"the image test needs {', '.join(missing)} (apt-get install -y {' '.join(TOOLS)})"
        if in_ci():
            pytest.fail(reason)  # .ci/run installs them: in CI the image is built or it fails
        pytest.skip(reason)
    out = tmp_path_factory.mktemp("image")
    done = subprocess.run(
        [sys.executable, "scripts/build_image.py", "--arch", "amd64", "--out", str(out)],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=900,
    )
    assert done.returncode == 0, done.stderr[-2000:]
    (built,) = out.glob("canary-agent-*-linux-amd64.oci.tar")
    print(f"\nagent image: {built.name}, {built.stat().st_size / 2**20:.1f} MiB compressed")
    return built


@pytest.fixture
def container(archive: Path) -> Iterator[str]:
    name = _buildah("from", "--quiet", f"oci-archive:{archive}").splitlines()[-1]
    try:
        yield name
    finally:
        _buildah("rm", name)


def _config(archive: Path) -> dict[str, object]:
    """The image's config, read from the OCI layout inside the archive."""
    with tarfile.open(archive) as tar:

        def blob(digest: str) -> dict[str, object]:
            member = tar.extractfile(f"blobs/sha256/{digest.removeprefix('sha256:')}")
            assert member is not None
            return dict(json.load(member))

        index_file = tar.extractfile("index.json")
        assert index_file is not None
        (entry,) = json.load(index_file)["manifests"]
        manifest = blob(entry["digest"])
        return blob(manifest["config"]["digest"])  # type: ignore[index]


def _written_files(container: str, tmp: Path) -> list[str]:
    """Files the container's own layer holds (what the process wrote outside its mounts)."""
    after = tmp / "after.oci.tar"
    _buildah("commit", "--quiet", "--format", "oci", container, f"oci-archive:{after}")
    with tarfile.open(after) as tar:
        index_file = tar.extractfile("index.json")
        assert index_file is not None
        (entry,) = json.load(index_file)["manifests"]
        manifest_file = tar.extractfile(f"blobs/sha256/{entry['digest'].removeprefix('sha256:')}")
        assert manifest_file is not None
        top = json.load(manifest_file)["layers"][-1]["digest"].removeprefix("sha256:")
        layer = tar.extractfile(f"blobs/sha256/{top}")
        assert layer is not None
        with tarfile.open(fileobj=layer, mode="r:*") as diff:
            return [m.name for m in diff.getmembers() if not m.isdir()]


@pytest.mark.timeout(900)
def test_the_agent_image_promotes_a_canary(
    bed: Bed, ns: str, tmp_path: Path, archive: Path, container: str
) -> None:
    config = _config(archive)["config"]
    assert config["User"] == "65532:65532", config  # type: ignore[index]
    assert config["Entrypoint"] == ["/usr/local/bin/canary-agent"], config  # type: ignore[index]
    shell = subprocess.run(
        ["buildah", "run", "--isolation", "chroot", container, "--", "/bin/sh", "-c", "true"],
        capture_output=True,
        timeout=60,
    )
    assert shell.returncode != 0, "the image has a shell"

    # The agent's kubeconfig, readable by UID 65532 (as a mounted Secret would be), mounted
    # read-only outside /tmp, which is the container's tmpfs.
    kubeconfig = tmp_path / "kubeconfig"
    shutil.copyfile(bed.agent_kubeconfig, kubeconfig)
    kubeconfig.chmod(0o644)
    inside = "/etc/canary-agent/kubeconfig"
    run = ["buildah", "run", "--isolation", "chroot", "--user", "65532:65532"]
    run += ["--mount", "type=tmpfs,destination=/tmp"]
    run += ["-v", f"{kubeconfig}:{inside}:ro", container, "--", "/usr/local/bin/canary-agent"]
    c = bed.view()
    name = "imaged"
    c.apply(deployment(ns, name, tagged("1.1.1")))
    c.apply(plain_canary(ns, name))
    with bed.agent(tmp_path / "agent.log", command=run, kubeconfig=inside):
        c.wait_phase(ns, name, "Initialized", 120, 0.5)
        c.set_image(ns, name, tagged("1.1.2"))
        c.wait_phase(ns, name, "Succeeded", 180, 0.5)
    assert image(c, ns, f"{name}-primary") == tagged("1.1.2")
    # The runner itself writes the mount point and the network files it provides (as the
    # kubelet does); anything else would be the agent writing to its root filesystem.
    provided = {inside.lstrip("/"), "etc/hosts", "etc/hostname", "etc/resolv.conf"}
    assert [f for f in _written_files(container, tmp_path) if f not in provided] == []
