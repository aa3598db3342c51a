"""Committed objects: never mutated after commit, so their JSON encoding is computed once;
and the copies handed out (callers always get copies they may change)."""

from __future__ import annotations

import json
import time
from typing import Any

Obj = dict[str, Any]


class StoredObject(dict[str, Any]):
    """A committed object: never mutated, so its JSON encoding is computed once and reused
    by every list, get and watch event that sends it."""

    __slots__ = ("_encoded",)

    # Copies are plain dicts: a copy may be changed, and must not carry the cached encoding.
    def __copy__(self) -> dict[str, Any]:
        return dict(self)

    def __deepcopy__(self, memo: dict[int, Any]) -> dict[str, Any]:
        result: dict[str, Any] = json.loads(self.encoded())
        return result

    def encoded(self) -> str:
        try:
            return self._encoded
        except AttributeError:
            self._encoded: str = json.dumps(self, separators=(",", ":"))
            return self._encoded


def encode(obj: Obj) -> str:
    """JSON text of an object, reusing the cached encoding of a stored one."""
    if isinstance(obj, StoredObject):
        return obj.encoded()
    return json.dumps(obj, separators=(",", ":"))


def copy_json(obj: Obj) -> Obj:
    # A JSON round trip is the fastest deep copy of plain JSON data in CPython.
    result: Obj = json.loads(encode(obj))
    return result


def now_rfc3339() -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())
