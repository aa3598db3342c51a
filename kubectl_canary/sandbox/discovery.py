"""Discovery documents (/api, /api/v1, /apis, /apis/<group>/<version>) built from the served
types. Only the legacy (non-aggregated) format: kubectl falls back to it when the server
ignores the aggregated `Accept` type, as old servers do."""

from __future__ import annotations

from typing import Any

from .kinds import ResourceType, version_priority

VERSION_INFO = {
    "major": "1",
    "minor": "32",
    "gitVersion": "v1.32.0-sandbox",
    "gitCommit": "0000000000000000000000000000000000000000",
    "gitTreeState": "clean",
    "buildDate": "2026-01-01T00:00:00Z",
    "goVersion": "go1.23.0",
    "compiler": "gc",
    "platform": "linux/amd64",
}


def core_versions() -> dict[str, Any]:
    return {
        "kind": "APIVersions",
        "versions": ["v1"],
        "serverAddressByClientCIDRs": [{"clientCIDR": "0.0.0.0/0", "serverAddress": "127.0.0.1"}],
    }


def _group_versions(types: list[ResourceType]) -> dict[str, list[str]]:
    groups: dict[str, set[str]] = {}
    for t in types:
        if t.group:
            groups.setdefault(t.group, set()).update(t.versions)
    return {g: sorted(vs, key=version_priority) for g, vs in sorted(groups.items())}


def group_list(types: list[ResourceType]) -> dict[str, Any]:
    groups = []
    for group, versions in _group_versions(types).items():
        entries = [{"groupVersion": f"{group}/{v}", "version": v} for v in versions]
        groups.append({"name": group, "versions": entries, "preferredVersion": entries[0]})
    return {"kind": "APIGroupList", "apiVersion": "v1", "groups": groups}


def group(types: list[ResourceType], name: str) -> dict[str, Any] | None:
    versions = _group_versions(types).get(name)
    if not versions:
        return None
    entries = [{"groupVersion": f"{name}/{v}", "version": v} for v in versions]
    return {
        "kind": "APIGroup",
        "apiVersion": "v1",
        "name": name,
        "versions": entries,
        "preferredVersion": entries[0],
    }


def resource_list(
    types: list[ResourceType], group_name: str, version: str
) -> dict[str, Any] | None:
    served = [t for t in types if t.group == group_name and version in t.versions]
    if not served:
        return None
    resources: list[dict[str, Any]] = []
    for t in sorted(served, key=lambda t: t.plural):
        entry: dict[str, Any] = {
            "name": t.plural,
            "singularName": t.singular,
            "namespaced": t.namespaced,
            "kind": t.kind,
            "verbs": list(t.verbs),
        }
        if t.short_names:
            entry["shortNames"] = list(t.short_names)
        if t.categories:
            entry["categories"] = list(t.categories)
        resources.append(entry)
        if t.has_status:
            resources.append(
                {
                    "name": f"{t.plural}/status",
                    "singularName": "",
                    "namespaced": t.namespaced,
                    "kind": t.kind,
                    "verbs": ["get", "patch", "update"],
                }
            )
        if t.scale is not None:
            resources.append(
                {
                    "name": f"{t.plural}/scale",
                    "singularName": "",
                    "namespaced": t.namespaced,
                    "group": "autoscaling",
                    "version": "v1",
                    "kind": "Scale",
                    "verbs": ["get", "patch", "update"],
                }
            )
    group_version = f"{group_name}/{version}" if group_name else version
    return {
        "kind": "APIResourceList",
        "apiVersion": "v1",
        "groupVersion": group_version,
        "resources": resources,
    }
