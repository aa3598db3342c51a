"""The objects the agent generates for a Canary, and the one careful way it writes them.

Builders are pure functions of the target Deployment and the Canary (DESIGN §4 Initialise /
Promote): the primary Deployment, the three Services, the template checksum that tells a new
revision. `ensure` / `release` are the write side shared with the routers:

- `ensure` creates an object or updates it only when what we manage changed. What we last wrote
  is remembered as a hash in APPLIED_HASH_ANNOTATION (like `kubectl apply`'s last-applied): the
  API server adds defaults and canonicalises values (quantities, CRD defaults), so comparing our
  desired object with the live one field by field would see a difference on every tick.
  Updates are full replaces guarded by resourceVersion, retried from a fresh read on conflict.
- Taking over an object that exists but is not ours (no MANAGED_BY_LABEL) saves its spec in
  ORIGINAL_SPEC_ANNOTATION first and adds no ownerReference, so deleting the Canary never
  garbage-collects a user's object; `release` restores that spec, or deletes what we created.
"""

from __future__ import annotations

import copy
import hashlib
import json
from collections.abc import Callable, Collection, Mapping
from typing import Any

from kubectl_canary.api.config_refs import (
    handed_back_template,
    referenced_configs,
    to_primary_copies,
)
from kubectl_canary.api.model import (
    API_VERSION,
    GROUP,
    MANAGED_BY_LABEL,
    ORIGINAL_SPEC_ANNOTATION,
    SHARED_POD_LABEL,
    Canary,
    ObjectMetadata,
)
from kubectl_canary.objects.gitops import is_tracking, untracked
from kubectl_canary.resources import ConflictError, Obj, ResourceClient

# Hash of the managed content we last wrote (see module docstring).
APPLIED_HASH_ANNOTATION = f"{GROUP}/applied-hash"
PRIMARY_SUFFIX = "-primary"
CANARY_SUFFIX = "-canary"
# Preferred selector labels, in order, to derive the primary's selector from.
_SELECTOR_KEYS = ("app", "app.kubernetes.io/name")
_COPIED_ANNOTATIONS_SKIP = (
    "deployment.kubernetes.io/revision",
    "kubectl.kubernetes.io/last-applied-configuration",
)
# Spec fields the API server assigns to a Service; a replace must carry them over.
_SERVER_ASSIGNED_SPEC = {
    "Service": ("clusterIP", "clusterIPs", "ipFamilies", "ipFamilyPolicy", "healthCheckNodePort")
}
# Top-level content of the kinds without a spec that `ensure` writes (the ConfigMap/Secret
# copies): managed like a spec.
_DATA_FIELDS = ("data", "binaryData", "type", "immutable")
_WRITE_ATTEMPTS = 5


class OwnershipError(RuntimeError):
    """The object is managed by another Canary: two releases must not fight over it."""


# ----- names -----


def service_name(canary: Canary) -> str:
    """The apex Service (and routing object) name: service.name, else the target's name."""
    return canary.spec.service.name or canary.spec.target_ref.name


def primary_name(canary: Canary) -> str:
    return canary.spec.target_ref.name + PRIMARY_SUFFIX


def service_names(canary: Canary) -> tuple[str, str, str]:
    """(apex, primary, canary) Service names."""
    apex = service_name(canary)
    return apex, apex + PRIMARY_SUFFIX, apex + CANARY_SUFFIX


# The API server's limits for what we derive from the target (names are DNS subdomains, label
# values at most 63 characters). Checked before anything is written: a name it would reject
# must be a clear Invalid condition, not a 422 on every tick.
LABEL_VALUE_MAX = 63
OBJECT_NAME_MAX = 253


def generated_names_problem(target: Obj, config_refs: Collection[tuple[str, str]]) -> str | None:
    """Why the objects generated for `target` (and the primary's copies of `config_refs`)
    would be rejected by the API server; None when they would not."""
    try:
        key, value = selector_label(target)
    except ValueError as exc:
        return str(exc)
    primary_value = value + PRIMARY_SUFFIX
    if len(primary_value) > LABEL_VALUE_MAX:
        keep = LABEL_VALUE_MAX - len(PRIMARY_SUFFIX)
        return (
            f"the primary's selector label {key}={primary_value} would have "
            f"{len(primary_value)} characters, more than the {LABEL_VALUE_MAX} Kubernetes "
            f"allows: shorten the value of the target's {key} label to at most {keep}"
        )
    for kind, name in config_refs:
        copy = name + PRIMARY_SUFFIX
        if len(copy) > OBJECT_NAME_MAX:
            return (
                f"the primary's copy of {kind} {name} would be named with {len(copy)} "
                f"characters, more than {OBJECT_NAME_MAX}: shorten the {kind}'s name"
            )
    return None


