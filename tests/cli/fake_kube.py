"""An in-memory stand-in for `kubectl_canary.kube.Kube`, with the API server's error behaviour.

It stores plain dicts per (apiVersion, kind, namespace, name), bumps resourceVersion on every
write, guards PUT with resourceVersion, and raises the same exceptions the REST client raises.
`on_write` hooks let a test play the agent (e.g. acknowledge a request annotation).
"""

from __future__ import annotations

import copy
import itertools
from collections.abc import Callable, Iterator
from typing import Any

from kubectl_canary import kube as k
from kubectl_canary import resources as k_errors
from kubectl_canary.sandbox.patch import merge_patch

Obj = dict[str, Any]
Key = tuple[str, str, str, str]

NAMESPACED = {kind for kind, (_, namespaced) in k.KNOWN_KINDS.items() if namespaced}


class FakeKube:
    def __init__(self, namespace: str = "default") -> None:
        self.default_namespace = namespace
        self.context_name = "fake"
        self.server = "https://fake.invalid"
        self.objects: dict[Key, Obj] = {}
        self._rv = itertools.count(1)
        self.missing_types: set[str] = set()  # kinds whose CRD is "not installed"
        self.forbidden: set[tuple[str, str]] = set()  # (verb, kind)
        self.on_write: list[Callable[[FakeKube, str, Obj], None]] = []
        self.pod_logs: dict[tuple[str, str], list[str]] = {}
        self.watch_script: list[tuple[str, Obj]] = []
        self.writes: list[tuple[str, str, str]] = []  # (verb, kind, name)
        self.version = {"gitVersion": "v1.32.0"}
        self.paths: dict[str, Obj] = {}  # raw GET answers (service proxy)
        # Answers SubjectAccessReviews when set (spec -> allowed); unset, the type is not
        # served, as on the sandbox.
        self.access_review: Callable[[Obj], bool] | None = None

    # --- helpers for tests ---

    def add(self, obj: Obj) -> Obj:
        obj = copy.deepcopy(obj)
        meta = obj.setdefault("metadata", {})
        if obj["kind"] in NAMESPACED:
            meta.setdefault("namespace", self.default_namespace)
        meta["resourceVersion"] = str(next(self._rv))
        meta.setdefault("uid", f"uid-{meta['name']}")
        meta.setdefault("generation", 1)
        self.objects[self._key_of(obj)] = obj
        return copy.deepcopy(obj)

    def find(self, kind: str, name: str, namespace: str | None = None) -> Obj | None:
        for (_, kd, ns, nm), obj in self.objects.items():
            if kd == kind and nm == name and (namespace is None or ns == namespace):
                return obj
        return None

    def _key_of(self, obj: Obj) -> Key:
        meta = obj["metadata"]
        ns = meta.get("namespace", "") if obj["kind"] in NAMESPACED else ""
        return (
            obj["apiVersion"].split("/")[0] if "/" in obj["apiVersion"] else "",
            obj["kind"],
            ns,
            meta["name"],
        )

    def _check(self, verb: str, kind: str) -> None:
        if kind in self.missing_types:
            raise k_errors.ResourceTypeMissingError(
                f"the server does not serve {k.KNOWN_KINDS.get(kind, (kind,))[0]}."
                "kubectl-canary.dev",
                404,
            )
        if (verb, kind) in self.forbidden:
            raise k_errors.ForbiddenError(
                f'{kind.lower()} is forbidden: User "dev" cannot {verb} resource', 403
            )

    def _key(self, api_version: str, kind: str, name: str, namespace: str | None) -> Key:
        group = api_version.split("/")[0] if "/" in api_version else ""
        ns = (namespace or self.default_namespace) if kind in NAMESPACED else ""
        return (group, kind, ns, name)

    @staticmethod
    def _bump_generation(old: Obj, new: Obj) -> None:
        """Like the API server: generation counts changes of spec only."""
        generation = int(old["metadata"].get("generation", 1))
        changed = old.get("spec") != new.get("spec")
        new["metadata"]["generation"] = generation + 1 if changed else generation

    def _notify(self, verb: str, obj: Obj) -> None:
        self.writes.append((verb, obj["kind"], obj["metadata"]["name"]))
        for hook in list(self.on_write):
            hook(self, verb, obj)

    # --- the Kube interface ---

    def get(self, api_version: str, kind: str, namespace: str, name: str) -> Obj | None:
        self._check("get", kind)
        obj = self.objects.get(self._key(api_version, kind, name, namespace))
        return None if obj is None else copy.deepcopy(obj)

    get_live = get

    def list(
        self,
        api_version: str,
        kind: str,
        namespace: str | None = None,
        label_selector: str | None = None,
    ) -> tuple[list[Obj], str]:
        self._check("list", kind)
        # Equality selectors only (`k=v,k2=v2`), what the plugin sends.
        wanted = dict(term.split("=", 1) for term in (label_selector or "").split(",") if term)
        items = [
            copy.deepcopy(obj)
            for (_, kd, ns, _), obj in sorted(self.objects.items())
            if kd == kind
            and (not namespace or ns == namespace)
            and all((obj["metadata"].get("labels") or {}).get(k) == v for k, v in wanted.items())
        ]
        return items, str(next(self._rv))

    def create(self, obj: Obj) -> Obj:
        if obj["kind"] == "SubjectAccessReview":
            if self.access_review is None:
                raise k_errors.ResourceTypeMissingError(
                    "the server does not serve subjectaccessreviews.authorization.k8s.io", 404
                )
            return {**obj, "status": {"allowed": self.access_review(obj["spec"])}}
        self._check("create", obj["kind"])
        if (
            self._key_of(
                {**obj, "metadata": {"namespace": self.default_namespace, **obj["metadata"]}}
            )
            in self.objects
        ):
            raise k_errors.AlreadyExistsError(
                f'{obj["kind"]} "{obj["metadata"]["name"]}" already exists', 409, "AlreadyExists"
            )
        created = self.add(obj)
        self._notify("create", created)
        return created

    def replace(self, obj: Obj) -> Obj:
        self._check("update", obj["kind"])
        meta = obj["metadata"]
        key = self._key(obj["apiVersion"], obj["kind"], meta["name"], meta.get("namespace"))
        current = self.objects.get(key)
        if current is None:
            raise k_errors.NotFoundError(f'{obj["kind"]} "{meta["name"]}" not found', 404)
        rv = meta.get("resourceVersion")
        if rv and rv != current["metadata"]["resourceVersion"]:
            raise k_errors.ConflictError(
                f'Operation cannot be fulfilled on {obj["kind"]} "{meta["name"]}": '
                "the object has been modified",
                409,
            )
        new = copy.deepcopy(obj)
        new["metadata"]["resourceVersion"] = str(next(self._rv))
        self._bump_generation(current, new)
        self.objects[key] = new
        self._notify("replace", new)
        return copy.deepcopy(new)

    def patch_json(self, api_version: str, kind: str, namespace: str, name: str, ops: Any) -> Obj:
        raise AssertionError("the fake implements merge patches only")

    def patch_merge(
        self, api_version: str, kind: str, namespace: str, name: str, patch: Obj
    ) -> Obj:
        self._check("patch", kind)
        key = self._key(api_version, kind, name, namespace)
        current = self.objects.get(key)
        if current is None:
            raise k_errors.NotFoundError(f'{kind.lower()} "{name}" not found', 404)
        new = merge_patch(current, patch)
        new["metadata"]["resourceVersion"] = str(next(self._rv))
        self._bump_generation(current, new)
        self.objects[key] = new
        self._notify("patch", new)
        return copy.deepcopy(new)

    def delete(
        self,
        api_version: str,
        kind: str,
        namespace: str,
        name: str,
        resource_version: str | None = None,
    ) -> bool:
        self._check("delete", kind)
        key = self._key(api_version, kind, name, namespace)
        obj = self.objects.get(key)
        if obj is None:
            return False
        if resource_version and resource_version != obj["metadata"].get("resourceVersion"):
            raise k_errors.ConflictError(f'{kind} "{name}": the object has been modified', 409)
        if obj["metadata"].get("finalizers"):
            obj["metadata"]["deletionTimestamp"] = "2026-11-27T10:00:00Z"
        else:
            del self.objects[key]
        self._notify("delete", obj)
        return True

    def watch(
        self,
        api_version: str,
        kind: str,
        namespace: str | None,
        resource_version: str,
        timeout_seconds: int,
    ) -> Iterator[tuple[str, Obj]]:
        self._check("watch", kind)
        script, self.watch_script = self.watch_script, []
        yield from script
        raise KeyboardInterrupt  # the user pressing Ctrl-C ends a watch in tests

    def pod_log(
        self, namespace: str, pod: str, follow: bool = False, since_seconds: int | None = None
    ) -> Iterator[str]:
        self._check("get", "Pod")
        if (namespace, pod) not in self.pod_logs:
            raise k_errors.NotFoundError(f'pods "{pod}" not found', 404)
        yield from self.pod_logs[(namespace, pod)]

    def server_version(self) -> Obj:
        return dict(self.version)

    def get_path(self, path: str) -> Obj:
        if path not in self.paths:
            raise k_errors.NotFoundError(f"{path} not found", 404)
        return copy.deepcopy(self.paths[path])
