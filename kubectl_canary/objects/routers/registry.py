"""Routers by provider name. An unknown name is an error, never a silent fallback."""

from __future__ import annotations

from collections.abc import Callable

from kubectl_canary.objects.routers.base import Router
from kubectl_canary.objects.routers.gatewayapi import GatewayAPIRouter
from kubectl_canary.objects.routers.istio import IstioRouter
from kubectl_canary.objects.routers.kubernetes import KubernetesRouter
from kubectl_canary.resources import ResourceClient

_ROUTERS: dict[str, Callable[[ResourceClient], Router]] = {
    "istio": IstioRouter,
    "gatewayapi": GatewayAPIRouter,
    "kubernetes": KubernetesRouter,
}


class UnknownProviderError(ValueError):
    pass


def router_names() -> tuple[str, ...]:
    return tuple(_ROUTERS)


def router_for(provider_name: str, client: ResourceClient) -> Router:
    factory = _ROUTERS.get(provider_name)
    if factory is None:
        known = ", ".join(_ROUTERS)
        raise UnknownProviderError(f"unknown provider {provider_name!r}; known: {known}")
    return factory(client)
