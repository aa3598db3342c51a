"""Status: parse and render are exact inverses; the request annotation round-trips."""

from __future__ import annotations

from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from kubectl_canary.api.errors import InvalidResource
from kubectl_canary.api.model import (
    REQUEST_ANNOTATION,
    CanaryStatus,
    Condition,
    HistoryEntry,
    MetricValue,
    Phase,
    Request,
    RequestAck,
    RequestAction,
)
from kubectl_canary.api.parse import parse_canary, parse_request, parse_status
from kubectl_canary.api.render import (
    PROMOTED_CONDITION,
    promoted_condition,
    render_request,
    render_status,
)

text = st.text(max_size=12)
times = st.sampled_from(["", "2026-11-27T00:10:23Z", "2026-11-27T00:11:23Z"])
bound = st.one_of(st.none(), st.floats(allow_nan=False, allow_infinity=False))
statuses = st.builds(
    CanaryStatus,
    phase=st.sampled_from(list(Phase)),
    canary_weight=st.integers(0, 100),
    failed_checks=st.integers(0, 50),
    iterations=st.integers(0, 50),
    paused=st.booleans(),
    last_applied_spec=text,
    last_promoted_spec=text,
    last_failed_spec=text,
    tracked_configs=st.dictionaries(text, text, max_size=3),
    last_transition_time=times,
    waiting_since=times,
    last_analysis_time=times,
    observed_generation=st.integers(0, 2**40),
    conditions=st.lists(
        st.builds(
            Condition,
            type=st.sampled_from([PROMOTED_CONDITION, "Valid"]),
            status=st.sampled_from(["True", "False", "Unknown"]),
            reason=text,
            message=text,
            last_transition_time=times,
            last_update_time=times,
        ),
        max_size=2,
    ).map(tuple),
    history=st.lists(
        st.builds(
            HistoryEntry,
            time=times,
            type=st.sampled_from(["Normal", "Warning"]),
            reason=text,
            message=text,
        ),
        max_size=4,
    ).map(tuple),
    last_metrics=st.lists(
        st.builds(
            MetricValue,
            name=text,
            value=bound,
            min=bound,
            max=bound,
            passed=st.booleans(),
            time=times,
        ),
        max_size=3,
    ).map(tuple),
    last_request=st.one_of(
        st.none(),
        st.builds(
            RequestAck, id=text, action=text, accepted=st.booleans(), message=text, time=times
        ),
    ),
    primary_weight=st.integers(0, 100),
)


@given(statuses)
def test_parse_of_render_is_identity(status: CanaryStatus) -> None:
    assert parse_status(render_status(status)) == status


def test_render_is_camel_case_and_skips_defaults() -> None:
    status = CanaryStatus(
        phase=Phase.PROGRESSING,
        canary_weight=20,
        primary_weight=80,
        last_transition_time="2026-11-27T00:10:23Z",
        last_metrics=(
            MetricValue("request-success-rate", None, 99.0, None, False, "2026-11-27T00:10:23Z"),
        ),
        last_request=RequestAck("r1", "pause", True, "paused", "2026-11-27T00:10:23Z"),
    )
    assert render_status(status) == {
        "phase": "Progressing",
        "canaryWeight": 20,
        "primaryWeight": 80,
        "lastTransitionTime": "2026-11-27T00:10:23Z",
        # value null = "no data": kept, unlike an absent max
        "lastMetrics": [
            {
                "name": "request-success-rate",
                "value": None,
                "passed": False,
                "min": 99.0,
                "time": "2026-11-27T00:10:23Z",
            }
        ],
        "lastRequest": {
            "id": "r1",
            "action": "pause",
            "accepted": True,
            "message": "paused",
            "time": "2026-11-27T00:10:23Z",
        },
    }
    assert render_status(CanaryStatus()) == {"phase": "Initializing"}


def test_non_finite_metric_values_are_written_as_no_data() -> None:
    status = CanaryStatus(
        last_metrics=(MetricValue("x", float("nan"), float("-inf"), 1.0, False, ""),)
    )
    (written,) = render_status(status)["lastMetrics"]
    assert written == {"name": "x", "value": None, "passed": False, "max": 1.0}


def test_render_of_parse_is_identity_for_a_written_status() -> None:
    written: dict[str, Any] = {
        "phase": "Failed",
        "failedChecks": 5,
        "lastAppliedSpec": "abc",
        "lastPromotedSpec": "def",
        "lastFailedSpec": "abc",
        "trackedConfigs": {"configmap/settings": "123"},
        "observedGeneration": 4,
        "conditions": [
            {
                "type": "Promoted",
                "status": "False",
                "reason": "Failed",
                "message": "Canary analysis failed",
                "lastTransitionTime": "2026-11-27T00:10:23Z",
                "lastUpdateTime": "2026-11-27T00:10:23Z",
            }
        ],
        "history": [
            {
                "time": "2026-11-27T00:10:23Z",
                "type": "Warning",
                "reason": "Synced",
                "message": "Rolling back",
            }
        ],
    }
    assert render_status(parse_status(written)) == written


