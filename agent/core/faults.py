"""What status says of a tick that could not run the release loop, as the core decides it.

Three things stop a tick before or while it acts, and the runtime only reports them:
- the spec does not parse (`InvalidSpec`): `decide` cannot be called at all;
- an object of the user's stands where a generated one goes (`ObjectInTheWay`);
- writing the generated objects failed (`SyncFailed`): an API error or a provider's refusal.

The first two set `Valid=False`, the third leaves the conditions alone (nothing about the spec
is wrong). Each is one Warning in history and the same Event, reported once: again only when
the problem's message changes, so a problem lasting many ticks leaves status unchanged. The
status given is the stored one: nothing the failed tick decided is kept.
"""

from __future__ import annotations

from dataclasses import replace
from datetime import datetime

from agent.core import conditions, history
from agent.core.timestamps import format_time
from agent.core.types import Decision, EmitEvent
from kubectl_canary.api.model import CanaryStatus, Condition, HistoryEntry

INVALID_SPEC = "InvalidSpec"
OBJECT_IN_THE_WAY = "ObjectInTheWay"
SYNC_FAILED = "SyncFailed"
_WARNING = "Warning"


def invalid_spec(status: CanaryStatus, problem: str, now: datetime) -> Decision | None:
    """A spec that does not parse; None when status already says so."""
    return _not_valid(status, INVALID_SPEC, f"Invalid spec: {problem}", now)


def object_in_the_way(status: CanaryStatus, problem: str, now: datetime) -> Decision | None:
    """A user's object where a generated one goes; None when status already says so."""
    return _not_valid(status, OBJECT_IN_THE_WAY, f"Blocked: {problem}", now)


def sync_failed(status: CanaryStatus, problem: str, now: datetime) -> Decision | None:
    """An action of the tick failed; None when history already ends with this failure."""
    message = f"Reconciliation failed: {problem}"
    if history.repeats_last(status.history, _WARNING, SYNC_FAILED, message):
        return None
    return _warn(status, SYNC_FAILED, message, format_time(now))


def _not_valid(status: CanaryStatus, reason: str, message: str, now: datetime) -> Decision | None:
    current = conditions.find(status.conditions, conditions.VALID)
    if current is not None and current.status == "False" and current.message == message:
        return None
    stamp = format_time(now)
    # Set afresh, as the newest condition: a problem of another kind is a new problem.
    condition = Condition(conditions.VALID, "False", reason, message, stamp, stamp)
    others = tuple(c for c in status.conditions if c.type != conditions.VALID)
    return _warn(replace(status, conditions=(*others, condition)), reason, message, stamp)


def _warn(status: CanaryStatus, reason: str, message: str, stamp: str) -> Decision:
    entry = HistoryEntry(stamp, _WARNING, reason, message)
    reported = replace(status, history=history.append(status.history, entry))
    return Decision(reported, (EmitEvent(_WARNING, reason, message),))
