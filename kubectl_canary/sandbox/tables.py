"""Server-side printing: `Table` responses (meta.k8s.io/v1) that `kubectl get` renders.

Custom resources get their CRD's additionalPrinterColumns (simple JSONPath); built-in kinds
get the columns `kubectl get` shows on a real cluster, as far as the sandbox fills them.
"""

from __future__ import annotations

import calendar
import functools
import json
import re
import time
from collections.abc import Callable
from typing import Any

from .kinds import ResourceType
from .selectors import label_selector_string

Obj = dict[str, Any]
Column = tuple[str, str, int, Callable[[Obj], Any]]  # name, type, priority, cell function


def human_duration(seconds: float) -> str:
    """Kubernetes' HumanDuration: 45s, 5m10s, 3h, 2d4h, 300d, 3y."""
    s = int(max(seconds, 0))
    if s < 120:
        return f"{s}s"
    minutes = s // 60
    if minutes < 10:
        return f"{minutes}m{s % 60}s" if s % 60 else f"{minutes}m"
    if minutes < 180:
        return f"{minutes}m"
    hours = minutes // 60
    if hours < 8:
        return f"{hours}h{minutes % 60}m" if minutes % 60 else f"{hours}h"
    if hours < 48:
        return f"{hours}h"
    days = hours // 24
    if hours < 24 * 8:
        return f"{days}d{hours % 24}h" if hours % 24 else f"{days}d"
    if days < 365 * 2:
        return f"{days}d"
    return f"{days // 365}y"


def _age(timestamp: str | None) -> str:
    if not timestamp:
        return "<unknown>"
    try:
        then = calendar.timegm(time.strptime(timestamp[:19], "%Y-%m-%dT%H:%M:%S"))
    except ValueError:
        return "<invalid>"
    return human_duration(time.time() - then)


def _get(obj: Any, *path: str, default: Any = None) -> Any:
    for p in path:
        if not isinstance(obj, dict):
            return default
        obj = obj.get(p)
    return default if obj is None else obj


# ---- JSONPath subset for printer columns --------------------------------------------------

_FILTER = re.compile(r"\[\?\(@\.([\w.]+)\s*==\s*['\"]([^'\"]*)['\"]\)\]")
_STEP = re.compile(r"\.([\w-]+)|\[(\d+|\*)\]|" + _FILTER.pattern)


def jsonpath(obj: Any, expr: str) -> list[Any]:
    """Evaluate `.a.b[0].c`, `.a[*].b` and `.a[?(@.type=="Ready")].status`."""
    expr = expr.strip()
    if expr.startswith("{") and expr.endswith("}"):
        expr = expr[1:-1]
    current = [obj]
    pos = 0
    while pos < len(expr):
        m = _STEP.match(expr, pos)
        if m is None:
            return []
        pos = m.end()
        field, index, fkey, fvalue = m.group(1), m.group(2), m.group(3), m.group(4)
        nxt: list[Any] = []
        for cur in current:
            if field is not None:
                if isinstance(cur, dict) and field in cur:
                    nxt.append(cur[field])
            elif index is not None:
                if isinstance(cur, list):
                    if index == "*":
                        nxt.extend(cur)
                    elif int(index) < len(cur):
                        nxt.append(cur[int(index)])
            elif isinstance(cur, list):
                for item in cur:
                    if str(_get(item, *fkey.split("."), default="")) == fvalue:
                        nxt.append(item)
        current = nxt
    return current


def _crd_cell(obj: Obj, col: dict[str, Any]) -> Any:
    values = jsonpath(obj, col.get("jsonPath", ""))
    if not values:
        return None
    value = values[0]
    if col.get("type") == "date" and isinstance(value, str):
        return _age(value)
    if isinstance(value, (dict, list)):
        return json.dumps(value, separators=(",", ":"))
    return value


# ---- built-in columns ---------------------------------------------------------------------


def _pod_ready(o: Obj) -> str:
    statuses = _get(o, "status", "containerStatuses", default=[])
    total = len(_get(o, "spec", "containers", default=[]))
    ready = sum(1 for s in statuses if s.get("ready"))
    return f"{ready}/{total}"


