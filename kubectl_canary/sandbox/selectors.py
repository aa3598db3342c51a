"""Label and field selectors, parsed from their query-string form as the API server does."""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any


class SelectorError(ValueError):
    """A selector string that does not parse (the server answers 400 BadRequest)."""


@dataclass(frozen=True)
class Requirement:
    key: str
    op: str  # "=", "!=", "in", "notin", "exists", "!"
    values: tuple[str, ...] = ()

    def matches(self, labels: dict[str, str]) -> bool:
        present = self.key in labels
        if self.op == "exists":
            return present
        if self.op == "!":
            return not present
        if self.op in ("=", "in"):
            return present and labels[self.key] in self.values
        # "!=" and "notin" match objects without the label too, as on a real server.
        return not present or labels[self.key] not in self.values


_TOKEN = re.compile(r"\s*(!=|==|=|\(|\)|,|!|[^\s!=(),]+)")


def _split_top_level(text: str) -> list[str]:
    """Split on commas that are not inside an `in (...)` value list."""
    parts: list[str] = []
    current: list[str] = []
    depth = 0
    for ch in text:
        if ch == "(":
            depth += 1
        elif ch == ")":
            depth -= 1
        if ch == "," and depth == 0:
            parts.append("".join(current))
            current = []
        else:
            current.append(ch)
    parts.append("".join(current))
    return [p.strip() for p in parts if p.strip()]


def parse_label_selector(text: str | None) -> list[Requirement]:
    if not text or not text.strip():
        return []
    out = []
    for part in _split_top_level(text):
        m = re.fullmatch(r"([^\s!=(),]+)\s+(in|notin)\s+\(([^()]*)\)", part)
        if m:
            values = tuple(v.strip() for v in m.group(3).split(",") if v.strip())
            out.append(Requirement(m.group(1), m.group(2), values))
            continue
        m = re.fullmatch(r"([^\s!=(),]+)\s*(==|=|!=)\s*([^\s!=(),]*)", part)
        if m:
            op = "!=" if m.group(2) == "!=" else "="
            out.append(Requirement(m.group(1), op, (m.group(3),)))
            continue
        m = re.fullmatch(r"!\s*([^\s!=(),]+)", part)
        if m:
            out.append(Requirement(m.group(1), "!"))
            continue
        if re.fullmatch(r"[^\s!=(),]+", part):
            out.append(Requirement(part, "exists"))
            continue
        raise SelectorError(f"unable to parse requirement: {part!r}")
    return out


def selector_from_label_selector_object(sel: dict[str, Any] | None) -> list[Requirement]:
    """A metav1.LabelSelector ({matchLabels, matchExpressions}) as requirements."""
    if not sel:
        return []
    reqs = [Requirement(k, "=", (str(v),)) for k, v in (sel.get("matchLabels") or {}).items()]
    ops = {"In": "in", "NotIn": "notin", "Exists": "exists", "DoesNotExist": "!"}
    for expr in sel.get("matchExpressions") or []:
        reqs.append(
            Requirement(expr["key"], ops[expr["operator"]], tuple(expr.get("values") or ()))
        )
    return reqs


def label_selector_string(sel: dict[str, Any] | None) -> str:
    """The string form of a metav1.LabelSelector (what `scale` status.selector carries)."""
    parts = []
    for r in selector_from_label_selector_object(sel):
        if r.op == "=":
            parts.append(f"{r.key}={r.values[0]}")
        elif r.op in ("in", "notin"):
            parts.append(f"{r.key} {r.op} ({','.join(r.values)})")
        elif r.op == "exists":
            parts.append(r.key)
        else:
            parts.append(f"!{r.key}")
    return ",".join(sorted(parts))


def labels_match(reqs: list[Requirement], obj: dict[str, Any]) -> bool:
    labels = (obj.get("metadata") or {}).get("labels") or {}
    for r in reqs:
        # Equality is by far the most common requirement: test it without a method call.
        if r.op == "=":
            if labels.get(r.key) != r.values[0]:
                return False
        elif not r.matches(labels):
            return False
    return True


def _field_value(obj: dict[str, Any], path: str) -> str | None:
    cur: Any = obj
    for part in path.split("."):
        if not isinstance(cur, dict) or part not in cur:
            return None
        cur = cur[part]
    return None if cur is None else str(cur)


# Field selectors a real server supports for every kind, plus the Event ones `kubectl describe`
# uses; anything else is rejected with 400 like a real server does for unknown fields.
_COMMON_FIELDS = {"metadata.name", "metadata.namespace"}
_EXTRA_FIELDS = {
    ("", "Event"): {
        "involvedObject.kind",
        "involvedObject.namespace",
        "involvedObject.name",
        "involvedObject.uid",
        "involvedObject.apiVersion",
        "involvedObject.resourceVersion",
        "involvedObject.fieldPath",
        "reason",
        "reportingComponent",
        "source",
        "type",
    },
    ("events.k8s.io", "Event"): {
        "regarding.kind",
        "regarding.namespace",
        "regarding.name",
        "regarding.uid",
        "reason",
        "type",
    },
    ("", "Pod"): {"spec.nodeName", "status.phase", "spec.serviceAccountName"},
    ("", "Secret"): {"type"},
    ("", "Namespace"): {"status.phase"},
}


def parse_field_selector(
    text: str | None, kind_key: tuple[str, str]
) -> Callable[[dict[str, Any]], bool] | None:
    if not text or not text.strip():
        return None
    allowed = _COMMON_FIELDS | _EXTRA_FIELDS.get(kind_key, set())
    checks: list[tuple[str, bool, str]] = []
    for part in _split_top_level(text):
        m = re.fullmatch(r"([A-Za-z.]+)\s*(==|=|!=)\s*(.*)", part)
        if not m:
            raise SelectorError(f"invalid field selector: {part!r}")
        path, op, value = m.group(1), m.group(2), m.group(3).strip()
        if path not in allowed:
            raise SelectorError(f'field label not supported: "{path}"')
        checks.append((path, op != "!=", value))

    def match(obj: dict[str, Any]) -> bool:
        for path, want_equal, value in checks:
            actual = _field_value(obj, path) or ""
            if (actual == value) != want_equal:
                return False
        return True

    return match
