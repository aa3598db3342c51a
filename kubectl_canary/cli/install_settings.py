"""What `init` was asked to install, remembered in the cluster so a later `init` converges.

The settings live in one annotation (JSON) on the agent's ServiceAccount: the one object every
install has, in a cluster and with `--agent-process` alike, that `uninstall` deletes and that
the GitOps manifests carry (so `init` after `kubectl apply -f manifests/install.yaml` starts
from what was applied). A later `init` takes each setting from its flag when one is given and
from the annotation otherwise, and says which settings changed.

Field names are `init`'s parameter names: the flag is `--` + the name with dashes, the JSON key
its camelCase.
"""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from kubectl_canary.cli.errors import CliError

SETTINGS_ANNOTATION = "kubectl-canary.dev/init-settings"


@dataclass(frozen=True)
class InstallSettings:
    provider: str = "kubernetes"
    metrics_server: str = field(default="", metadata={"empty": "(none)"})
    # "" is the plugin's own image (manifests.DEFAULT_IMAGE): an upgraded plugin upgrades an
    # agent installed without --image, and keeps one installed with it.
    image: str = field(default="", metadata={"empty": "(default)"})
    watch_namespace: tuple[str, ...] = field(default=(), metadata={"empty": "(all)"})
    allow_egress: tuple[str, ...] = field(default=(), metadata={"empty": "(none)"})
    # "" leaves the agent's own default (allow) in force.
    egress_default: str = field(default="", metadata={"empty": "(agent default)"})
    allow_gateway: tuple[str, ...] = field(default=(), metadata={"empty": "(none)"})
    allow_wildcard_hosts: bool = False
    allow_tls_disable: bool = False
    # Replicas, each ticking the canaries of the shards whose Leases it holds (agent/shards.py).
    shards: int = 1


NAMES = tuple(f.name for f in dataclasses.fields(InstallSettings))
_FIELDS = {f.name: f for f in dataclasses.fields(InstallSettings)}


def _key(name: str) -> str:
    first, *rest = name.split("_")
    return first + "".join(part.capitalize() for part in rest)


def to_json(settings: InstallSettings) -> str:
    """Compact and key-sorted: the same settings always give the same annotation, so a second
    `init` finds the ServiceAccount unchanged."""
    data = {_key(name): getattr(settings, name) for name in NAMES}
    return json.dumps(data, sort_keys=True, separators=(",", ":"))


def from_json(text: str, source: str) -> InstallSettings:
    """Unknown keys (from a newer plugin) are ignored and missing ones take their default."""
    try:
        data = json.loads(text)
    except ValueError as e:
        raise CliError(f"{source} is not valid JSON ({e}): run init with --reset") from None
    if not isinstance(data, dict):
        raise CliError(f"{source} is not a JSON object: run init with --reset")
    values: dict[str, Any] = {}
    for name in NAMES:
        if _key(name) not in data:
            continue
        value, default = data[_key(name)], getattr(InstallSettings(), name)
        if isinstance(default, tuple) and isinstance(value, list):
            value = tuple(str(v) for v in value)
        if type(value) is not type(default):
            raise CliError(f"{source}: {_key(name)} is {value!r}: run init with --reset")
        values[name] = value
    return InstallSettings(**values)


def stored(service_account: Mapping[str, Any] | None) -> InstallSettings | None:
    """The settings recorded on the agent's ServiceAccount; None when there are none."""
    if service_account is None:
        return None
    meta = service_account.get("metadata") or {}
    text = (meta.get("annotations") or {}).get(SETTINGS_ANNOTATION)
    if text is None:
        return None
    name = meta.get("name", "")
    return from_json(text, f"annotation {SETTINGS_ANNOTATION} of serviceaccount/{name}")


def merged(base: InstallSettings, given: Mapping[str, Any]) -> InstallSettings:
    """`base` with every setting whose flag was given replaced.

    A flag not given arrives as None (a scalar or a --x/--no-x flag) or () (a repeatable one).
    In a repeatable flag an empty value clears the list: `--watch-namespace ''` is all
    namespaces again."""
    changes: dict[str, Any] = {}
    for name in NAMES:
        value = given.get(name)
        if value is None or value == ():
            continue
        changes[name] = tuple(v for v in value if v) if isinstance(value, tuple) else value
    return dataclasses.replace(base, **changes)


def _shown(name: str, value: Any) -> str:
    if isinstance(value, bool):
        return str(value).lower()
    if not value:
        return str(_FIELDS[name].metadata.get("empty", "(none)"))
    return ",".join(value) if isinstance(value, tuple) else str(value)


def changes(before: InstallSettings, after: InstallSettings) -> list[str]:
    """One line per changed setting, named by its flag: `provider: kubernetes -> istio`."""
    return [
        f"{name.replace('_', '-')}: {_shown(name, getattr(before, name))} -> "
        f"{_shown(name, getattr(after, name))}"
        for name in NAMES
        if getattr(before, name) != getattr(after, name)
    ]
