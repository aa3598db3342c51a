"""The bounded, ordered release history kept in `status.history`.

Every Event the core emits is also appended here (same type, reason and message), so
`kubectl canary status NAME` shows a timeline nothing can lose: Kubernetes aggregates and
expires Events, status does not.
"""

from __future__ import annotations

from kubectl_canary.api.model import HISTORY_LIMIT, HistoryEntry


def append(
    history: tuple[HistoryEntry, ...], entry: HistoryEntry, limit: int = HISTORY_LIMIT
) -> tuple[HistoryEntry, ...]:
    """`history` plus `entry`, keeping only the newest `limit` entries."""
    combined = (*history, entry)
    return combined[-limit:] if limit > 0 else ()


def repeats_last(history: tuple[HistoryEntry, ...], type_: str, reason: str, message: str) -> bool:
    """True when the newest entry already says exactly this (a wait that has not changed)."""
    if not history:
        return False
    last = history[-1]
    return (last.type, last.reason, last.message) == (type_, reason, message)
