"""docs/security.md's RBAC table says exactly what `init --dry-run -o yaml` grants the agent."""

from __future__ import annotations

from pathlib import Path

import yaml
from click.testing import CliRunner

from kubectl_canary.cli.main import cli

DOC = Path(__file__).resolve().parents[2] / "docs" / "security.md"
SECTION = "## The agent's RBAC, verb by verb"

Grant = tuple[str, str, str]  # (group, resource, verb)


def documented() -> set[Grant]:
    text = DOC.read_text()
    assert SECTION in text, f"{DOC} has no section {SECTION!r}"
    body = text.split(SECTION, 1)[1].split("\n## ", 1)[0]
    rows = [line for line in body.splitlines() if line.startswith("|")][2:]  # past the header
    grants = set()
    for row in rows:
        group, resource, verbs, _why = (cell.strip() for cell in row.strip("|").split("|", 3))
        group = "" if group == "(core)" else group
        grants |= {(group, resource, verb) for verb in verbs.split()}
    return grants


def rendered() -> set[Grant]:
    result = CliRunner().invoke(cli, ["init", "--dry-run", "-o", "yaml"])
    assert result.exit_code == 0, result.output
    docs = [d for d in yaml.safe_load_all(result.stdout) if d]
    (role,) = [d for d in docs if d["kind"] == "ClusterRole"]
    return {
        (group, resource, verb)
        for rule in role["rules"]
        for group in rule["apiGroups"]
        for resource in rule["resources"]
        for verb in rule["verbs"]
    }


def test_the_table_matches_the_rendered_cluster_role_both_ways() -> None:
    doc, rules = documented(), rendered()
    assert not doc - rules, f"documented but not granted: {sorted(doc - rules)}"
    assert not rules - doc, f"granted but not documented: {sorted(rules - doc)}"


def test_secrets_are_never_listed_or_watched() -> None:
    secrets = {verb for group, resource, verb in rendered() if resource == "secrets"}
    assert secrets == {"get", "create", "update", "delete"}
