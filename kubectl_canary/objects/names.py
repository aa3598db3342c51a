"""The names of the objects generated for a Canary, and the limits they must keep.

The one module that spells the generated suffixes (a test checks no other product module
does): the primary Deployment `<target>-primary`, the Services `<svc>-primary` and
`<svc>-canary`, the ConfigMap/Secret copies `<name>-primary`, the HPA copy `<hpa>-primary`,
and the primary's selector label value `<value>-primary`. Pure and light (it imports nothing
at run time), so the API package, the core and the plugin's fast paths may import it.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:  # annotations only: the plugin's listing commands never load the model
    from kubectl_canary.api.model import Canary

PRIMARY_SUFFIX = "-primary"
CANARY_SUFFIX = "-canary"

# The API server's limits (object names are DNS subdomains, Service names and label values at
# most 63 characters). Checked before anything is written: a name it would reject must be a
# clear Invalid condition, not a 422 on every tick.
LABEL_VALUE_MAX = 63
OBJECT_NAME_MAX = 253
# `<svc>-primary` / `<svc>-canary` must stay a 63-character label (the primary's is longer).
SERVICE_NAME_MAX = LABEL_VALUE_MAX - max(len(PRIMARY_SUFFIX), len(CANARY_SUFFIX))
# `<target>-primary` must stay a 253-character DNS subdomain.
TARGET_NAME_MAX = OBJECT_NAME_MAX - len(PRIMARY_SUFFIX)


def service_name(canary: Canary) -> str:
    """The apex Service (and routing object) name: service.name, else the target's name."""
    return canary.spec.service.name or canary.spec.target_ref.name


def primary_name(canary: Canary) -> str:
    """The primary Deployment."""
    return primary_deployment_name(canary.spec.target_ref.name)


def primary_deployment_name(target: str) -> str:
    """The primary Deployment of target Deployment `target`."""
    return target + PRIMARY_SUFFIX


def service_names(canary: Canary) -> tuple[str, str, str]:
    """(apex, primary, canary) Service names; also the Istio hosts and DestinationRules."""
    apex = service_name(canary)
    return apex, apex + PRIMARY_SUFFIX, apex + CANARY_SUFFIX


def primary_label_value(value: str) -> str:
    """The primary's pods' value of the target's selector label."""
    return value + PRIMARY_SUFFIX


def primary_hpa_name(hpa_name: str) -> str:
    """The primary's copy of the target's HorizontalPodAutoscaler."""
    return hpa_name + PRIMARY_SUFFIX


def config_copy_name(name: str) -> str:
    """The primary's copy of ConfigMap or Secret `name`."""
    return name + PRIMARY_SUFFIX


def is_config_copy_name(name: str) -> bool:
    return name.endswith(PRIMARY_SUFFIX) and len(name) > len(PRIMARY_SUFFIX)


def original_config_name(name: str) -> str:
    """`<name>` for a copy's name `<name>-primary`; other names unchanged."""
    return name[: -len(PRIMARY_SUFFIX)] if is_config_copy_name(name) else name