# ----- selectors -----


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
    """Selector of the primary's pods: the target's selector label, value suffixed -primary."""
    key, value = selector_label(target)
    return {key: value + PRIMARY_SUFFIX}


def target_selector(target: Obj) -> dict[str, str]:
    """Selector of the target's (canary's) pods, reduced to the one label we derive from."""
    key, value = selector_label(target)
    return {key: value}


def shared_selector(target: Obj) -> dict[str, str]:
    """Selector matching both pod sets (see SHARED_POD_LABEL)."""
    return {SHARED_POD_LABEL: selector_label(target)[1]}


# ----- metadata -----


def owner_reference(canary: Canary) -> Obj:
    if not canary.uid:
        raise ValueError(f"Canary {canary.key} has no uid; read it from the API server first")
    return {
        "apiVersion": API_VERSION,
        "kind": "Canary",
        "name": canary.name,
        "uid": canary.uid,
        "controller": True,
        "blockOwnerDeletion": True,
    }


def generated_metadata(
    canary: Canary,
    name: str,
    extra: ObjectMetadata | None = None,
    labels: Mapping[str, str] | None = None,
) -> Obj:
    """Metadata of an object we create: managed label, ownerReference, optional user metadata."""
    all_labels = dict(labels or {})
    annotations: dict[str, str] = {}
    if extra is not None:
        all_labels.update(extra.labels)
        annotations.update(extra.annotations)
    all_labels[MANAGED_BY_LABEL] = canary.name
    meta: Obj = {
        "name": name,
        "namespace": canary.namespace,
        "labels": all_labels,
        "ownerReferences": [owner_reference(canary)],
    }
    if annotations:
        meta["annotations"] = annotations
    return meta


# ----- the primary Deployment -----


def _primary_template(template: Obj, target: Obj) -> Obj:
    """The target's pod template with the selector label rewritten to the primary's value and
    its ConfigMap/Secret references pointing at the `-primary` copies (`config_copies`)."""
    key, value = selector_label(target)
    result = to_primary_copies(template)
    labels = result.setdefault("metadata", {}).setdefault("labels", {})
    labels[key] = value + PRIMARY_SUFFIX
    labels[SHARED_POD_LABEL] = value
    return result


def primary_deployment(
    target: Obj,
    canary: Canary,
    replicas: int | None = None,
    no_copy: Collection[str] = (),
) -> Obj:
    """A copy of the target Deployment named `<target>-primary`, selecting its own pods.

    `replicas` overrides the count (the HPA's minimum when there is one); otherwise the target's,
    or 1 when the target is scaled to zero, as Flagger does (never create an empty primary).
    Write it with `ensure(client, obj, create_only=("replicas",))`: once created, the primary's
    replica count belongs to its HPA or to promotion, not to every tick. The target's labels
    and annotations are copied except GitOps/Helm tracking keys (and `no_copy`), so no such
    tool takes the primary for its own and prunes it.
    """
    spec = copy.deepcopy(target["spec"])
    spec["selector"] = {"matchLabels": primary_selector(target)}
    spec["template"] = _primary_template(target["spec"]["template"], target)
    target_replicas = int(target["spec"].get("replicas") or 0)
    spec["replicas"] = replicas if replicas is not None else max(target_replicas, 1)
    source = target.get("metadata", {})
    labels = untracked(source.get("labels") or {}, no_copy)
    meta = generated_metadata(canary, primary_name(canary), labels=labels)
    annotations = {
        k: v
        for k, v in untracked(source.get("annotations") or {}, no_copy).items()
        if k not in _COPIED_ANNOTATIONS_SKIP and not k.startswith(GROUP + "/")
    }
    if annotations:
        meta["annotations"] = annotations
    return {"apiVersion": "apps/v1", "kind": "Deployment", "metadata": meta, "spec": spec}


