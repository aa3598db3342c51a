"""REST verbs on the store: what a request to a resource path does, without HTTP plumbing.

Each function returns the response object (a dict) or raises a `StoreError`; `server.py`
turns both into HTTP responses.
"""

from __future__ import annotations

import base64
import json
from dataclasses import dataclass, field
from typing import Any

import yaml

from . import patch as patches
from . import protobuf
from .errors import BadRequest, Cause, Conflict, Invalid, NotFound, StoreError
from .kinds import ResourceType
from .selectors import SelectorError, label_selector_string, parse_field_selector
from .store import Store

Obj = dict[str, Any]
_YAML_LOADER = getattr(yaml, "CSafeLoader", yaml.SafeLoader)


class UnsupportedMediaType(StoreError):
    reason = "UnsupportedMediaType"
    code = 415


class MethodNotAllowed(StoreError):
    reason = "MethodNotAllowed"
    code = 405


@dataclass
class Target:
    """A parsed resource path: /apis/<group>/<version>/namespaces/<ns>/<plural>/<name>/<sub>."""

    type: ResourceType
    version: str
    namespace: str | None = None
    name: str | None = None
    subresource: str | None = None
    params: dict[str, str] = field(default_factory=dict)

    @property
    def api_version(self) -> str:
        return self.type.api_version(self.version)

    @property
    def dry_run(self) -> bool:
        return self.params.get("dryRun") == "All"

    @property
    def field_validation(self) -> str:
        # Without the parameter a 1.27+ server prunes unknown fields and warns.
        return self.params.get("fieldValidation") or "Warn"


def _with_version(t: Target, obj: Obj) -> Obj:
    if obj.get("apiVersion") == t.api_version:
        return obj
    return {**obj, "apiVersion": t.api_version}


def field_predicate(t: Target) -> Any:
    try:
        return parse_field_selector(t.params.get("fieldSelector"), t.type.key)
    except SelectorError as e:
        raise BadRequest(str(e)) from e


def list_objects(store: Store, t: Target) -> tuple[list[Obj], int]:
    """Everything the request's selectors match, with the list's resourceVersion."""
    try:
        items, rv = store.list_raw(
            t.type,
            t.namespace,
            t.params.get("labelSelector"),
            field_predicate(t),
        )
    except SelectorError as e:
        raise BadRequest(str(e)) from e
    return [_with_version(t, o) for o in items], rv


@dataclass
class Page:
    items: list[Obj]
    resource_version: int
    continue_token: str = ""
    remaining: int = 0


def list_page(store: Store, t: Target) -> Page:
    """`limit`/`continue` paging. A continued list resumes after the last name returned, on
    the current state (a real server serves every page from the first page's snapshot)."""
    items, rv = list_objects(store, t)
    token = t.params.get("continue")
    if token:
        try:
            after = json.loads(base64.urlsafe_b64decode(token.encode()))["after"]
        except (ValueError, KeyError, TypeError) as e:
            raise BadRequest(f"invalid continue token: {e}") from e
        after_key = (after[0], after[1])
        items = [o for o in items if _key(o) > after_key]
    limit = int(t.params.get("limit") or 0)
    if limit <= 0 or len(items) <= limit:
        return Page(items, rv)
    page, rest_items = items[:limit], items[limit:]
    last = _key(page[-1])
    token = base64.urlsafe_b64encode(json.dumps({"after": list(last)}).encode()).decode()
    return Page(page, rv, token, len(rest_items))


def _key(obj: Obj) -> tuple[str, str]:
    meta = obj["metadata"]
    return (meta.get("namespace") or "", meta["name"])


def get(store: Store, t: Target) -> Obj:
    obj = store.get_raw(t.type, t.namespace, t.name or "")
    if t.subresource == "scale":
        return to_scale(t, obj)
    return _with_version(t, obj)


def parse_body(raw: bytes, content_type: str) -> Any:
    if "protobuf" in content_type:
        try:
            return protobuf.decode(raw)
        except protobuf.ProtobufError as e:
            raise UnsupportedMediaType(
                f"the sandbox cannot decode this protobuf body ({e}); send JSON or YAML"
            ) from e
    if "cbor" in content_type:
        raise UnsupportedMediaType(
            "the body of the request was in an unknown format - accepted media types include: "
            "application/json, application/yaml, application/vnd.kubernetes.protobuf"
        )
    try:
        if "yaml" in content_type:
            return yaml.load(raw.decode("utf-8"), Loader=_YAML_LOADER)
        return json.loads(raw or b"null")
    except (ValueError, yaml.YAMLError) as e:
        raise BadRequest(f"error decoding body: {e}") from e


