"""Traffic routers, one module per provider; look one up with `router_for(name, client)`."""

from agent.routers.base import Router, RouterError
from agent.routers.registry import UnknownProviderError, router_for, router_names

__all__ = ["Router", "RouterError", "UnknownProviderError", "router_for", "router_names"]