def promote_template(primary: Obj, target: Obj, with_replicas: bool) -> Obj:
    """The live primary with the target's pod template (and rollout settings) copied in.

    Replicas are copied only `with_replicas` (no HPA) and when the target has some: an HPA, or
    the primary's own count, decides otherwise. The result keeps the primary's
    resourceVersion, so `client.replace` of it is guarded; see `apply_promotion`.
    """
    result = copy.deepcopy(primary)
    spec = result["spec"]
    source = target["spec"]
    spec["template"] = _primary_template(source["template"], target)
    for key in ("strategy", "minReadySeconds", "revisionHistoryLimit", "progressDeadlineSeconds"):
        if key in source:
            spec[key] = copy.deepcopy(source[key])
    if with_replicas and int(source.get("replicas") or 0) > 0:
        spec["replicas"] = int(source["replicas"])
    return result


def restored_target(target: Obj, primary: Obj) -> Obj:
    """The live target with the primary's pod template (its last promoted revision) copied back:
    the inverse of `_primary_template`, references to the `-primary` config copies included.
    The shared pod label stays only if the target carries it (the kubernetes router put it
    there). Keeps the target's resourceVersion."""
    result = copy.deepcopy(target)
    result["spec"]["template"] = handed_back_template(primary, target)
    return result


def apply_promotion(client: ResourceClient, canary: Canary, with_replicas: bool) -> Obj:
    """Copy the target's template to the primary: read both, replace, retry on conflict."""
    return _copy_template(
        client,
        canary,
        into=primary_name(canary),
        build=lambda t, p: promote_template(p, t, with_replicas),
    )


def apply_target_restore(client: ResourceClient, canary: Canary) -> Obj:
    """Copy the primary's template back onto the target (revert of an unpromoted revision)."""
    return _copy_template(
        client, canary, into=canary.spec.target_ref.name, build=lambda t, p: restored_target(t, p)
    )


def _copy_template(
    client: ResourceClient, canary: Canary, into: str, build: Callable[[Obj, Obj], Obj]
) -> Obj:
    """Read target and primary, build the new version of `into`, replace it guarded by its
    resourceVersion; on conflict read both again. No write when nothing changes."""
    namespace = canary.namespace
    for _ in range(_WRITE_ATTEMPTS):
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


# ----- the primary's ConfigMap/Secret copies -----


def primary_config_copy(obj: Obj, canary: Canary, no_copy: Collection[str] = ()) -> Obj:
    """A copy of a ConfigMap or Secret named `<name>-primary`, owned by the Canary.

    The primary's pod template references these copies (`_primary_template`), so a change of
    a tracked config reaches the primary's pods only when it is promoted (as Flagger does),
    and a rollback keeps the last promoted data. Same data, binaryData, type (Secrets) and
    immutable flag; the source's labels but its GitOps/Helm tracking ones and `no_copy` (not its
    annotations: kubectl's last-applied would describe another object).
    """
    meta = obj.get("metadata", {})
    name = meta["name"] + PRIMARY_SUFFIX
    labels = untracked(meta.get("labels") or {}, no_copy)
    result: Obj = {
        "apiVersion": "v1",
        "kind": obj["kind"],
        "metadata": generated_metadata(canary, name, labels=labels),
    }
    for key in _DATA_FIELDS:
        if key in obj:
            result[key] = copy.deepcopy(obj[key])
    return result


def write_config_copies(
    client: ResourceClient,
    canary: Canary,
    target: Obj,
    update: bool,
    no_copy: Collection[str] = (),
) -> None:
    """Write the `-primary` copies of the configs the target references, before the primary
    Deployment that references them is written.

    `update` (promotion): create or update each copy with the config's current data, and
    delete our copy of a config that no longer exists, so the primary sees what the target
    saw (an optional config that is absent). Without it (Initialise, also run on a spec
    change or a repair mid-release), only missing copies are created: copying a config's new
    data there would hand it to the primary's pods without analysis. A `<name>-primary` that
    exists and is not this Canary's is never taken over: that raises OwnershipError.
    """
    for kind, name in tracked_config_refs(target):
        copy_name = name + PRIMARY_SUFFIX
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
                release(client, "v1", kind, canary.namespace, copy_name, canary.name)
            continue
        ensure(client, primary_config_copy(source, canary, no_copy))


# ----- Services -----


