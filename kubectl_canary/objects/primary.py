"""Writing the primary side of a Canary: Initialise (config copies, primary Deployment,
Services, HPA copy) and Promote (target's template onto the primary), plus the inverse copy
of a template back onto the target. Everything goes through `writer.ensure` or a replace
guarded by resourceVersion."""

from __future__ import annotations

from collections.abc import Callable, Collection

from kubectl_canary.api.model import Canary
from kubectl_canary.objects.builders import (
    HPA_API,
    primary_config_copy,
    primary_deployment,
    primary_hpa,
    promote_template,
    restored_target,
    services,
)
from kubectl_canary.objects.hashes import tracked_config_refs
from kubectl_canary.objects.metadata import managed_by
from kubectl_canary.objects.names import config_copy_name, primary_name, service_name
from kubectl_canary.objects.writer import WRITE_ATTEMPTS, OwnershipError, ensure, release
from kubectl_canary.resources import ConflictError, Obj, ResourceClient

# What the primary runs is written at creation only; afterwards it changes by promotion alone
# (and replicas by the primary's HPA). Initialise also runs on a Canary spec change or a repair
# mid-release, when the target holds an unanalysed (or failed) revision: rewriting the template
# from the target then would put that revision in front of every user.
PRIMARY_CREATE_ONLY = (
    "replicas",
    "template",
    "strategy",
    "minReadySeconds",
    "revisionHistoryLimit",
    "progressDeadlineSeconds",
)


def initialize(
    client: ResourceClient,
    canary: Canary,
    target: Obj,
    routing: bool = True,
    no_copy: Collection[str] = (),
) -> None:
    """Create/update the primary Deployment and the Services (not the routing object, nor
    the HPA copy: `ensure_primary_hpa`). The apex Service, the name users call, only with
    `routing`: onboarding points it at the primary only once the primary serves."""
    # The copies first: the primary's template references them.
    write_config_copies(client, canary, target, False, no_copy)
    primary = primary_deployment(target, canary, no_copy=no_copy)
    ensure(client, primary, create_only=PRIMARY_CREATE_ONLY)
    apex = service_name(canary)
    for svc in services(target, canary):
        # Only the apex Service, the name users call, may be a user's to take over.
        adopt = svc["metadata"]["name"] == apex
        if routing or not adopt:
            ensure(client, svc, detect_drift=True, adopt=adopt)


def promote(
    client: ResourceClient,
    canary: Canary,
    target: Obj,
    with_replicas: bool,
    no_copy: Collection[str] = (),
) -> Obj:
    """Copy the target's template (and replicas `with_replicas`) to the primary, the promoted
    configs' copies first: the template references them."""
    write_config_copies(client, canary, target, True, no_copy)
    return apply_promotion(client, canary, with_replicas)


def apply_promotion(client: ResourceClient, canary: Canary, with_replicas: bool) -> Obj:
    """Copy the target's template to the primary: read both, replace, retry on conflict."""
    return _copy_template(
        client,
        canary,
        into=primary_name(canary),
        build=lambda t, p: promote_template(p, t, with_replicas),
    )


def apply_target_restore(client: ResourceClient, canary: Canary, scale_up: bool = False) -> Obj:
    """Copy the primary's template back onto the target (revert of an unpromoted revision);
    `scale_up` also gives a target at 0 replicas the primary's count, in the same write."""
    return _copy_template(
        client,
        canary,
        into=canary.spec.target_ref.name,
        build=lambda t, p: restored_target(t, p, scale_up),
    )


def _copy_template(
    client: ResourceClient, canary: Canary, into: str, build: Callable[[Obj, Obj], Obj]
) -> Obj:
    """Read target and primary, build the new version of `into`, replace it guarded by its
    resourceVersion; on conflict read both again. No write when nothing changes."""
    namespace = canary.namespace
    for _ in range(WRITE_ATTEMPTS):
        target = _require(client, "apps/v1", "Deployment", namespace, canary.spec.target_ref.name)
        primary = _require(client, "apps/v1", "Deployment", namespace, primary_name(canary))
        live = primary if into == primary_name(canary) else target
        desired = build(target, primary)
        if desired == live:
            return live
        try:
            return client.replace(desired)
        except ConflictError:
            continue
    raise ConflictError(f"writing Deployment {namespace}/{into}: kept conflicting", 409)


def _require(client: ResourceClient, api_version: str, kind: str, ns: str, name: str) -> Obj:
    obj = client.get(api_version, kind, ns, name)
    if obj is None:
        raise LookupError(f"{kind} {ns}/{name} not found")
    return obj


def write_config_copies(
    client: ResourceClient,
    canary: Canary,
    target: Obj,
    update: bool,
    no_copy: Collection[str] = (),
) -> None:
    """Write the primary's copies of the configs the target references, before the primary
    Deployment that references them is written.

    `update` (promotion): create or update each copy with the config's current data, and
    delete our copy of a config that no longer exists, so the primary sees what the target
    saw (an optional config that is absent). Without it (Initialise, also run on a spec
    change or a repair mid-release), only missing copies are created: copying a config's new
    data there would hand it to the primary's pods without analysis. A copy's name that
    exists and is not this Canary's is never taken over: that raises OwnershipError.
    """
    for kind, name in tracked_config_refs(target):
        copy_name = config_copy_name(name)
        live = client.get("v1", kind, canary.namespace, copy_name)
        if live is not None and managed_by(live) != canary.name:
            raise OwnershipError(
                f"{kind} {canary.namespace}/{copy_name} exists and is not managed by Canary "
                f"{canary.name}; it would be overwritten by the primary's copy of {name}"
            )
        if live is not None and not update:
            continue
        source = client.get("v1", kind, canary.namespace, name)
        if source is None:
            if live is not None:
                release(client, "v1", kind, canary.namespace, copy_name, canary)
            continue
        ensure(client, primary_config_copy(source, canary, no_copy))


def ensure_primary_hpa(client: ResourceClient, canary: Canary) -> Obj | None:
    """Create or update the primary's HPA copy from the target's HPA; None without an HPA."""
    ref = canary.spec.autoscaler_ref
    if ref is None:
        return None
    hpa = client.get(HPA_API, "HorizontalPodAutoscaler", canary.namespace, ref.name)
    if hpa is None:
        return None
    # Never a user's HPA that happens to have our name: ensure refuses what is not ours.
    return ensure(client, primary_hpa(canary, hpa))