def _check_body_identity(t: Target, body: Any, *, with_name: bool) -> Obj:
    if not isinstance(body, dict):
        raise BadRequest("the request body must be a JSON object")
    meta = body.setdefault("metadata", {})
    if not isinstance(meta, dict):
        raise BadRequest("metadata must be an object")
    if t.type.namespaced and t.namespace:
        if meta.get("namespace") and meta["namespace"] != t.namespace:
            raise BadRequest(
                "the namespace of the provided object does not match the namespace sent on "
                "the request"
            )
        meta["namespace"] = t.namespace
    if with_name and t.name and meta.get("name") and meta["name"] != t.name:
        raise BadRequest("the name of the object does not match the name on the URL")
    if with_name and t.name:
        meta["name"] = t.name
    body.setdefault("apiVersion", t.api_version)
    body.setdefault("kind", t.type.kind)
    if body["kind"] != t.type.kind or body["apiVersion"] != t.api_version:
        raise BadRequest(
            f"the API version in the data ({body['apiVersion']}) does not match the expected "
            f"API version ({t.api_version})"
            if body["apiVersion"] != t.api_version
            else f"the kind in the data ({body['kind']}) does not match the expected kind"
        )
    return body


def create(store: Store, t: Target, body: Any) -> Obj:
    if t.subresource:
        raise MethodNotAllowed(f"POST is not supported on {t.type.plural}/{t.subresource}")
    obj = _check_body_identity(t, body, with_name=False)
    if obj["metadata"].get("resourceVersion"):
        raise BadRequest("resourceVersion should not be set on objects to be created")
    return store.create(obj, field_validation=t.field_validation, dry_run=t.dry_run)


def replace(store: Store, t: Target, body: Any) -> Obj:
    if t.subresource == "scale":
        return _write_scale(store, t, body)
    obj = _check_body_identity(t, body, with_name=True)
    if t.subresource == "status":
        return store.update_status(obj, field_validation=t.field_validation, dry_run=t.dry_run)
    return store.update(obj, field_validation=t.field_validation, dry_run=t.dry_run)


def delete(store: Store, t: Target, options: Obj | None) -> Obj:
    options = options or {}
    if t.dry_run or "All" in (options.get("dryRun") or []):
        return get(store, t)  # what would be deleted; nothing is
    preconditions = options.get("preconditions") or {}
    policy = t.params.get("propagationPolicy") or options.get("propagationPolicy") or "Background"
    if options.get("orphanDependents") is True:
        policy = "Orphan"
    obj, _ = store.delete_returning(
        t.api_version,
        t.type.kind,
        t.namespace,
        t.name or "",
        propagation_policy=policy,
        precondition_uid=preconditions.get("uid"),
        precondition_rv=preconditions.get("resourceVersion"),
    )
    return obj


def delete_collection(store: Store, t: Target) -> Obj:
    items, _ = list_objects(store, t)
    deleted = []
    for obj in [] if t.dry_run else items:
        meta = obj["metadata"]
        try:
            gone, _ = store.delete_returning(
                t.api_version, t.type.kind, meta.get("namespace"), meta["name"]
            )
        except NotFound:
            continue
        deleted.append(gone)
    return {
        "kind": t.type.list_kind,
        "apiVersion": t.api_version,
        "metadata": {"resourceVersion": str(store.resource_version)},
        "items": items if t.dry_run else deleted,
    }


# ---- patch -------------------------------------------------------------------------------


def _apply_patch(t: Target, current: Obj, patch: Any, content_type: str) -> Obj:
    try:
        if content_type.startswith(patches.JSON_PATCH):
            result = patches.json_patch(current, patch)
        elif content_type.startswith(patches.MERGE_PATCH):
            result = patches.merge_patch(current, patch)
        elif content_type.startswith(patches.STRATEGIC_PATCH):
            if t.type.crd_name is not None:
                raise UnsupportedMediaType(
                    f"the body of the request was in an unknown format - accepted media types "
                    f"include: {patches.JSON_PATCH}, {patches.MERGE_PATCH}, {patches.APPLY_PATCH}"
                )
            result = patches.strategic_merge(current, patch)
        elif content_type.startswith(patches.APPLY_PATCH):
            # Server-side apply, approximated: the applied configuration is merged into the
            # live object (strategic rules for built-ins); field ownership is not tracked.
            if t.type.crd_name is not None:
                result = patches.merge_patch(current, patch)
            else:
                result = patches.strategic_merge(current, patch)
        else:
            raise UnsupportedMediaType(f"unsupported patch content type {content_type!r}")
    except patches.PatchError as e:
        # A real server answers a failed JSON patch (including a failed `test`) with 422.
        raise Invalid(str(e)) from e
    if not isinstance(result, dict):
        raise BadRequest("the patch did not produce an object")
    return result