def _service(canary: Canary, name: str, selector: Mapping[str, str], meta: ObjectMetadata) -> Obj:
    svc = canary.spec.service
    port: Obj = {
        "name": svc.port_name,
        "port": svc.port,
        "targetPort": svc.target_port if svc.target_port is not None else svc.port,
        "protocol": "TCP",
    }
    if svc.app_protocol:
        port["appProtocol"] = svc.app_protocol
    return {
        "apiVersion": "v1",
        "kind": "Service",
        "metadata": generated_metadata(canary, name, meta),
        "spec": {"type": "ClusterIP", "selector": dict(selector), "ports": [port]},
    }


def apex_service(target: Obj, canary: Canary, selector: Mapping[str, str] | None = None) -> Obj:
    """The Service clients call; selects the primary's pods unless `selector` says otherwise."""
    chosen = primary_selector(target) if selector is None else selector
    return _service(canary, service_name(canary), chosen, canary.spec.service.apex)


def primary_service(target: Obj, canary: Canary) -> Obj:
    _, name, _ = service_names(canary)
    return _service(canary, name, primary_selector(target), canary.spec.service.primary)


def canary_service(target: Obj, canary: Canary) -> Obj:
    _, _, name = service_names(canary)
    return _service(canary, name, target_selector(target), canary.spec.service.canary)


def services(target: Obj, canary: Canary) -> list[Obj]:
    """The Services to `ensure(..., detect_drift=True)` on Initialise.

    With the `kubernetes` provider the apex Service IS the routing object: its router creates
    and steers it (its selector moves with the weights), so it is not in this list.
    """
    result = [primary_service(target, canary), canary_service(target, canary)]
    if canary.spec.provider != "kubernetes":
        result.insert(0, apex_service(target, canary))
    return result


# ----- revision checksum -----


def tracked_config_refs(deployment: Obj) -> list[tuple[str, str]]:
    """ConfigMaps and Secrets the pod template references (env, envFrom, volumes), sorted."""
    return referenced_configs(deployment.get("spec", {}).get("template", {}))


def config_key(kind: str, name: str) -> str:
    """Key of a tracked config in the `config_hashes` mapping (and status.trackedConfigs)."""
    return f"{kind}/{name}"


def config_hash(obj: Obj) -> str:
    """Checksum of a ConfigMap's or Secret's content."""
    content = {"data": obj.get("data") or {}, "binaryData": obj.get("binaryData") or {}}
    return _digest(content)


def template_hash(deployment: Obj, config_hashes: Mapping[str, str]) -> str:
    """Stable checksum of the pod template plus the tracked configs' checksums.

    Labels and annotations under our own prefix are left out: the agent adds SHARED_POD_LABEL
    to the target's template itself, and that must not look like a new revision.
    `config_hashes` maps `config_key(kind, name)` to `config_hash(obj)`.
    """
    template = copy.deepcopy(deployment.get("spec", {}).get("template", {}))
    meta = template.get("metadata") or {}
    for key in ("labels", "annotations"):
        values = meta.get(key) or {}
        kept = {k: v for k, v in values.items() if not k.startswith(GROUP + "/")}
        if kept:
            meta[key] = kept
        else:
            meta.pop(key, None)
    return _digest({"template": template, "configs": dict(sorted(config_hashes.items()))})


def _digest(value: Any) -> str:
    raw = json.dumps(value, sort_keys=True, separators=(",", ":")).encode()
    return hashlib.sha256(raw).hexdigest()[:16]


# ----- writing -----


def _meta(obj: Obj) -> Obj:
    meta: Obj = obj.setdefault("metadata", {})
    return meta


def _ids(obj: Obj) -> tuple[str, str, str, str]:
    meta = obj["metadata"]
    return obj["apiVersion"], obj["kind"], meta.get("namespace", ""), meta["name"]


def applied_hash(desired: Obj, create_only: Collection[str] = ()) -> str:
    """Hash of what `ensure` manages in `desired`: spec (minus create-only keys), labels,
    annotations and ownerReferences."""
    spec = {k: v for k, v in (desired.get("spec") or {}).items() if k not in create_only}
    meta = desired.get("metadata", {})
    managed: Obj = {
        "spec": spec,
        "labels": meta.get("labels") or {},
        "annotations": meta.get("annotations") or {},
        "owners": meta.get("ownerReferences") or [],
    }
    data = {k: desired[k] for k in _DATA_FIELDS if k in desired}
    if data:  # only then: the hashes of objects with a spec stay what they were
        managed["data"] = data
    return _digest(managed)


