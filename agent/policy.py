"""What a tenant's Canary may ask of the agent, judged before anything is done for it.

A Canary's author controls URLs (metricsServer, webhooks, its templates' addresses) and the
routing fields that go straight into the mesh (Istio gateways, hosts, trafficPolicy; Gateway
API parentRefs). The operator's policy (agent flags, docs/security.md) says what is allowed;
a Canary outside it gets a Valid=False condition naming the field, and nothing is written for it.

Routing, by default:
- gateways: Istio's `mesh`, and gateways of the Canary's own namespace; another namespace's
  gateway (a shared public one) only when `--allow-gateway NS/NAME` or `NS/*` lists it. The same
  rule holds for Gateway API `gatewayRefs`;
- hosts: no wildcard (`*`, `*.example.com`: claiming every host) unless
  `--allow-wildcard-hosts`, and no cluster-local name of another namespace's Service
  (`svc.other.svc.cluster.local`: taking over its traffic);
- trafficPolicy: no `tls.mode: DISABLE` (turning mesh TLS off) unless `--allow-tls-disable`.

URLs: the egress policy's precheck (form, literal addresses, the allow-list); addresses behind
names are judged again at call time, when they are resolved.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any

from kubectl_canary.api.model import Canary, MetricTemplate
from kubectl_canary.egress.policy import EgressError, EgressPolicy


@dataclass(frozen=True)
class RoutingPolicy:
    gateways: tuple[str, ...] = ()  # "NS/NAME" or "NS/*"
    wildcard_hosts: bool = False
    tls_disable: bool = False

    @staticmethod
    def build(
        gateways: Iterable[str], wildcard_hosts: bool = False, tls_disable: bool = False
    ) -> RoutingPolicy:
        entries = tuple(gateways)
        for entry in entries:
            ns, _, name = entry.partition("/")
            if not ns or not name or "/" in name:
                raise ValueError(
                    f"--allow-gateway {entry!r}: expected NAMESPACE/NAME or NAMESPACE/*"
                )
        return RoutingPolicy(entries, wildcard_hosts, tls_disable)

    def gateway_allowed(self, namespace: str, name: str) -> bool:
        return f"{namespace}/{name}" in self.gateways or f"{namespace}/*" in self.gateways


@dataclass(frozen=True)
class TenantPolicy:
    egress: EgressPolicy = field(default_factory=EgressPolicy)
    routing: RoutingPolicy = field(default_factory=RoutingPolicy)


def _istio_gateway(entry: str, own: str) -> tuple[str, str]:
    """(namespace, name) of an Istio gateway reference: `NS/NAME`, `NAME` (own namespace) or
    the older `NAME.NS.svc.cluster.local` form."""
    if "/" in entry:
        ns, _, name = entry.partition("/")
        return ns, name
    if "." in entry:
        name, ns = entry.split(".")[:2]
        return ns, name
    return own, entry


def routing_problems(canary: Canary, policy: RoutingPolicy) -> Iterator[str]:
    own, service = canary.namespace, canary.spec.service
    for entry in service.gateways:
        if entry == "mesh":
            continue
        ns, name = _istio_gateway(entry, own)
        if ns != own and not policy.gateway_allowed(ns, name):
            yield (
                f"spec.service.gateways: {ns}/{name} is another namespace's gateway; the "
                "operator allows it with `--allow-gateway`"
            )
    for ref in service.gateway_refs:
        ns = ref.namespace or own
        if ns != own and not policy.gateway_allowed(ns, ref.name):
            yield (
                f"spec.service.gatewayRefs: {ns}/{ref.name} is another namespace's Gateway; the "
                "operator allows it with `--allow-gateway`"
            )
    for host in service.hosts:
        if "*" in host and not policy.wildcard_hosts:
            yield (
                f"spec.service.hosts: wildcard host {host!r} (*) claims hosts of others; the "
                "operator allows it with `--allow-wildcard-hosts`"
            )
        parts = host.lower().split(".")
        if len(parts) >= 3 and parts[2] == "svc" and parts[1] != own:
            yield f"spec.service.hosts: {host!r} is a Service of namespace {parts[1]}"
    for mode in _tls_modes(service.traffic_policy):
        if mode.upper() == "DISABLE" and not policy.tls_disable:
            yield (
                "spec.service.trafficPolicy: tls mode DISABLE turns mesh TLS off; the operator "
                "allows it with `--allow-tls-disable`"
            )


def _tls_modes(traffic_policy: dict[str, Any] | None) -> Iterator[str]:
    if not isinstance(traffic_policy, dict):
        return
    levels = [traffic_policy, *(traffic_policy.get("portLevelSettings") or [])]
    for level in levels:
        tls = level.get("tls") if isinstance(level, dict) else None
        if isinstance(tls, dict) and isinstance(tls.get("mode"), str):
            yield tls["mode"]


def egress_problems(
    canary: Canary,
    templates: Mapping[str, MetricTemplate],
    policy: EgressPolicy,
    default_server: str,
) -> Iterator[str]:
    """`templates`: the MetricTemplate of each templated metric, by metric name."""
    urls: list[tuple[str, str, bool]] = []
    uses_server = False
    for metric in canary.spec.analysis.metrics:
        template = templates.get(metric.name)
        if template is not None and template.provider_address:
            where = f"{template.kind} {template.name}: provider.address"
            urls.append((where, template.provider_address, False))
        else:
            uses_server = True
    if uses_server and canary.spec.metrics_server:
        urls.append(("spec.metricsServer", canary.spec.metrics_server, False))
    elif uses_server and default_server:
        urls.append(("the agent's --metrics-server", default_server, False))
    for hook in canary.spec.analysis.webhooks:
        urls.append((f"webhook {hook.name}: url", hook.url, True))
    for where, url, allow_query in urls:
        try:
            policy.precheck(url, allow_query=allow_query)
        except EgressError as exc:
            yield f"{where}: {exc}"


def spec_problem(
    canary: Canary,
    templates: Mapping[str, MetricTemplate],
    policy: TenantPolicy,
    default_server: str,
) -> str | None:
    """Everything the operator's policy refuses in this Canary, or None."""
    found = [
        *routing_problems(canary, policy.routing),
        *egress_problems(canary, templates, policy.egress, default_server),
    ]
    return "; ".join(found) if found else None
