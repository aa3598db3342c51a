"""Which pods each generated Service selects, derived from one label of the target's selector.

The primary's pods carry the target's selector label with the primary's value
(`names.primary_label_value`), so neither Deployment's selector chooses the other's pods; both
carry SHARED_POD_LABEL, which the kubernetes router selects to split traffic between them.
"""

from __future__ import annotations

from collections.abc import Collection

from kubectl_canary.api.model import SHARED_POD_LABEL
from kubectl_canary.objects.names import (
    LABEL_VALUE_MAX,
    OBJECT_NAME_MAX,
    config_copy_name,
    primary_label_value,
)
from kubectl_canary.resources import Obj

# Preferred selector labels, in order, to derive the primary's selector from.
_SELECTOR_KEYS = ("app", "app.kubernetes.io/name")


def selector_label(target: Obj) -> tuple[str, str]:
    """The (key, value) of the target's selector label the primary's selector derives from.

    `app`, else `app.kubernetes.io/name`, else the first matchLabels entry.
    """
    match_labels: dict[str, str] = target.get("spec", {}).get("selector", {}).get("matchLabels")
    if not match_labels:
        name = target.get("metadata", {}).get("name", "?")
        raise ValueError(f"Deployment {name} has no spec.selector.matchLabels to derive from")
    for key in _SELECTOR_KEYS:
        if key in match_labels:
            return key, match_labels[key]
    key = next(iter(match_labels))
    return key, match_labels[key]


def primary_selector(target: Obj) -> dict[str, str]:
    """Selector of the primary's pods: the target's selector label with the primary's value."""
    key, value = selector_label(target)
    return {key: primary_label_value(value)}


def target_selector(target: Obj) -> dict[str, str]:
    """Selector of the target's (canary's) pods, reduced to the one label we derive from."""
    key, value = selector_label(target)
    return {key: value}


def shared_selector(target: Obj) -> dict[str, str]:
    """Selector matching both pod sets (see SHARED_POD_LABEL)."""
    return {SHARED_POD_LABEL: selector_label(target)[1]}


def generated_names_problem(target: Obj, config_refs: Collection[tuple[str, str]]) -> str | None:
    """Why the objects generated for `target` (and the primary's copies of `config_refs`)
    would be rejected by the API server; None when they would not."""
    try:
        key, value = selector_label(target)
    except ValueError as exc:
        return str(exc)
    primary_value = primary_label_value(value)
    if len(primary_value) > LABEL_VALUE_MAX:
        keep = LABEL_VALUE_MAX - (len(primary_value) - len(value))
        return (
            f"the primary's selector label {key}={primary_value} would have "
            f"{len(primary_value)} characters, more than the {LABEL_VALUE_MAX} Kubernetes "
            f"allows: shorten the value of the target's {key} label to at most {keep}"
        )
    for kind, name in config_refs:
        copy = config_copy_name(name)
        if len(copy) > OBJECT_NAME_MAX:
            return (
                f"the primary's copy of {kind} {name} would be named with {len(copy)} "
                f"characters, more than {OBJECT_NAME_MAX}: shorten the {kind}'s name"
            )
    return None
