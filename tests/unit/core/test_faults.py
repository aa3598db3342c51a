"""What status records of a tick that could not run the release loop (agent/core/faults.py),
and the replica choice of a promotion with and without an HPA."""

from __future__ import annotations

from dataclasses import replace

import pytest

from agent.core import faults
from agent.core.types import EmitEvent, PromoteTemplate, Routes
from kubectl_canary.api.model import HISTORY_LIMIT, CanaryStatus, Condition, HistoryEntry, Phase
from tests.unit.core.builders import at, canary, in_phase, observe, run_tick, stamp, workload

PROMOTED = Condition("Promoted", "True", "Succeeded", "done", stamp(-600), stamp(-600))
EARLIER = HistoryEntry(stamp(-60), "Normal", "Synced", "Promotion completed!")
STORED = CanaryStatus(phase=Phase.SUCCEEDED, conditions=(PROMOTED,), history=(EARLIER,))

NOT_VALID = [
    pytest.param(faults.invalid_spec, "InvalidSpec", "Invalid spec: ", id="invalid-spec"),
    pytest.param(faults.object_in_the_way, "ObjectInTheWay", "Blocked: ", id="in-the-way"),
]


@pytest.mark.parametrize(("fault", "reason", "prefix"), NOT_VALID)
def test_a_spec_problem_sets_valid_false_and_one_warning(fault, reason, prefix) -> None:  # noqa: ANN001
    decision = fault(STORED, "stepWeight must be > 0", at(0))
    assert decision is not None
    message = prefix + "stepWeight must be > 0"
    valid = Condition("Valid", "False", reason, message, stamp(0), stamp(0))
    assert decision.status == replace(
        STORED,
        conditions=(PROMOTED, valid),
        history=(EARLIER, HistoryEntry(stamp(0), "Warning", reason, message)),
    )
    assert decision.actions == (EmitEvent("Warning", reason, message),)


@pytest.mark.parametrize(("fault", "reason", "prefix"), NOT_VALID)
def test_a_spec_problem_is_reported_once_until_its_message_changes(fault, reason, prefix) -> None:  # noqa: ANN001
    first = fault(STORED, "one", at(0))
    assert first is not None
    assert fault(first.status, "one", at(10)) is None
    second = fault(first.status, "two", at(20))
    assert second is not None
    valid = [c for c in second.status.conditions if c.type == "Valid"]
    assert valid == [Condition("Valid", "False", reason, prefix + "two", stamp(20), stamp(20))]
    assert [h.message for h in second.status.history][-2:] == [prefix + "one", prefix + "two"]


def test_a_valid_condition_turned_false_moves_last() -> None:
    valid = Condition("Valid", "True", "SpecValid", "Spec is valid.", stamp(-600), stamp(-600))
    status = replace(STORED, conditions=(valid, PROMOTED))
    decision = faults.invalid_spec(status, "bad", at(0))
    assert decision is not None
    assert [(c.type, c.status) for c in decision.status.conditions] == [
        ("Promoted", "True"),
        ("Valid", "False"),
    ]


def test_a_different_kind_of_problem_with_the_same_text_is_still_one_report() -> None:
    """The condition's message tells problems apart, and the prefixes differ by kind."""
    blocked = faults.object_in_the_way(STORED, "x", at(0))
    assert blocked is not None
    assert faults.invalid_spec(blocked.status, "x", at(1)) is not None


def test_a_failed_sync_is_a_warning_in_history_and_leaves_conditions_alone() -> None:
    decision = faults.sync_failed(STORED, "forbidden", at(0))
    assert decision is not None
    message = "Reconciliation failed: forbidden"
    assert decision.status == replace(
        STORED, history=(EARLIER, HistoryEntry(stamp(0), "Warning", "SyncFailed", message))
    )
    assert decision.actions == (EmitEvent("Warning", "SyncFailed", message),)


def test_a_failed_sync_is_reported_again_only_when_something_came_between() -> None:
    first = faults.sync_failed(STORED, "forbidden", at(0))
    assert first is not None
    assert faults.sync_failed(first.status, "forbidden", at(10)) is None
    other = faults.sync_failed(first.status, "timeout", at(20))
    assert other is not None
    again = faults.sync_failed(other.status, "forbidden", at(30))
    assert again is not None and len(again.status.history) == 4


def test_reports_keep_history_bounded() -> None:
    full = tuple(
        HistoryEntry(stamp(i), "Normal", "Synced", f"entry {i}") for i in range(HISTORY_LIMIT)
    )
    decision = faults.sync_failed(replace(STORED, history=full), "forbidden", at(0))
    assert decision is not None
    assert len(decision.status.history) == HISTORY_LIMIT
    assert decision.status.history[-1].reason == "SyncFailed"
    assert decision.status.history[0] == full[1]


@pytest.mark.parametrize("hpa", [False, True], ids=["no-hpa", "hpa"])
@pytest.mark.parametrize("skip_analysis", [False, True], ids=["analysed", "skipped"])
def test_a_promotion_copies_replicas_only_without_an_hpa(hpa: bool, skip_analysis: bool) -> None:
    status = in_phase(Phase.PROGRESSING, canary_weight=50 if not skip_analysis else 0)
    subject = canary(status, skip_analysis=skip_analysis)
    weights = Routes(100, 0) if skip_analysis else Routes(50, 50)
    obs = observe(target=workload(template_hash="h2"), routes=weights, hpa_present=hpa)
    decision = run_tick(subject, obs, at(0))
    promotions = [a for a in decision.actions if isinstance(a, PromoteTemplate)]
    assert promotions == [PromoteTemplate(with_replicas=not hpa)]
