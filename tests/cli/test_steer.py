"""abort / promote / pause / resume / retry: intent written, acknowledgement awaited."""

from __future__ import annotations

import json

import pytest

from kubectl_canary.api.model import REQUEST_ANNOTATION
from tests.cli import samples


def agent_answers(accepted: bool = True, message: str = ""):
    """A hook playing the agent: acknowledge each new request annotation on the next write."""

    def hook(fake, verb, obj):
        if obj["kind"] != "Canary" or verb != "patch":
            return
        raw = obj["metadata"].get("annotations", {}).get(REQUEST_ANNOTATION)
        if raw is None:
            return
        req = json.loads(raw)

        def acknowledge(stored):
            stored["status"]["lastRequest"] = {
                "id": req["id"],
                "action": req["action"],
                "accepted": accepted,
                "message": message,
                "time": "2026-11-27T10:00:01Z",
            }

        fake.edit("Canary", obj["metadata"]["name"], acknowledge)

    return hook


@pytest.mark.parametrize("action", ["abort", "promote", "pause"])
def test_request_is_written_and_acknowledged(run, fake, action):
    samples.release(fake)
    fake.on_write.append(agent_answers(message="done"))
    result = run(action, "mhs")
    assert result.exit_code == 0, result.output
    assert result.output == f"canary mhs: {action} accepted: done\n"
    req = json.loads(fake.find("Canary", "mhs")["metadata"]["annotations"][REQUEST_ANNOTATION])
    assert req["action"] == action and len(req["id"]) == 36
    assert "skipAnalysis" not in req


def test_promote_skip_analysis_is_in_the_request(run, fake):
    samples.release(fake)
    fake.on_write.append(agent_answers())
    assert run("promote", "mhs", "--skip-analysis").exit_code == 0
    req = json.loads(fake.find("Canary", "mhs")["metadata"]["annotations"][REQUEST_ANNOTATION])
    assert req["skipAnalysis"] is True


def test_agent_refusal_is_one_line_and_exit_1(run, fake):
    samples.release(fake)
    fake.on_write.append(agent_answers(accepted=False, message="a promotion is under way"))
    result = run("abort", "mhs")
    assert result.exit_code == 1
    assert result.stderr == "error: the agent refused to abort mhs: a promotion is under way\n"


def test_no_acknowledgement_times_out_with_a_hint(run, fake, clock):
    samples.release(fake)
    result = run("pause", "mhs", "--timeout", "5")
    assert result.exit_code == 1
    assert "did not acknowledge the pause request within 5s" in result.stderr
    assert 1005 <= clock.t < 1006


@pytest.mark.parametrize(
    ("action", "status", "reason"),
    [
        ("retry", {"phase": "Succeeded"}, "is Succeeded, not Failed"),
        ("resume", {"phase": "Progressing"}, "is not paused (Progressing)"),
        ("pause", {"phase": "Progressing", "paused": True}, "is already paused"),
        ("abort", {"phase": "Succeeded"}, "no release in progress to abort"),
        ("promote", {"phase": "Failed"}, "no release in progress to promote"),
        ("promote", {"phase": "Promoting"}, "already being promoted (Promoting)"),
        ("abort", {"phase": "Finalising"}, "too late to abort"),
        ("pause", {"phase": "Initialized"}, "no release in progress to pause"),
    ],
)
def test_senseless_requests_are_refused_before_writing(run, fake, action, status, reason):
    c = samples.canary()
    c["status"].update(status)
    fake.add(c)
    result = run(action, "mhs")
    assert result.exit_code == 1
    assert reason in result.stderr and result.stderr.count("\n") == 1
    assert not [w for w in fake.writes if w[0] == "patch"]


def test_retry_of_failed_canary_is_sent(run, fake):
    samples.release(fake, phase="Failed", weight=0, failed=5)
    fake.on_write.append(agent_answers(message="analysing mhs.test again"))
    result = run("retry", "mhs")
    assert result.exit_code == 0, result.output
    assert "retry accepted: analysing mhs.test again" in result.output