def _pod_status(o: Obj) -> str:
    if _get(o, "metadata", "deletionTimestamp"):
        return "Terminating"
    for s in _get(o, "status", "containerStatuses", default=[]):
        reason = _get(s, "state", "waiting", "reason") or _get(s, "state", "terminated", "reason")
        if reason:
            return str(reason)
    return str(_get(o, "status", "reason") or _get(o, "status", "phase", default="Pending"))


def _restarts(o: Obj) -> int:
    return sum(
        int(s.get("restartCount", 0)) for s in _get(o, "status", "containerStatuses", default=[])
    )


def _ports(o: Obj) -> str:
    ports = []
    for p in _get(o, "spec", "ports", default=[]):
        text = f"{p.get('port')}/{p.get('protocol', 'TCP')}"
        if p.get("nodePort"):
            text = f"{p.get('port')}:{p['nodePort']}/{p.get('protocol', 'TCP')}"
        ports.append(text)
    return ",".join(ports) or "<none>"


def _endpoints(o: Obj) -> str:
    addrs = []
    for subset in o.get("subsets") or []:
        ports = [p.get("port") for p in subset.get("ports") or []] or [None]
        for a in subset.get("addresses") or []:
            for port in ports:
                addrs.append(f"{a.get('ip')}:{port}" if port else str(a.get("ip")))
    if not addrs:
        return "<none>"
    shown = ",".join(addrs[:3])
    return shown + (f" + {len(addrs) - 3} more..." if len(addrs) > 3 else "")


def _containers(o: Obj, field: str) -> str:
    containers = _get(o, "spec", "template", "spec", "containers", default=[])
    return ",".join(str(c.get(field, "")) for c in containers)


def _selector(o: Obj) -> str:
    return label_selector_string(_get(o, "spec", "selector")) or "<none>"


def _service_selector(o: Obj) -> str:
    sel = _get(o, "spec", "selector", default={})
    return ",".join(f"{k}={v}" for k, v in sorted(sel.items())) or "<none>"


def _event_object(o: Obj) -> str:
    ref = o.get("involvedObject") or o.get("regarding") or {}
    return f"{str(ref.get('kind', '')).lower()}/{ref.get('name', '')}"


def _deployment_ready(o: Obj) -> str:
    ready = _get(o, "status", "readyReplicas", default=0)
    return f"{ready}/{_get(o, 'spec', 'replicas', default=0)}"


def _hpa_reference(o: Obj) -> str:
    ref = _get(o, "spec", "scaleTargetRef", default={})
    return f"{ref.get('kind', '')}/{ref.get('name', '')}"


def _hpa_targets(o: Obj) -> str:
    return "<unknown>" if not _get(o, "status", "currentMetrics") else "ok"


_NAME: Column = ("Name", "string", 0, lambda o: o["metadata"]["name"])
_AGE: Column = ("Age", "string", 0, lambda o: _age(o["metadata"].get("creationTimestamp")))
# The -o wide columns of the kinds that run a pod template (Deployment, ReplicaSet).
_POD_TEMPLATE_WIDE: list[Column] = [
    ("Containers", "string", 1, lambda o: _containers(o, "name")),
    ("Images", "string", 1, lambda o: _containers(o, "image")),
    ("Selector", "string", 1, _selector),
]