def patch(store: Store, t: Target, raw: bytes, content_type: str) -> tuple[Obj, bool]:
    """Apply a patch; returns (object, created) - only server-side apply creates."""
    body = parse_body(raw, content_type)
    if content_type.startswith(patches.APPLY_PATCH) and isinstance(body, dict):
        body.setdefault("metadata", {})
    for _ in range(10):
        try:
            current = store.get_raw(t.type, t.namespace, t.name or "")
        except NotFound:
            if content_type.startswith(patches.APPLY_PATCH) and not t.subresource:
                return create(store, t, _check_body_identity(t, body, with_name=True)), True
            raise
        current = _with_version(t, current)
        if t.subresource == "scale":
            scale = _apply_patch(t, to_scale(t, current), body, content_type)
            return _write_scale(store, t, scale), False
        result = _apply_patch(t, current, body, content_type)
        meta = result.setdefault("metadata", {})
        explicit_rv = _patch_sets_rv(body)
        if not explicit_rv:
            # The server guards its own read-modify-write; a conflict retries with a fresh read.
            meta["resourceVersion"] = current["metadata"]["resourceVersion"]
        meta["name"] = current["metadata"]["name"]
        if t.type.namespaced:
            meta["namespace"] = current["metadata"]["namespace"]
        try:
            writer = store.update_status if t.subresource == "status" else store.update
            return writer(result, field_validation=t.field_validation, dry_run=t.dry_run), False
        except Conflict:
            if explicit_rv:
                raise
    raise Conflict("too many conflicts applying the patch; try again")


def _patch_sets_rv(body: Any) -> bool:
    if isinstance(body, dict):
        return bool((body.get("metadata") or {}).get("resourceVersion"))
    if isinstance(body, list):
        return any(
            isinstance(op, dict)
            and str(op.get("path", "")).startswith("/metadata/resourceVersion")
            and op.get("op") != "test"
            for op in body
        )
    return False


# ---- scale subresource --------------------------------------------------------------------


def _dig(obj: Obj, path: str) -> Any:
    cur: Any = obj
    for part in path.split("."):
        if not isinstance(cur, dict):
            return None
        cur = cur.get(part)
    return cur


def _put(obj: Obj, path: str, value: Any) -> None:
    parts = path.split(".")
    cur = obj
    for part in parts[:-1]:
        cur = cur.setdefault(part, {})
    cur[parts[-1]] = value


def to_scale(t: Target, obj: Obj) -> Obj:
    paths = t.type.scale
    if paths is None:
        raise NotFound(f"the server could not find the requested resource ({t.type.plural}/scale)")
    meta = obj["metadata"]
    status: Obj = {"replicas": _dig(obj, paths.status_replicas) or 0}
    if paths.label_selector:
        selector = _dig(obj, paths.label_selector)
        if selector:
            status["selector"] = selector
    else:
        status["selector"] = label_selector_string(_dig(obj, "spec.selector"))
    return {
        "kind": "Scale",
        "apiVersion": "autoscaling/v1",
        "metadata": {
            k: meta[k]
            for k in ("name", "namespace", "uid", "resourceVersion", "creationTimestamp")
            if k in meta
        },
        "spec": {"replicas": _dig(obj, paths.spec_replicas) or 0},
        "status": status,
    }


def _write_scale(store: Store, t: Target, scale: Any) -> Obj:
    paths = t.type.scale
    if paths is None:
        raise NotFound(f"the server could not find the requested resource ({t.type.plural}/scale)")
    if not isinstance(scale, dict):
        raise BadRequest("a Scale object is required")
    replicas = (scale.get("spec") or {}).get("replicas")
    if not isinstance(replicas, int) or isinstance(replicas, bool) or replicas < 0:
        raise Invalid(
            f'Scale.autoscaling "{t.name}" is invalid: spec.replicas: Invalid value: '
            f"{json.dumps(replicas)}: must be greater than or equal to 0",
            [Cause("spec.replicas", "must be greater than or equal to 0")],
            kind="Scale",
            name=t.name or "",
            group="autoscaling",
        )
    current = _with_version(t, store.get_raw(t.type, t.namespace, t.name or ""))
    updated = json.loads(json.dumps(current))
    _put(updated, paths.spec_replicas, replicas)
    wanted_rv = (scale.get("metadata") or {}).get("resourceVersion")
    if wanted_rv:
        updated["metadata"]["resourceVersion"] = wanted_rv
    return to_scale(t, store.update(updated, dry_run=t.dry_run))
