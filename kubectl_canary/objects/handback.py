"""Handing an app back to its own Deployment: the one implementation behind both the agent's
hand-back on deletion (every Canary, whatever revertOnDeletion says) and the plugin's
`kubectl canary offboard` and `uninstall --force` (docs/release-semantics.md).

Each step is idempotent and decided on what the cluster holds, so either caller can repeat it
after a failure; waiting between steps is the caller's (the agent's core requeues, offboard
polls), in the order that keeps the apex Service serving:

1. `restore_target`: the primary's template (its last promoted revision) back onto the target
   and, when it was scaled to zero between releases, the primary's replica count;
   then wait until the target is ready;
2. `release_apex_service` (objects/apex.py): the apex Service selects the target's pods;
   then wait until `apex_serves_target`;
3. `release_routing`: the routing object and its companions given back (the router's
   `finalize`);
4. `release_target`: our ownerReference (if any) off the target, so letting go of the Canary
   can never garbage-collect the app itself;
5. the generated objects go: owned by the Canary, garbage collection removes them once it is
   deleted (the agent's way: it has no right to delete Deployments or Services), or
   `remove_generated` deletes them first (offboard, which waits until they are gone).
Only objects with this Canary's marks are touched (`metadata.is_ours`, `is_owned_by`).
"""

from __future__ import annotations

from kubectl_canary.api.model import Canary
from kubectl_canary.objects.builders import HPA_API, handed_back_replicas
from kubectl_canary.objects.hashes import tracked_config_refs
from kubectl_canary.objects.metadata import is_ours, is_owned_by
from kubectl_canary.objects.names import (
    is_config_copy_name,
    primary_hpa_name,
    primary_name,
    service_name,
    service_names,
)
from kubectl_canary.objects.primary import apply_target_restore
from kubectl_canary.objects.routers import router_for
from kubectl_canary.objects.routers.gatewayapi import API_VERSION as GATEWAY_API
from kubectl_canary.objects.routers.istio import API_VERSION as ISTIO_API
from kubectl_canary.objects.writer import WRITE_ATTEMPTS, handed_over
from kubectl_canary.resources import ConflictError, Obj, ResourceClient, ResourceTypeMissingError

# (apiVersion, kind, name) of one object.
Ref = tuple[str, str, str]


def restore_target(client: ResourceClient, canary: Canary) -> Obj | None:
    """Step 1 in one write: the primary's template, and its replica count for a target at
    zero (see `restore_replicas`). None when the target is gone (nothing to hand back to)."""
    ns = canary.namespace
    if client.get("apps/v1", "Deployment", ns, canary.spec.target_ref.name) is None:
        return None
    if client.get("apps/v1", "Deployment", ns, primary_name(canary)) is None:
        return restore_replicas(client, canary)
    return apply_target_restore(client, canary, scale_up=True)


def restore_replicas(client: ResourceClient, canary: Canary) -> Obj | None:
    """A target scaled to zero (between releases) gets the primary's replica count, at least
    one; a target with replicas keeps them (its HPA, or what the release gave it). A merge
    patch of one field: it races nothing that matters with the controller's status writes."""
    ns, name = canary.namespace, canary.spec.target_ref.name
    target = client.get("apps/v1", "Deployment", ns, name)
    if target is None or int((target.get("spec") or {}).get("replicas") or 0) > 0:
        return target
    primary = client.get("apps/v1", "Deployment", ns, primary_name(canary))
    wanted = handed_back_replicas(primary)
    return client.patch_merge("apps/v1", "Deployment", ns, name, {"spec": {"replicas": wanted}})


def routing_object(canary: Canary) -> Ref | None:
    """The routing object besides the apex Service; None for the kubernetes provider (the apex
    Service is its routing object)."""
    if canary.spec.provider == "istio":
        return ISTIO_API, "VirtualService", service_name(canary)
    if canary.spec.provider == "gatewayapi":
        return GATEWAY_API, "HTTPRoute", service_name(canary)
    return None


def release_routing(client: ResourceClient, canary: Canary) -> None:
    """Step 3: restore a taken-over routing object; rewrite one we created that serves an
    ingress gateway to send everything to the apex Service, and hand it over; delete the
    others we created (a mesh-only VirtualService, the DestinationRules)."""
    router_for(canary.spec.provider, client).finalize(canary)


def routing_released(client: ResourceClient, canary: Canary) -> bool:
    """Whether step 3 has nothing left to do."""
    ref = routing_object(canary)
    if ref is None:
        return True
    return not is_ours(client.get_live(ref[0], ref[1], canary.namespace, ref[2]), canary)


def release_target(client: ResourceClient, canary: Canary) -> None:
    """Step 4: drop an ownerReference to this Canary from the target (we never set one; a user
    or a tool may have): deleting the Canary must never garbage-collect the app itself."""
    ns, name = canary.namespace, canary.spec.target_ref.name
    for _ in range(WRITE_ATTEMPTS):
        target = client.get_live("apps/v1", "Deployment", ns, name)
        if target is None or not is_owned_by(target, canary):
            return
        freed = handed_over(target, target.get("spec") or {}, canary)
        try:
            client.replace(freed)
            return
        except ConflictError:
            continue
    raise ConflictError(f"Deployment {ns}/{name}: freeing it kept conflicting", 409)


def generated_objects(client: ResourceClient, canary: Canary) -> list[Ref]:
    """Everything generated for the Canary, the primary's config copies first (found through
    its template: once it is gone, nothing names them any more)."""
    _, primary_svc, canary_svc = service_names(canary)
    primary = client.get("apps/v1", "Deployment", canary.namespace, primary_name(canary))
    copies = [
        ("v1", kind, name)
        for kind, name in (tracked_config_refs(primary) if primary is not None else [])
        if is_config_copy_name(name)
    ]
    refs: list[Ref] = [
        *copies,
        ("apps/v1", "Deployment", primary_name(canary)),
        ("v1", "Service", primary_svc),
        ("v1", "Service", canary_svc),
    ]
    if canary.spec.provider == "istio":
        refs += [
            (ISTIO_API, "DestinationRule", primary_svc),
            (ISTIO_API, "DestinationRule", canary_svc),
        ]
    if canary.spec.autoscaler_ref is not None:
        hpa = primary_hpa_name(canary.spec.autoscaler_ref.name)
        refs.append((HPA_API, "HorizontalPodAutoscaler", hpa))
    return refs


def generated_left(client: ResourceClient, canary: Canary) -> list[Ref]:
    """The generated objects that still exist and are owned by this Canary (what garbage
    collection would remove with it)."""
    left = []
    for api_version, kind, name in generated_objects(client, canary):
        try:
            obj = client.get_live(api_version, kind, canary.namespace, name)
        except ResourceTypeMissingError:  # e.g. the mesh CRD is not installed
            continue
        if obj is not None and is_owned_by(obj, canary):
            left.append((api_version, kind, name))
    return left


def remove_generated(client: ResourceClient, canary: Canary) -> list[Ref]:
    """Step 5 done at once, before the Canary goes: delete what `generated_left` finds, each
    guarded by the resourceVersion it was judged on. Returns what was deleted."""
    deleted = []
    for api_version, kind, name in generated_left(client, canary):
        live = client.get_live(api_version, kind, canary.namespace, name)
        if live is None or not is_owned_by(live, canary):
            continue
        version = live["metadata"].get("resourceVersion")
        try:
            gone = client.delete(
                api_version, kind, canary.namespace, name, resource_version=version
            )
        except ConflictError:
            continue  # changed meanwhile: judged again on the next call
        if gone:
            deleted.append((api_version, kind, name))
    return deleted
