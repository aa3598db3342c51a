"""The bundle's part about each Canary: the Canary itself, the objects the agent generated for it,
the objects it references, and the Events about any of them.

Layout: `canaries/<ns>/<name>/canary.yaml`, `.../objects/<ns>/<kind>/<name>.yaml` (the
namespace is `_cluster` for a cluster-scoped object) and `.../events.yaml`.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from kubectl_canary.cli.report_bundle import Bundle, Obj
from kubectl_canary.kube import Kube
from kubectl_canary.resources import KubeError

if TYPE_CHECKING:
    from kubectl_canary.api.model import Canary

Ref = tuple[str, str, str, str]  # apiVersion, kind, namespace, name


def related_objects(kube: Kube, canary: Canary, agent_namespace: str) -> list[Ref]:
    """What the agent generated for the Canary (its apex Service and routing object included)
    and what the Canary references, the templates' Secrets included."""
    from kubectl_canary.cli.doctor_checks.references import direct_references, secret_reference
    from kubectl_canary.cli.reads import GATEWAY_API, ISTIO_API
    from kubectl_canary.objects.handback import generated_objects
    from kubectl_canary.objects.names import service_name

    ns, apex = canary.namespace, service_name(canary)
    refs: list[Ref] = [(av, kind, ns, name) for av, kind, name in generated_objects(kube, canary)]
    refs.append(("v1", "Service", ns, apex))
    if canary.spec.provider == "istio":
        refs.append((ISTIO_API, "VirtualService", ns, apex))
    elif canary.spec.provider == "gatewayapi":
        refs.append((GATEWAY_API, "HTTPRoute", ns, apex))
    for ref in direct_references(canary):
        refs.append((ref.api_version, ref.kind, ref.namespace, ref.name))
        if ref.kind.endswith("MetricTemplate"):
            template = kube.get(ref.api_version, ref.kind, ref.namespace, ref.name)
            secret = secret_reference(template or {}, ref.field, agent_namespace)
            if secret is not None:
                refs.append(("v1", "Secret", secret.namespace, secret.name))
    return list(dict.fromkeys(refs))  # in order, once each


class EventCache:
    """Events per namespace, listed once however many canaries live there."""

    def __init__(self, kube: Kube) -> None:
        self._kube = kube
        self._by_namespace: dict[str, list[Obj]] = {}

    def about(self, namespace: str, objects: set[tuple[str, str]]) -> list[Obj]:
        """The Events of `namespace` whose involvedObject is one of (kind, name), oldest first."""
        if namespace not in self._by_namespace:
            self._by_namespace[namespace] = self._kube.list("v1", "Event", namespace)[0]
        found = [e for e in self._by_namespace[namespace] if _involved(e) in objects]
        return sorted(found, key=_event_time)


def _involved(event: Obj) -> tuple[str, str]:
    involved = event.get("involvedObject") or {}
    return str(involved.get("kind", "")), str(involved.get("name", ""))


def _event_time(event: Obj) -> tuple[str, str]:
    when = (
        event.get("lastTimestamp")
        or event.get("eventTime")
        or (event.get("metadata") or {}).get("creationTimestamp")
        or ""
    )
    return str(when), str((event.get("metadata") or {}).get("name", ""))


def collect_canary(
    bundle: Bundle,
    kube: Kube,
    obj: Obj,
    events: EventCache,
    default_provider: str,
    agent_namespace: str,
) -> None:
    from kubectl_canary.api.errors import InvalidResource
    from kubectl_canary.api.parse import parse_canary

    meta = obj["metadata"]
    ns, name = meta["namespace"], meta["name"]
    home = f"canaries/{ns}/{name}"
    bundle.add_object(f"{home}/canary.yaml", obj, "the Canary")
    involved = {("Canary", name)}
    try:
        canary = parse_canary(obj, default_provider=default_provider)
    except InvalidResource as e:
        problems = "; ".join(str(p) for p in e.problems)
        bundle.missing(f"{home}/objects", f"the Canary is invalid ({problems})")
        canary = None
    if canary is not None:
        involved |= _collect_related(bundle, kube, canary, agent_namespace, home)
    about = bundle.attempt(f"{home}/events.yaml", lambda: events.about(ns, involved))
    if about is not None:
        what = f"{len(about)} Events about the Canary and its objects"
        bundle.add_objects(f"{home}/events.yaml", about, what)


def _collect_related(
    bundle: Bundle, kube: Kube, canary: Canary, agent_namespace: str, home: str
) -> set[tuple[str, str]]:
    """Add the Canary's related objects; return (kind, name) of those in its namespace."""
    refs = bundle.attempt(f"{home}/objects", lambda: related_objects(kube, canary, agent_namespace))
    here = set()
    for api_version, kind, ns, name in refs or []:
        where = f"{home}/objects/{ns or '_cluster'}/{kind.lower()}/{name}.yaml"
        try:
            found = kube.get(api_version, kind, ns, name)
        except KubeError as e:  # also a type the server does not serve (no Gateway API)
            bundle.missing(where, str(e))
            continue
        if found is None:
            bundle.missing(where, "not found")
            continue
        bundle.add_object(where, found, f"{kind} {ns + '/' if ns else ''}{name}")
        if ns == canary.namespace:
            here.add((kind, name))
    return here