def test_parse_status_absent_is_default() -> None:
    assert parse_status(None) == CanaryStatus()


@pytest.mark.parametrize(
    ("status", "expected"),
    [
        ({"phase": "Done"}, "status.phase: must be one of Initializing, Initialized, Waiting"),
        ({"canaryWeight": "10"}, "status.canaryWeight: must be an integer, got '10'"),
        ({"conditions": [{"status": "True"}]}, "status.conditions[0].type: required"),
        (
            {"lastMetrics": [{"name": "x", "value": "n/a"}]},
            "status.lastMetrics[0].value: must be a number",
        ),
        ("Failed", "status: must be an object, got 'Failed'"),
    ],
)
def test_parse_status_rejects_malformed(status: Any, expected: str) -> None:
    with pytest.raises(InvalidResource) as raised:
        parse_status(status)
    assert expected in str(raised.value)


def test_parse_canary_includes_status() -> None:
    doc = {
        "metadata": {"name": "mhs", "namespace": "application", "generation": 3, "uid": "u"},
        "spec": {"targetRef": {"name": "mhs"}, "service": {"port": 9898}},
        "status": {"phase": "Succeeded", "canaryWeight": 0},
    }
    canary = parse_canary(doc, default_provider="istio")
    assert canary.status.phase is Phase.SUCCEEDED
    assert (canary.generation, canary.uid, canary.key, canary.display) == (
        3,
        "u",
        "application/mhs",
        "mhs.application",
    )
    assert canary.spec.provider == "istio"  # unset provider: the agent's default


@pytest.mark.parametrize(
    ("phase", "value", "reason"),
    [
        (Phase.SUCCEEDED, "True", "Succeeded"),
        (Phase.INITIALIZED, "True", "Initialized"),
        (Phase.FAILED, "False", "Failed"),
        (Phase.PROGRESSING, "Unknown", "Progressing"),
    ],
)
def test_promoted_condition(phase: Phase, value: str, reason: str) -> None:
    condition = promoted_condition(phase, message="m", now="t1")
    assert (condition.type, condition.status, condition.reason) == ("Promoted", value, reason)
    assert condition.last_transition_time == "t1"


def test_promoted_condition_transition_time_moves_only_on_change() -> None:
    first = promoted_condition(Phase.PROGRESSING, message="a", now="t1")
    same = promoted_condition(Phase.WAITING, message="b", now="t2", previous=first)
    assert (same.last_transition_time, same.last_update_time) == ("t1", "t2")
    done = promoted_condition(Phase.SUCCEEDED, message="c", now="t3", previous=same)
    assert done.last_transition_time == "t3"


@pytest.mark.parametrize(
    "request_",
    [
        Request("0b7c", RequestAction.PROMOTE, skip_analysis=True),
        Request("1", RequestAction.PROMOTE),
        Request("2", RequestAction.ABORT),
        Request("3", RequestAction.RETRY),
        Request("4", RequestAction.PAUSE),
        Request("5", RequestAction.RESUME),
    ],
)
def test_request_round_trip(request_: Request) -> None:
    assert parse_request({REQUEST_ANNOTATION: render_request(request_)}) == request_


def test_request_absent() -> None:
    assert parse_request(None) is None
    assert parse_request({"other": "x"}) is None


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("{not json", 'metadata.annotations["kubectl-canary.dev/request"]: must be JSON'),
        (
            '["promote"]',
            'metadata.annotations["kubectl-canary.dev/request"]: must be a JSON object',
        ),
        (
            '{"action": "promote"}',
            'metadata.annotations["kubectl-canary.dev/request"].id: required',
        ),
        (
            '{"id": "1", "action": "rollback"}',
            'request"].action: must be one of abort, promote, pause, resume, retry, got '
            "'rollback'",
        ),
        (
            '{"id": "1", "action": "abort", "skipAnalysis": true}',
            'request"].skipAnalysis: only applies to promote, not abort, got true',
        ),
        ('{"id": "1", "action": "abort", "force": true}', ".force: unknown field"),
    ],
)
def test_request_malformed(text: str, expected: str) -> None:
    with pytest.raises(InvalidResource) as raised:
        parse_request({REQUEST_ANNOTATION: text})
    assert expected in str(raised.value)