_BUILTIN_COLUMNS: dict[tuple[str, str], list[Column]] = {
    ("", "Pod"): [
        _NAME,
        ("Ready", "string", 0, _pod_ready),
        ("Status", "string", 0, _pod_status),
        ("Restarts", "integer", 0, _restarts),
        _AGE,
        ("IP", "string", 1, lambda o: _get(o, "status", "podIP", default="<none>")),
        ("Node", "string", 1, lambda o: _get(o, "spec", "nodeName", default="<none>")),
    ],
    ("apps", "Deployment"): [
        _NAME,
        ("Ready", "string", 0, _deployment_ready),
        ("Up-to-date", "integer", 0, lambda o: _get(o, "status", "updatedReplicas", default=0)),
        ("Available", "integer", 0, lambda o: _get(o, "status", "availableReplicas", default=0)),
        _AGE,
        *_POD_TEMPLATE_WIDE,
    ],
    ("apps", "ReplicaSet"): [
        _NAME,
        ("Desired", "integer", 0, lambda o: _get(o, "spec", "replicas", default=0)),
        ("Current", "integer", 0, lambda o: _get(o, "status", "replicas", default=0)),
        ("Ready", "integer", 0, lambda o: _get(o, "status", "readyReplicas", default=0)),
        _AGE,
        *_POD_TEMPLATE_WIDE,
    ],
    ("", "Service"): [
        _NAME,
        ("Type", "string", 0, lambda o: _get(o, "spec", "type", default="ClusterIP")),
        ("Cluster-IP", "string", 0, lambda o: _get(o, "spec", "clusterIP", default="<none>")),
        ("External-IP", "string", 0, lambda o: "<none>"),
        ("Port(s)", "string", 0, _ports),
        _AGE,
        ("Selector", "string", 1, _service_selector),
    ],
    ("", "Endpoints"): [_NAME, ("Endpoints", "string", 0, _endpoints), _AGE],
    ("", "Namespace"): [
        _NAME,
        ("Status", "string", 0, lambda o: _get(o, "status", "phase", default="Active")),
        _AGE,
    ],
    ("", "Event"): [
        (
            "Last Seen",
            "string",
            0,
            lambda o: _age(
                o.get("lastTimestamp")
                or o.get("eventTime")
                or o["metadata"].get("creationTimestamp")
            ),
        ),
        ("Type", "string", 0, lambda o: o.get("type", "")),
        ("Reason", "string", 0, lambda o: o.get("reason", "")),
        ("Object", "string", 0, _event_object),
        ("Message", "string", 0, lambda o: o.get("message", "")),
    ],
    ("autoscaling", "HorizontalPodAutoscaler"): [
        _NAME,
        (
            "Reference",
            "string",
            0,
            _hpa_reference,
        ),
        ("Targets", "string", 0, _hpa_targets),
        ("MinPods", "integer", 0, lambda o: _get(o, "spec", "minReplicas", default=1)),
        ("MaxPods", "integer", 0, lambda o: _get(o, "spec", "maxReplicas", default=0)),
        ("Replicas", "integer", 0, lambda o: _get(o, "status", "currentReplicas", default=0)),
        _AGE,
    ],
    ("apiextensions.k8s.io", "CustomResourceDefinition"): [
        _NAME,
        ("Created At", "date", 0, lambda o: o["metadata"].get("creationTimestamp", "")),
    ],
}


def columns_for(t: ResourceType, version: str) -> list[Column]:
    if t.crd_name is not None:
        crd_columns = t.printer_columns.get(version) or []
        if not crd_columns:
            return [_NAME, _AGE]
        cols: list[Column] = [_NAME]
        for col in crd_columns:
            cell: Callable[[Obj], Any] = functools.partial(_crd_cell, col=col)
            kind = "string" if col.get("type") == "date" else col.get("type", "string")
            cols.append((col["name"], kind, int(col.get("priority", 0)), cell))
        return cols
    return _BUILTIN_COLUMNS.get(t.key, [_NAME, _AGE])


def _row_object(obj: Obj, include: str) -> Obj | None:
    if include == "None":
        return None
    if include == "Object":
        return obj
    return {
        "kind": "PartialObjectMetadata",
        "apiVersion": "meta.k8s.io/v1",
        "metadata": obj["metadata"],
    }


def table(
    t: ResourceType, version: str, objects: list[Obj], resource_version: str, include: str
) -> Obj:
    cols = columns_for(t, version)
    return {
        "kind": "Table",
        "apiVersion": "meta.k8s.io/v1",
        "metadata": {"resourceVersion": resource_version},
        "columnDefinitions": [
            {
                "name": name,
                "type": typ,
                "format": "name" if name == "Name" else "",
                "description": "",
                "priority": prio,
            }
            for name, typ, prio, _ in cols
        ],
        "rows": [
            {"cells": [fn(o) for _, _, _, fn in cols], "object": _row_object(o, include)}
            for o in objects
        ],
    }
