"""Traffic routers, one module per provider; look one up with `router_for(name, client)`."""

from kubectl_canary.objects.routers.base import Router, RouterError
from kubectl_canary.objects.routers.registry import (
    UnknownProviderError,
    router_for,
    router_names,
)

__all__ = ["Router", "RouterError", "UnknownProviderError", "router_for", "router_names"]
