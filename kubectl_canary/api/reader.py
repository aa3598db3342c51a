"""Typed reads from a decoded YAML/JSON document that record problems instead of raising.

Decoding keeps going after a bad field (using the field's default) so that one pass reports
every problem. Each read checks what the CRD schema checks (type, range, enum, pattern,
required), so an object that never went through an API server is held to the same rules.
"""

from __future__ import annotations

import re
from collections.abc import Collection, Mapping
from typing import Any

from kubectl_canary.api.durations import parse_duration
from kubectl_canary.api.errors import MISSING, Problem

_PLAIN_KEY = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")


def join(path: str, key: str | int) -> str:
    """`spec` + `port` -> `spec.port`; list indexes and odd map keys use brackets."""
    if isinstance(key, int):
        return f"{path}[{key}]"
    if _PLAIN_KEY.match(key):
        return f"{path}.{key}" if path else key
    return f'{path}["{key}"]'


def is_int(value: Any) -> bool:
    # bool is an int subclass in Python but never an integer in JSON.
    if isinstance(value, bool):
        return False
    return isinstance(value, int) or (isinstance(value, float) and value.is_integer())


def is_number(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)


class Problems:
    """The problems found so far, shared by every Node of one document."""

    def __init__(self) -> None:
        self.items: list[Problem] = []

    def add(self, path: str, message: str, value: Any = MISSING) -> None:
        self.items.append(Problem(path, message, value))

    def touches(self, *paths: str) -> bool:
        """Whether any problem is at or below one of `paths` (to avoid cascading reports)."""
        for problem in self.items:
            for path in paths:
                if problem.path == path or problem.path.startswith((path + ".", path + "[")):
                    return True
        return False


