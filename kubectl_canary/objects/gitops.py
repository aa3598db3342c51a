"""Metadata by which GitOps tools and Helm recognise the objects they manage.

Copied onto a generated object (the `-primary` Deployment, the ConfigMap/Secret copies), it
makes that tool treat our object as its own: Argo CD or Flux would prune it as "not in Git"
(deleting the primary that serves every user), Helm would adopt or refuse it. So these keys
are never copied from the target; the agent's `--no-copy-metadata` adds more (docs/agent.md).
"""

from __future__ import annotations

from collections.abc import Collection, Mapping

# Exact keys: Argo CD's default tracking label (and the one it can be configured to use
# instead), Helm's ownership label.
TRACKING_KEYS = frozenset(
    {
        "app.kubernetes.io/instance",
        "argocd.argoproj.io/instance",
        "app.kubernetes.io/managed-by",
    }
)
# Whole key prefixes owned by one tool: Argo CD (tracking-id, hooks, sync waves and options),
# Flux's kustomize- and helm-controllers (name/namespace tracking labels), Helm's release
# annotations.
TRACKING_PREFIXES = (
    "argocd.argoproj.io/",
    "kustomize.toolkit.fluxcd.io/",
    "helm.toolkit.fluxcd.io/",
    "meta.helm.sh/",
)


def is_tracking(key: str, extra: Collection[str] = ()) -> bool:
    """Whether `key` must not be copied. `extra` holds more keys, or prefixes ending in '/'."""
    if key in TRACKING_KEYS or key.startswith(TRACKING_PREFIXES):
        return True
    return any(key == e or (e.endswith("/") and key.startswith(e)) for e in extra)


def untracked(values: Mapping[str, str], extra: Collection[str] = ()) -> dict[str, str]:
    """`values` (labels or annotations) without the tracking keys."""
    return {k: v for k, v in values.items() if not is_tracking(k, extra)}
