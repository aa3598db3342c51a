"""The agent's RBAC is exactly what it uses: after the whole tier ran (this module sorts last),
every (resource, verb) `init` grants the agent must have been used by it at least once, per the
API server's audit log, and it used nothing else (every agent context of the tier also fails on
a single 403). docs/security.md lists the same rules with the reason for each.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from tests.realcluster.bed import AGENT_ACCOUNT, Bed

pytestmark = [pytest.mark.realcluster]

HERE = Path(__file__).resolve().parent


def granted(rendered: list[dict[str, Any]]) -> set[tuple[str, str, str]]:
    """(apiGroup, resource, verb) of every rule bound to the agent's ServiceAccount."""
    bound = set()
    for doc in rendered:
        if doc["kind"] in ("ClusterRoleBinding", "RoleBinding") and any(
            s.get("name") == AGENT_ACCOUNT for s in doc.get("subjects") or []
        ):
            bound.add((doc["roleRef"]["kind"], doc["roleRef"]["name"]))
    out = set()
    for doc in rendered:
        if (
            doc["kind"] not in ("ClusterRole", "Role")
            or (doc["kind"], doc["metadata"]["name"]) not in bound
        ):
            continue
        for rule in doc.get("rules") or []:
            for group in rule.get("apiGroups") or []:
                for resource in rule.get("resources") or []:
                    for verb in rule.get("verbs") or []:
                        out.add((group, resource, verb))
    return out


def whole_tier_ran(session: pytest.Session) -> list[str]:
    """The tier's modules this run did not include (the check needs every one of them)."""
    ran = {Path(str(item.path)).name for item in session.items}
    modules = sorted(p.name for p in HERE.glob("test_*.py"))
    return [m for m in modules if m not in ran]


@pytest.mark.timeout(120)
def test_the_agent_uses_every_verb_it_is_granted_and_no_other(
    bed: Bed, request: pytest.FixtureRequest
) -> None:
    if bed.audit_offset < 0:
        pytest.skip(f"{bed.mode} cluster: no audit log to read the agent's requests from")
    missing_modules = whole_tier_ran(request.session)
    if missing_modules:
        pytest.skip(
            "needs the whole real-cluster tier in one run; not run: " + ", ".join(missing_modules)
        )
    used = bed.agent_api_use()
    grants = granted(bed.rendered)
    unused = sorted(grants - set(used))
    beyond = sorted(set(used) - grants)
    print("agent requests by (group, resource, verb):")
    for key, count in sorted(used.items()):
        print(f"  {key}: {count}")
    assert not beyond, f"the agent used what it is not granted: {beyond}"
    assert not unused, f"granted to the agent but never used by it in the whole tier: {unused}"