def is_subset(desired: Any, live: Any) -> bool:
    """True when every field of `desired` has the same value in `live` (which may hold more:
    server defaults). Lists must have the same length and match element by element."""
    if isinstance(desired, dict):
        return isinstance(live, dict) and all(
            k in live and is_subset(v, live[k]) for k, v in desired.items()
        )
    if isinstance(desired, list):
        return (
            isinstance(live, list)
            and len(desired) == len(live)
            and all(is_subset(d, x) for d, x in zip(desired, live, strict=True))
        )
    return bool(desired == live)


def ensure(
    client: ResourceClient,
    desired: Obj,
    *,
    create_only: Collection[str] = (),
    detect_drift: bool = False,
    adopt: bool = False,
) -> Obj:
    """Create `desired`, or update the live object when what we manage differs; return it.

    `desired` must carry MANAGED_BY_LABEL (the builders above set it). `create_only` names spec
    keys written at creation only (kept from the live object afterwards). `detect_drift` also
    rewrites when the live spec no longer contains ours (someone edited it): use it for objects
    whose values the server does not canonicalise (Services, routing objects), not Deployments.
    `adopt` takes over an object of the same name that nobody manages (its spec is saved for
    `release`): only for what users call, the apex Service and the routing object. Anything
    else in the way (a user's `<name>-primary` HPA, Deployment, Service) is an OwnershipError.
    """
    owner = desired["metadata"]["labels"][MANAGED_BY_LABEL]
    want = applied_hash(desired, create_only)
    api_version, kind, namespace, name = _ids(desired)
    confirmed = False  # whether `live` comes from the API server rather than the cache
    for _ in range(_WRITE_ATTEMPTS + 1):
        read = client.get_live if confirmed else client.get
        live = read(api_version, kind, namespace, name)
        if live is not None and _in_sync(live, desired, want, owner, create_only, detect_drift):
            return live
        if not confirmed:
            # Every write (and every refusal) is decided on the API server's copy: a cache a
            # moment behind must not make us create, take over or overwrite anything.
            confirmed = True
            continue
        if live is None:
            fresh = copy.deepcopy(desired)
            _meta(fresh).setdefault("annotations", {})[APPLIED_HASH_ANNOTATION] = want
            try:
                return client.create(fresh)
            except ConflictError:  # created meanwhile (AlreadyExists is a 409 too): read again
                continue
        live_owner = (live["metadata"].get("labels") or {}).get(MANAGED_BY_LABEL)
        if live_owner not in (None, owner):
            raise OwnershipError(
                f"{kind} {namespace}/{name} is managed by Canary {live_owner}, not {owner}"
            )
        if live_owner is None and not adopt:
            raise OwnershipError(
                f"{kind} {namespace}/{name} exists and is not managed by kubectl-canary; it is "
                "not taken over: rename or delete it, or let the Canary use another name"
            )
        try:
            return client.replace(_updated(live, desired, want, create_only))
        except ConflictError:
            continue
    raise ConflictError(f"{kind} {namespace}/{name}: writes kept conflicting", 409)


def _in_sync(
    live: Obj, desired: Obj, want: str, owner: str, create_only: Collection[str], drift: bool
) -> bool:
    """Whether `live` is ours and already what `ensure` would write."""
    meta = live["metadata"]
    if (meta.get("labels") or {}).get(MANAGED_BY_LABEL) != owner:
        return False
    if (meta.get("annotations") or {}).get(APPLIED_HASH_ANNOTATION) != want:
        return False
    spec = {k: v for k, v in (desired.get("spec") or {}).items() if k not in create_only}
    return not drift or is_subset(spec, live.get("spec") or {})


