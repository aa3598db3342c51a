"""An invalid Canary is visible where people look (issue 13): the `Valid` printer column of
`kubectl get` (a JSONPath filter on conditions, which only the API server evaluates for real),
the phase `Invalid` in `kubectl canary status`, every problem in `status NAME`."""

from __future__ import annotations

from pathlib import Path

import pytest

from kubectl_canary.api.errors import InvalidResource
from kubectl_canary.api.parse import parse_canary
from tests.e2e.agent_harness import deployment, wait_for
from tests.realcluster.bed import Bed, plain_canary
from tests.realcluster.bed import image as tagged

pytestmark = [pytest.mark.realcluster]


@pytest.mark.timeout(180)
def test_an_invalid_canary_shows_in_kubectl_get_and_status(
    bed: Bed, ns: str, tmp_path: Path
) -> None:
    c = bed.view()
    c.apply(deployment(ns, "api", tagged("1.1.1")))
    c.apply(plain_canary(ns, "fine"))
    broken = plain_canary(ns, "api")
    # The schema takes it; the plugin's and agent's validation do not.
    broken["spec"]["analysis"].update(stepWeights=[10, 20], iterations=3)
    with pytest.raises(InvalidResource) as found:
        parse_canary(broken)
    problems = [str(p) for p in found.value.problems]
    c.apply(broken)
    with bed.agent(tmp_path / "agent.log"):
        wait_for(
            "Valid=False",
            lambda: any(
                x["type"] == "Valid" and x["status"] == "False"
                for x in c.status(ns, "api").get("conditions", [])
            ),
            60,
            0.3,
        )
    table = bed.kubectl("get", "canaries.kubectl-canary.dev", "-n", ns).stdout.splitlines()
    at = table[0].index("VALID")  # cells may be empty: read the column where its title starts
    valid = {line.split()[0]: line[at:].split()[0] for line in table[1:] if line[at:].strip()}
    assert valid.get("api") == "False", table

    ours = bed.kubectl("canary", "status", "-n", ns, "-o", "wide").stdout.splitlines()
    assert len(ours) == 3, ours  # one line per canary, however many lines the message has
    assert ours[1].split()[:2] == ["api", "Invalid"]

    detail = bed.kubectl("canary", "status", "api", "-n", ns).stdout
    assert "Phase:         Invalid" in detail
    for problem in problems:
        assert f"  - {problem}\n" in detail
