"""The ConfigMaps and Secrets a pod template references, and renaming those references.

Shared by the agent (revision checksum, the primary's `-primary` config copies) and the plugin's
`offboard` (handing back a template that names the originals again), so both walk exactly the
same places: containers' and initContainers' `env[].valueFrom.configMapKeyRef/secretKeyRef`
and `envFrom[].configMapRef/secretRef`, `volumes[].configMap/secret` and projected volumes'
`sources[].configMap/secret`.
"""

from __future__ import annotations

import copy
from collections.abc import Callable, Iterator
from typing import Any

from kubectl_canary.api.model import SHARED_POD_LABEL
from kubectl_canary.objects.names import config_copy_name, original_config_name

Obj = dict[str, Any]


def _slots(pod: Obj) -> Iterator[tuple[str, Obj, str]]:
    """(kind, the object holding the name, its name field) of every reference in a pod spec."""
    for container in list(pod.get("containers") or []) + list(pod.get("initContainers") or []):
        for env in container.get("env") or []:
            source = env.get("valueFrom") or {}
            yield from _slot("ConfigMap", source.get("configMapKeyRef"), "name")
            yield from _slot("Secret", source.get("secretKeyRef"), "name")
        for env_from in container.get("envFrom") or []:
            yield from _slot("ConfigMap", env_from.get("configMapRef"), "name")
            yield from _slot("Secret", env_from.get("secretRef"), "name")
    for volume in pod.get("volumes") or []:
        yield from _slot("ConfigMap", volume.get("configMap"), "name")
        yield from _slot("Secret", volume.get("secret"), "secretName")
        for source in (volume.get("projected") or {}).get("sources") or []:
            yield from _slot("ConfigMap", source.get("configMap"), "name")
            yield from _slot("Secret", source.get("secret"), "name")


def _slot(kind: str, holder: Obj | None, field: str) -> Iterator[tuple[str, Obj, str]]:
    if holder and holder.get(field):
        yield kind, holder, field


def referenced_configs(template: Obj) -> list[tuple[str, str]]:
    """Sorted, distinct (kind, name) of the ConfigMaps/Secrets a pod template references."""
    return sorted({(kind, holder[field]) for kind, holder, field in _slots(_pod(template))})


def renamed_config_refs(template: Obj, rename: Callable[[str, str], str]) -> Obj:
    """A copy of the pod template with each reference's name replaced by rename(kind, name)."""
    result = copy.deepcopy(template)
    for kind, holder, field in _slots(_pod(result)):
        holder[field] = rename(kind, holder[field])
    return result


def to_primary_copies(template: Obj) -> Obj:
    """Every reference `<name>` becomes `<name>-primary` (the primary's copies)."""
    return renamed_config_refs(template, lambda _kind, name: config_copy_name(name))


def from_primary_copies(template: Obj) -> Obj:
    """The inverse of `to_primary_copies`: `<name>-primary` becomes `<name>` again.

    Names without the suffix are left as they are (a template written before the primary
    referenced copies)."""
    return renamed_config_refs(template, lambda _kind, name: original_config_name(name))


def handed_back_template(primary: Obj, target: Obj) -> Obj:
    """The primary's pod template (its last promoted revision) fit for the target again: the
    target's selector labels instead of the primary's, the original ConfigMaps/Secrets instead
    of the primary's copies, and the shared pod label only if the target carries it (the
    kubernetes router put it there). Used by revert (agent) and offboard (plugin)."""
    template = from_primary_copies(primary["spec"]["template"])
    labels = template.setdefault("metadata", {}).setdefault("labels", {})
    own = (target["spec"]["template"].get("metadata") or {}).get("labels") or {}
    if SHARED_POD_LABEL not in own:
        labels.pop(SHARED_POD_LABEL, None)
    labels.update(target["spec"].get("selector", {}).get("matchLabels", {}))
    return template


def _pod(template: Obj) -> Obj:
    pod: Obj = template.get("spec") or {}
    return pod