def _updated(live: Obj, desired: Obj, want: str, create_only: Collection[str]) -> Obj:
    """The live object with our spec and metadata, keeping what the server or user owns."""
    result = copy.deepcopy(live)
    meta = _meta(result)
    taken_over = (meta.get("labels") or {}).get(MANAGED_BY_LABEL) is None
    keep = tuple(create_only) + _SERVER_ASSIGNED_SPEC.get(result["kind"], ())
    old_spec = live.get("spec") or {}
    spec = copy.deepcopy(desired.get("spec") or {})
    for key in keep:
        if key in old_spec:
            spec[key] = copy.deepcopy(old_spec[key])
    if "spec" in desired or "spec" in live:
        result["spec"] = spec
    for key in _DATA_FIELDS:
        if key in desired:
            result[key] = copy.deepcopy(desired[key])
        elif key in ("data", "binaryData"):
            result.pop(key, None)
    desired_meta = desired["metadata"]
    labels, annotations = meta.get("labels") or {}, meta.get("annotations") or {}
    if not taken_over:
        # Our own object: drop GitOps/Helm tracking keys an older agent copied onto it (from
        # the target), so no such tool prunes it; a taken-over object is the user's.
        labels = _without_stale_tracking(labels, desired_meta.get("labels", {}))
        annotations = _without_stale_tracking(annotations, desired_meta.get("annotations", {}))
    meta["labels"] = {**labels, **desired_meta.get("labels", {})}
    annotations = {**annotations, **desired_meta.get("annotations", {})}
    annotations[APPLIED_HASH_ANNOTATION] = want
    if taken_over:
        # Remember the user's spec for `release`; never adopt their object for GC.
        annotations.setdefault(ORIGINAL_SPEC_ANNOTATION, json.dumps(old_spec, sort_keys=True))
    elif desired_meta.get("ownerReferences"):
        meta["ownerReferences"] = copy.deepcopy(desired_meta["ownerReferences"])
    meta["annotations"] = annotations
    return result


def _without_stale_tracking(live: Mapping[str, str], desired: Mapping[str, str]) -> dict[str, str]:
    return {k: v for k, v in live.items() if k in desired or not is_tracking(k)}


def release(
    client: ResourceClient,
    api_version: str,
    kind: str,
    namespace: str,
    name: str,
    owner: str,
    *,
    keep: Obj | None = None,
) -> None:
    """Give back an object `ensure` wrote for Canary `owner`.

    Taken over: restore the saved spec and drop our marks. Created by us: delete it, or, when
    `keep` is given, replace its spec with `keep` and hand it over (no ownerReference, no marks),
    so deleting the Canary cannot garbage-collect something that still serves traffic.
    Objects we do not manage are left alone.
    """
    for _ in range(_WRITE_ATTEMPTS):
        # Deleted or handed back only as the API server has it, never as a cache remembers it.
        live = client.get_live(api_version, kind, namespace, name)
        if live is None or (live["metadata"].get("labels") or {}).get(MANAGED_BY_LABEL) != owner:
            return
        annotations = live["metadata"].get("annotations") or {}
        original = annotations.get(ORIGINAL_SPEC_ANNOTATION)
        if original is None and keep is None:
            client.delete(api_version, kind, namespace, name)
            return
        spec: Obj = json.loads(original) if original is not None else (keep or {})
        try:
            client.replace(_handed_back(live, spec))
            return
        except ConflictError:
            continue
    raise ConflictError(f"{kind} {namespace}/{name}: release kept conflicting", 409)


def _handed_back(live: Obj, spec: Obj) -> Obj:
    result = copy.deepcopy(live)
    meta = _meta(result)
    new_spec = copy.deepcopy(spec)
    old_spec = live.get("spec") or {}
    for key in _SERVER_ASSIGNED_SPEC.get(result["kind"], ()):
        if key in old_spec and key not in new_spec:
            new_spec[key] = copy.deepcopy(old_spec[key])
    result["spec"] = new_spec
    labels = dict(meta.get("labels") or {})
    labels.pop(MANAGED_BY_LABEL, None)
    meta["labels"] = labels
    annotations = dict(meta.get("annotations") or {})
    annotations.pop(ORIGINAL_SPEC_ANNOTATION, None)
    annotations.pop(APPLIED_HASH_ANNOTATION, None)
    meta["annotations"] = annotations
    meta["ownerReferences"] = [
        ref for ref in meta.get("ownerReferences") or [] if ref.get("apiVersion") != API_VERSION
    ]
    return result


def release_apex_service(client: ResourceClient, canary: Canary, target: Obj) -> None:
    """Revert/offboard: point the apex Service back at the target's pods and hand it over
    (a taken-over Service gets its original spec back)."""
    keep = apex_service(target, canary, target_selector(target))["spec"]
    release(client, "v1", "Service", canary.namespace, service_name(canary), canary.name, keep=keep)


def managed_by(obj: Obj | None) -> str | None:
    """Name of the Canary managing `obj` (MANAGED_BY_LABEL), None when unmanaged or missing."""
    if obj is None:
        return None
    return (obj.get("metadata", {}).get("labels") or {}).get(MANAGED_BY_LABEL)
