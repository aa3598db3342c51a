"""kubectl's conventions against the real API server, as the cluster admin runs the plugin:
durations and --request-timeout on the real client, and exit codes that do not lie."""

from __future__ import annotations

import pytest

from tests.e2e.agent_harness import deployment
from tests.realcluster.bed import Bed, plain_canary
from tests.realcluster.bed import image as tagged

pytestmark = [pytest.mark.realcluster]

NAME = "web"


@pytest.mark.timeout(120)
def test_durations_request_timeout_and_exit_codes(bed: Bed, ns: str) -> None:
    c = bed.view()
    c.apply(deployment(ns, NAME, tagged("1.1.1")))
    c.apply(plain_canary(ns, NAME, interval="3s", step_weight=10, deadline=120))

    listed = bed.kubectl("canary", "status", "-n", ns, "--request-timeout", "10s")
    assert listed.stdout.splitlines()[1].startswith(NAME), listed.stdout
    # 0: no per-request limit (kubectl's meaning); the request still completes.
    unlimited = bed.kubectl("canary", "status", NAME, "-n", ns, "--request-timeout", "0")
    assert unlimited.returncode == 0 and ns in unlimited.stdout, unlimited.stdout

    # No agent runs here: the wait ends at its --timeout, spelled as kubectl spells it.
    waited = bed.kubectl(
        "canary", "status", NAME, "-n", ns, "--wait", "--timeout", "2s", check=False
    )
    # One progress line (the agent has not seen the canary), then the outcome.
    assert waited.returncode == 1, waited.stderr
    assert waited.stderr.splitlines()[-1] == (
        f"error: timed out after 2s waiting for canary {NAME} (phase unknown)"
    )

    missing = bed.kubectl("canary", "logs", "nope", "-n", ns, check=False)
    assert (missing.returncode, missing.stderr) == (
        1,
        f'error: canary "nope" not found in namespace "{ns}"\n',
    )

    version = bed.kubectl("canary", "version", "--agent-namespace", ns, check=False)
    assert version.returncode == 1
    assert version.stdout.startswith("Plugin version: ")
    assert version.stderr.startswith("error: the agent is not installed")
    assert version.stderr.count("\n") == 1
