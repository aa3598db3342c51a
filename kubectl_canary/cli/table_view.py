"""What `kubectl canary status` prints for many canaries: the table (plain and wide).

It reads the Canary dicts directly rather than through the typed model: listing hundreds of
canaries must stay as quick as `kubectl get`, and a canary with an invalid spec still gets
its row.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from kubectl_canary.cli.api_names import DEFAULT_THRESHOLD
from kubectl_canary.cli.colour import PLAIN, Style, cut
from kubectl_canary.cli.render import age, one_line, table

Obj = dict[str, Any]


def _status(obj: Obj) -> Obj:
    status = obj.get("status")
    return status if isinstance(status, dict) else {}


def _threshold(obj: Obj) -> int:
    analysis = (obj.get("spec") or {}).get("analysis") or {}
    value = analysis.get("threshold", DEFAULT_THRESHOLD)
    return value if isinstance(value, int) else DEFAULT_THRESHOLD


NOT_SEEN = "<not seen>"  # no status yet: the agent has not picked the canary up
INVALID = "Invalid"  # shown for a Canary the agent marked Valid=False; its phase stays Flagger's


def not_valid(obj: Obj) -> Obj | None:
    """The agent's `Valid` condition when it says False (a spec the agent will not act on)."""
    for condition in _status(obj).get("conditions") or []:
        if isinstance(condition, dict) and condition.get("type") == "Valid":
            return condition if condition.get("status") == "False" else None
    return None


def _phase(obj: Obj, style: Style) -> str:
    status = _status(obj)
    if (obj.get("metadata") or {}).get("deletionTimestamp"):
        return style.phase("Terminating")
    if not_valid(obj) is not None:
        return style.phase(INVALID)
    return style.phase(str(status.get("phase") or NOT_SEEN), bool(status.get("paused")))


def _last_message(obj: Obj) -> str:
    history = _status(obj).get("history") or []
    return str(history[-1].get("message", "")) if history else ""


def canary_rows(
    items: list[Obj], now: datetime, all_namespaces: bool, wide: bool, style: Style = PLAIN
) -> str:
    headers = ["name", "phase", "weight", "failed", "last transition"]
    if all_namespaces:
        headers.insert(0, "namespace")
    if wide:
        headers += ["target", "provider", "message"]
    rows = []
    for obj in sorted(
        items, key=lambda o: (o["metadata"].get("namespace", ""), o["metadata"]["name"])
    ):
        meta, status, spec = obj["metadata"], _status(obj), obj.get("spec") or {}
        row: list[Any] = [
            meta["name"],
            _phase(obj, style),
            status.get("canaryWeight", 0),
            f"{status.get('failedChecks', 0)}/{_threshold(obj)}",
            age(status.get("lastTransitionTime"), now),
        ]
        if all_namespaces:
            row.insert(0, meta.get("namespace", ""))
        if wide:
            target = (spec.get("targetRef") or {}).get("name", "")
            row += [
                f"Deployment/{target}",
                spec.get("provider", "<agent default>"),
                cut(one_line(_last_message(obj)), 80),
            ]
        rows.append(row)
    return table(headers, rows)