class Node:
    """One JSON object of the document, at `path`."""

    def __init__(self, problems: Problems, data: Mapping[str, Any], path: str) -> None:
        self.problems = problems
        self.data = data
        self.path = path

    def at(self, key: str | int) -> str:
        return join(self.path, key)

    def has(self, key: str) -> bool:
        return key in self.data and self.data[key] is not None

    def raw(self, key: str) -> Any:
        return self.data.get(key, MISSING)

    def add(self, key: str | int, message: str, value: Any = MISSING) -> None:
        self.problems.add(self.at(key), message, value)

    def only(self, known: Collection[str], hint: Mapping[str, str] | None = None) -> None:
        """Report fields this object does not define (a typo, or a Flagger-only field)."""
        for key in self.data:
            if key not in known:
                extra = (hint or {}).get(key)
                message = f"unknown field ({extra})" if extra else "unknown field"
                self.problems.add(self.at(key), message)

    def _get(self, key: str, required: bool) -> Any:
        value = self.data.get(key)
        if value is None and required:
            self.add(key, "required")
        return value

    def child(self, key: str, *, required: bool = False) -> Node | None:
        value = self._get(key, required)
        if value is None:
            return None
        if not isinstance(value, Mapping):
            self.add(key, "must be an object", value)
            return None
        return Node(self.problems, value, self.at(key))

    def children(self, key: str) -> list[Node]:
        """The objects of a list field; non-objects are reported and skipped."""
        nodes = []
        for index, item in enumerate(self._list(key)):
            path = join(self.at(key), index)
            if isinstance(item, Mapping):
                nodes.append(Node(self.problems, item, path))
            else:
                self.problems.add(path, "must be an object", item)
        return nodes

    def _list(self, key: str) -> list[Any]:
        value = self.data.get(key)
        if value is None:
            return []
        if not isinstance(value, list):
            self.add(key, "must be a list", value)
            return []
        return value

    def string(
        self,
        key: str,
        *,
        required: bool = False,
        enum: Collection[str] | None = None,
        pattern: str | None = None,
        explain: str = "",
        max_length: int | None = None,
    ) -> str | None:
        """A string, or None when absent or invalid (a problem then says why)."""
        value = self._get(key, required)
        if value is None:
            return None
        if not isinstance(value, str):
            self.add(key, "must be a string", value)
            return None
        if required and not value:
            self.add(key, "must not be empty", value)
            return None
        if enum is not None and value not in enum:
            self.add(key, f"must be one of {', '.join(enum)}", value)
            return None
        if max_length is not None and len(value) > max_length:
            self.add(key, f"must be at most {max_length} characters", value)
            return None
        if pattern is not None and not re.match(pattern, value):
            self.add(key, f"must be {explain}" if explain else f"must match {pattern}", value)
            return None
        return value

    def integer(
        self, key: str, default: int, *, lo: int, hi: int | None = None, required: bool = False
    ) -> int:
        value = self._get(key, required)
        if value is None:
            return default
        if not is_int(value):
            self.add(key, "must be an integer", value)
            return default
        if value < lo or (hi is not None and value > hi):
            self.add(key, f"must be {lo}..{hi}" if hi is not None else f"must be >= {lo}", value)
            return default
        return int(value)

    def number(self, key: str) -> float | None:
        value = self.data.get(key)
        if value is None:
            return None
        if not is_number(value):
            self.add(key, "must be a number", value)
            return None
        return float(value)

    def boolean(self, key: str, default: bool = False) -> bool:
        value = self.data.get(key)
        if value is None:
            return default
        if not isinstance(value, bool):
            self.add(key, "must be true or false", value)
            return default
        return value

    def duration(self, key: str, default: float, maximum: float | None = None) -> float:
        """Seconds of a duration string like "30s"; more than zero, at most `maximum`."""
        value = self.data.get(key)
        if value is None:
            return default
        try:
            seconds = parse_duration(value)
        except ValueError:
            self.add(key, "must be a duration like 30s, 1m, 1h30m or 500ms", value)
            return default
        if seconds <= 0:
            self.add(key, "must be more than zero", value)
            return default
        if maximum is not None and seconds > maximum:
            self.add(key, f"must be at most {maximum:g}s", value)
            return default
        return seconds

    def int_or_string(self, key: str, *, lo: int, hi: int) -> int | str | None:
        value = self.data.get(key)
        if value is None or (isinstance(value, str) and value):
            return value
        if is_int(value) and lo <= value <= hi:
            return int(value)
        self.add(key, f"must be {lo}..{hi} or a name", value)
        return None

    def string_map(self, key: str) -> dict[str, str]:
        value = self.data.get(key)
        if value is None:
            return {}
        if not isinstance(value, Mapping):
            self.add(key, "must be an object of strings", value)
            return {}
        result = {}
        for item_key, item in value.items():
            if isinstance(item, str):
                result[str(item_key)] = item
            else:
                self.problems.add(join(self.at(key), str(item_key)), "must be a string", item)
        return result

    def string_list(self, key: str) -> tuple[str, ...]:
        result = []
        for index, item in enumerate(self._list(key)):
            if isinstance(item, str):
                result.append(item)
            else:
                self.problems.add(join(self.at(key), index), "must be a string", item)
        return tuple(result)

    def int_list(self, key: str, *, lo: int, hi: int) -> tuple[int, ...]:
        result = []
        for index, item in enumerate(self._list(key)):
            if is_int(item) and lo <= item <= hi:
                result.append(int(item))
            else:
                self.problems.add(join(self.at(key), index), f"must be {lo}..{hi}", item)
        return tuple(result)

    def free_object(self, key: str) -> dict[str, Any] | None:
        """An object passed through as-is (Istio shapes the provider's API validates)."""
        value = self.data.get(key)
        if value is None:
            return None
        if not isinstance(value, Mapping):
            self.add(key, "must be an object", value)
            return None
        return dict(value)

    def free_objects(self, key: str) -> tuple[dict[str, Any], ...]:
        return tuple(dict(node.data) for node in self.children(key))
