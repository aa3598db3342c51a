"""An in-memory stand-in for the API server, for unit tests of the agent's runtime.

Enough REST semantics to be a fair test: resourceVersion bumped on every write and checked on
replace (409), JSON patch `test` ops, merge patch, creation conflicts, and a request log."""

from __future__ import annotations

import copy
import itertools
from typing import Any

from kubectl_canary.resources import ApiError, ConflictError, NotFoundError, Obj


def _merge(base: Any, patch: Any) -> Any:
    if not isinstance(patch, dict):
        return copy.deepcopy(patch)
    out = dict(base) if isinstance(base, dict) else {}
    for k, v in patch.items():
        if v is None:
            out.pop(k, None)
        else:
            out[k] = _merge(out.get(k), v)
    return out


class FakeCluster:
    def __init__(self) -> None:
        self.objects: dict[tuple[str, str, str], Obj] = {}
        self.calls: list[tuple[str, str, str]] = []  # (verb, kind, name)
        self._rv = itertools.count(100)
        self.fail_next: dict[str, ApiError] = {}  # verb -> error raised once

    def _check(self, verb: str, kind: str, name: str) -> None:
        self.calls.append((verb, kind, name))
        err = self.fail_next.pop(verb, None)
        if err is not None:
            raise err

    def _store(self, obj: Obj) -> Obj:
        obj = copy.deepcopy(obj)
        meta = obj.setdefault("metadata", {})
        meta["resourceVersion"] = str(next(self._rv))
        meta.setdefault("uid", f"uid-{meta['name']}")
        self.objects[(obj["kind"], meta.get("namespace", ""), meta["name"])] = obj
        return copy.deepcopy(obj)

    def put(self, obj: Obj) -> Obj:
        """Test setup: store without logging a call."""
        return self._store(obj)

    def peek(self, kind: str, namespace: str, name: str) -> Obj | None:
        return self.objects.get((kind, namespace, name))

    def get(self, api_version: str, kind: str, namespace: str, name: str) -> Obj | None:
        self._check("get", kind, name)
        found = self.objects.get((kind, namespace, name))
        return copy.deepcopy(found) if found is not None else None

    get_live = get  # no cache in front of this fake

    def list(
        self,
        api_version: str,
        kind: str,
        namespace: str | None = None,
        label_selector: str | None = None,
    ) -> tuple[list[Obj], str]:
        """Equality selectors only (`k=v,k2=v2`): anything else is refused, not misread."""
        self._check("list", kind, label_selector or "")
        wanted: dict[str, str] = {}
        for term in filter(None, (label_selector or "").split(",")):
            key, sep, value = term.partition("=")
            if not sep or not key or key.endswith("!"):
                raise ApiError(f"fake list: unsupported selector {term!r}", 400)
            wanted[key] = value
        items = [
            copy.deepcopy(obj)
            for (k, ns, _), obj in sorted(self.objects.items())
            if k == kind
            and (namespace is None or ns == namespace)
            and all((obj["metadata"].get("labels") or {}).get(a) == b for a, b in wanted.items())
        ]
        return items, str(next(self._rv))

    def create(self, obj: Obj) -> Obj:
        meta = obj["metadata"]
        self._check("create", obj["kind"], meta.get("name", ""))
        if (obj["kind"], meta.get("namespace", ""), meta["name"]) in self.objects:
            raise ConflictError("exists", 409, "AlreadyExists")
        return self._store(obj)

    def _live(self, kind: str, namespace: str, name: str) -> Obj:
        found = self.objects.get((kind, namespace, name))
        if found is None:
            raise NotFoundError(f"{kind} {name} not found", 404, "NotFound")
        return found

    def replace(self, obj: Obj) -> Obj:
        meta = obj["metadata"]
        self._check("update", obj["kind"], meta["name"])
        live = self._live(obj["kind"], meta.get("namespace", ""), meta["name"])
        if meta.get("resourceVersion") != live["metadata"]["resourceVersion"]:
            raise ConflictError("stale", 409, "Conflict")
        new = copy.deepcopy(obj)
        if "status" in live:
            new["status"] = copy.deepcopy(live["status"])
        return self._store(new)

    def update_status(self, obj: Obj) -> Obj:
        meta = obj["metadata"]
        self._check("update", obj["kind"] + "/status", meta["name"])
        live = self._live(obj["kind"], meta.get("namespace", ""), meta["name"])
        if meta.get("resourceVersion") != live["metadata"]["resourceVersion"]:
            raise ConflictError("stale", 409, "Conflict")
        new = copy.deepcopy(live)
        new["status"] = copy.deepcopy(obj.get("status"))
        return self._store(new)

    def patch_merge(
        self, api_version: str, kind: str, namespace: str, name: str, patch: Obj
    ) -> Obj:
        self._check("patch", kind, name)
        live = self._live(kind, namespace, name)
        return self._store(_merge(live, patch))

    def patch_json(
        self, api_version: str, kind: str, namespace: str, name: str, ops: list[Obj]
    ) -> Obj:
        self._check("patch", kind, name)
        doc = copy.deepcopy(self._live(kind, namespace, name))
        for op in ops:
            parts = [p for p in op["path"].split("/")[1:]]
            parent = doc
            for p in parts[:-1]:
                parent = parent[int(p)] if isinstance(parent, list) else parent[p]
            last = parts[-1]
            if op["op"] == "test":
                value = parent[int(last)] if isinstance(parent, list) else parent.get(last)
                if value != op["value"]:
                    raise ApiError("test failed", 422, "Invalid")
            elif op["op"] == "add":
                if isinstance(parent, list) and last == "-":
                    parent.append(op["value"])
                elif isinstance(parent, list):
                    parent.insert(int(last), op["value"])
                else:
                    parent[last] = op["value"]
            elif op["op"] == "remove":
                if isinstance(parent, list):
                    parent.pop(int(last))
                else:
                    parent.pop(last)
            else:
                raise ApiError(f"op {op['op']} unsupported", 422)
        return self._store(doc)

    def delete(
        self,
        api_version: str,
        kind: str,
        namespace: str,
        name: str,
        resource_version: str | None = None,
    ) -> bool:
        self._check("delete", kind, name)
        return self.objects.pop((kind, namespace, name), None) is not None

    def verbs(self) -> list[str]:
        return [v for v, _, _ in self.calls]
