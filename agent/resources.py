"""The narrow interface through which agent code reads and writes Kubernetes objects.

Routers, workload builders and the runtime see plain dicts through this protocol; the one module
that talks to a client library (`agent/kube.py`) implements it. Tests may implement it too.
"""

from __future__ import annotations

from typing import Any, Protocol

Obj = dict[str, Any]


class ApiError(Exception):
    """An API request failed; `status` is the HTTP status code (0 when no response)."""

    def __init__(self, message: str, status: int = 0, reason: str = "") -> None:
        super().__init__(message)
        self.status = status
        self.reason = reason


class NotFoundError(ApiError):
    pass


class ConflictError(ApiError):
    """A write lost a race (409): re-read and retry."""


class ResourceClient(Protocol):
    def get(self, api_version: str, kind: str, namespace: str, name: str) -> Obj | None:
        """A read (from a watch cache where the client keeps one); None when absent."""

    def get_live(self, api_version: str, kind: str, namespace: str, name: str) -> Obj | None:
        """A read from the API server itself, never a cache: what a write or a destructive
        step (delete, hand-back) is decided on."""

    def create(self, obj: Obj) -> Obj: ...

    def replace(self, obj: Obj) -> Obj:
        """PUT; guarded by metadata.resourceVersion, raises ConflictError when stale."""

    def patch_json(
        self, api_version: str, kind: str, namespace: str, name: str, ops: list[Obj]
    ) -> Obj:
        """RFC 6902 JSON patch (include a `test` of /metadata/resourceVersion to guard it)."""

    def patch_merge(
        self, api_version: str, kind: str, namespace: str, name: str, patch: Obj
    ) -> Obj:
        """RFC 7386 JSON merge patch."""

    def delete(self, api_version: str, kind: str, namespace: str, name: str) -> None:
        """Idempotent: deleting a missing object is not an error."""
