"""The manifests `init` installs, read from package data (works from any install).

`manifests/crds/*.yaml` are applied as they are; `manifests/agent/*.yaml` carry `${VAR}`
placeholders (namespace, image, provider, metrics server, watched namespaces) filled in here.
A placeholder without a value is an error, so a manifest and this module cannot drift apart
silently.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from importlib import resources
from typing import Any

from kubectl_canary import __version__
from kubectl_canary.cli.errors import CliError

Obj = dict[str, Any]

IMAGE_REPOSITORY = "ghcr.io/kubectl-canary/canary-agent"
# Filled in by the release process (sha256:...): a release pins the agent image by digest, so
# what runs is exactly what was built and scanned. Dev builds leave it empty and use the tag.
IMAGE_DIGEST = ""
DEFAULT_IMAGE = (
    f"{IMAGE_REPOSITORY}@{IMAGE_DIGEST}" if IMAGE_DIGEST else f"{IMAGE_REPOSITORY}:{__version__}"
)
# Every object init renders carries these, and init's pruning and uninstall delete only
# objects that carry them (with the agent's name label): never one someone else made.
PART_OF_LABEL = "app.kubernetes.io/part-of"
MANAGED_BY_LABEL = "app.kubernetes.io/managed-by"
NAME_LABEL = "app.kubernetes.io/name"
OUR_LABELS = {PART_OF_LABEL: "kubectl-canary", MANAGED_BY_LABEL: "kubectl-canary"}
AGENT_LABELS = {MANAGED_BY_LABEL: "kubectl-canary", NAME_LABEL: "kubectl-canary-agent"}


def ours(obj: Obj, labels: Mapping[str, str] = AGENT_LABELS) -> bool:
    found = obj.get("metadata", {}).get("labels") or {}
    return all(found.get(k) == v for k, v in labels.items())


PLACEHOLDER = re.compile(r"\$\{([A-Z0-9_]+)\}")


def _files(folder: str) -> list[tuple[str, str]]:
    root = resources.files("kubectl_canary").joinpath("manifests").joinpath(folder)
    if not root.is_dir():
        return []
    found = [(p.name, p.read_text(encoding="utf-8")) for p in root.iterdir()]
    return sorted((name, text) for name, text in found if name.endswith((".yaml", ".yml")))


def _documents(text: str, source: str) -> list[Obj]:
    import yaml

    try:
        docs = [d for d in yaml.safe_load_all(text) if d]
    except yaml.YAMLError as e:
        raise CliError(f"manifest {source} is not valid YAML: {e}") from None
    return docs


def substitute(text: str, values: Mapping[str, str], source: str) -> str:
    missing = sorted({m for m in PLACEHOLDER.findall(text) if m not in values})
    if missing:
        raise CliError(f"manifest {source} needs values for: {', '.join(missing)}")
    return PLACEHOLDER.sub(lambda m: values[m.group(1)], text)


def crd_documents() -> list[Obj]:
    docs = [d for name, text in _files("crds") for d in _documents(text, f"crds/{name}")]
    if not docs:
        raise CliError("this build of kubectl-canary has no CRD manifests (package data missing)")
    return docs


# With watched namespaces, the agent gets a RoleBinding to its ClusterRole in each of them
# instead of a cluster-wide binding (see the comments in those two manifests).
CLUSTER_BINDING_FILE = "clusterrolebinding.yaml"
PER_NAMESPACE_BINDING_FILE = "rolebinding-watched.yaml"


def agent_documents(values: Mapping[str, str], extra_args: Sequence[str] = ()) -> list[Obj]:
    """The agent's objects; values["WATCH_NAMESPACES"] is a comma-separated list or "".

    `extra_args` go after the Deployment's own args: optional and repeatable flags, which a
    text placeholder cannot render (it would leave `--flag=` behind when unset)."""
    watched = [ns for ns in values["WATCH_NAMESPACES"].split(",") if ns]
    docs: list[Obj] = []
    for name, text in _files("agent"):
        source = f"agent/{name}"
        if name == PER_NAMESPACE_BINDING_FILE:
            for ns in watched:
                rendered = substitute(text, {**values, "WATCH_NAMESPACE": ns}, source)
                docs += _documents(rendered, source)
            continue
        if name == CLUSTER_BINDING_FILE and watched:
            continue
        docs += _documents(substitute(text, values, source), source)
    if not docs:
        raise CliError("this build of kubectl-canary has no agent manifests (package data missing)")
    for doc in docs:
        if doc["kind"] == "Deployment":
            container = doc["spec"]["template"]["spec"]["containers"][0]
            container["args"] = [*container.get("args", []), *extra_args]
    return docs
