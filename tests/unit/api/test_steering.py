"""The steering rules, over every action, phase and pause state (the agent and the plugin
both refuse by them)."""

from __future__ import annotations

import itertools

import pytest

from kubectl_canary.api.model import Phase, RequestAction
from kubectl_canary.api.steering import Refusal, promote_refusal, refusal

IN_FLIGHT = {Phase.PROGRESSING, Phase.WAITING, Phase.WAITING_PROMOTION}


def expected(action: RequestAction, phase: Phase, paused: bool) -> Refusal | None:
    """The rules as the docs state them, written out case by case."""
    if action is RequestAction.RETRY:
        return None if phase is Phase.FAILED else Refusal.NOT_FAILED
    if action is RequestAction.RESUME:
        return None if paused else Refusal.NOT_PAUSED
    if phase in (Phase.PROMOTING, Phase.FINALISING):
        return Refusal.TOO_LATE
    if phase not in IN_FLIGHT:
        return Refusal.NOT_IN_FLIGHT
    if action is RequestAction.PAUSE and paused:
        return Refusal.ALREADY_PAUSED
    return None


@pytest.mark.parametrize(
    ("action", "phase", "paused"),
    list(itertools.product(RequestAction, Phase, (False, True))),
    ids=lambda v: str(v),
)
def test_every_action_in_every_phase(action: RequestAction, phase: Phase, paused: bool) -> None:
    assert refusal(action, phase, paused=paused) == expected(action, phase, paused)
    # The plugin passes the phase as the stored text.
    assert refusal(action, phase.value, paused=paused) == expected(action, phase, paused)
    assert refusal(action, phase, paused=paused, deleting=True) is Refusal.DELETING


def test_an_unknown_stored_phase_steers_nothing_but_resume_and_retry_rules() -> None:
    assert refusal(RequestAction.ABORT, "Bogus", paused=False) is Refusal.NOT_IN_FLIGHT
    assert refusal(RequestAction.RETRY, "Bogus", paused=False) is Refusal.NOT_FAILED
    assert refusal(RequestAction.RESUME, "Bogus", paused=True) is None


@pytest.mark.parametrize("phase", list(Phase), ids=str)
def test_promote_on_checks_needs_an_analysis_that_started(phase: Phase) -> None:
    analysing = phase in (Phase.PROGRESSING, Phase.WAITING_PROMOTION)
    assert promote_refusal(phase, analysis_started=True) is (
        None if analysing else Refusal.NOT_ANALYSING
    )
    assert promote_refusal(phase, analysis_started=False) is Refusal.NOT_ANALYSING
