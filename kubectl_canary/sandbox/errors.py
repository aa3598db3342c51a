"""The store's exceptions; the HTTP layer turns each into a `Status` object with its code."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Cause:
    """One field error, as in `Status.details.causes` (reason e.g. FieldValueInvalid)."""

    field: str
    message: str
    reason: str = "FieldValueInvalid"


class StoreError(Exception):
    reason = "InternalError"
    code = 500

    def __init__(self, message: str, *, kind: str = "", name: str = "", group: str = "") -> None:
        super().__init__(message)
        self.message = message
        self.kind = kind
        self.name = name
        self.group = group


class Conflict(StoreError):
    """resourceVersion mismatch (409 Conflict); AlreadyExists is a subclass."""

    reason = "Conflict"
    code = 409


class AlreadyExists(Conflict):
    reason = "AlreadyExists"


class NotFound(StoreError):
    reason = "NotFound"
    code = 404


class Forbidden(StoreError):
    """An operation the server refuses whatever the caller (terminating namespace, ...)."""

    reason = "Forbidden"
    code = 403


class BadRequest(StoreError):
    reason = "BadRequest"
    code = 400


class Invalid(StoreError):
    """Validation failure (422), carrying one cause per bad field."""

    reason = "Invalid"
    code = 422

    def __init__(
        self,
        message: str,
        causes: list[Cause] | None = None,
        *,
        kind: str = "",
        name: str = "",
        group: str = "",
    ) -> None:
        super().__init__(message, kind=kind, name=name, group=group)
        self.causes = list(causes or [])


def invalid(kind: str, group: str, name: str, causes: list[Cause]) -> Invalid:
    """Build the error with the message format of a real server:
    `Canary.kubectl-canary.dev "x" is invalid: spec.provider: Unsupported value: ...`."""
    qualified = f"{kind}.{group}" if group else kind
    details = "; ".join(f"{c.field}: {c.message}" if c.field else c.message for c in causes)
    if len(causes) > 1:
        details = f"[{details.replace('; ', ', ')}]"
    return Invalid(
        f'{qualified} "{name}" is invalid: {details}', causes, kind=kind, name=name, group=group
    )
