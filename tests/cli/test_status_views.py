"""`status` for a person (issue 13): icons and colour on a terminal, `--wait` progress and why a
release failed, `-w` fitted to the terminal, invalid Canaries, pasteable hints, the provider."""

from __future__ import annotations

import json

from kubectl_canary.cli.colour import visible_len
from kubectl_canary.cli.install_settings import SETTINGS_ANNOTATION
from tests.cli import samples

TERMINAL = (160, 60)


def _table(fake):
    samples.release(fake)
    fake.add(samples.canary("podinfo", phase="Succeeded", weight=0, failed=0))
    fake.add(samples.canary("held", paused=True))
    fake.add(samples.canary("bad", phase="Failed", weight=0, failed=5))


# ----- colour and icons -----


def test_table_on_a_terminal_has_icons_and_colour(run, fake, golden):
    _table(fake)
    result = run("status", terminal=TERMINAL)
    assert result.exit_code == 0, result.output
    golden("status_table_tty.txt", result.output)


def test_no_color_keeps_icons_and_drops_escapes(run, fake, golden):
    _table(fake)
    by_env = run("status", terminal=TERMINAL, env={"NO_COLOR": "1"})
    by_flag = run("status", "--no-color", terminal=TERMINAL)
    assert by_env.output == by_flag.output
    assert "\x1b[" not in by_env.output
    golden("status_table_tty_no_color.txt", by_env.output)


def test_an_empty_no_color_does_not_count(run, fake):
    _table(fake)
    assert "\x1b[32m✔ Succeeded" in run("status", terminal=TERMINAL, env={"NO_COLOR": ""}).output


def test_piped_output_has_neither(run, fake):
    _table(fake)
    out = run("status").output
    assert "\x1b[" not in out and "✔" not in out and "held      Progressing (paused)" in out


def test_detail_on_a_terminal(run, fake, golden):
    samples.release(fake)
    result = run("status", "mhs", terminal=TERMINAL)
    assert result.exit_code == 0, result.output
    golden("status_detail_tty.txt", result.output)


# ----- --wait -----


def _agent_fails_at(fake, t_fail: float):
    def agent(t: float) -> None:
        canary = fake.find("Canary", "mhs")
        if t >= t_fail - 1 and canary["status"]["canaryWeight"] == 20:
            fake.edit("Canary", "mhs", lambda c: c["status"].update(canaryWeight=30))
        if t >= t_fail and canary["status"]["phase"] != "Failed":

            def fail(c):
                c["status"].update(phase="Failed", canaryWeight=0, failedChecks=5)
                rollback = "Rolling back mhs.test failed checks threshold reached 5"
                c["status"]["history"].append(
                    samples.entry("2026-11-27T10:02:00Z", rollback, "Warning")
                )

            fake.edit("Canary", "mhs", fail)

    return agent


def test_wait_prints_each_phase_change_and_step_on_stderr(run, fake, clock):
    samples.release(fake)
    clock.on_sleep.append(_agent_fails_at(fake, 1003))
    result = run("status", "mhs", "--wait")
    assert result.exit_code == 1
    assert result.stdout == ""
    assert result.stderr.splitlines() == [
        "2026-11-27T10:00:00Z  mhs  Progressing, canary weight 20%, failed checks 1/5",
        "2026-11-27T10:00:00Z  mhs  Progressing, canary weight 30%, failed checks 1/5",
        "2026-11-27T10:00:00Z  mhs  Failed, canary weight 0%, failed checks 5/5: "
        "Rolling back mhs.test failed checks threshold reached 5",
        "error: canary mhs failed: request-success-rate 57.14% < 99% (5 of 5 failed checks)",
    ]


def test_wait_quiet_prints_only_the_outcome(run, fake, clock):
    samples.release(fake)
    clock.on_sleep.append(_agent_fails_at(fake, 1003))
    result = run("status", "mhs", "--wait", "--quiet")
    assert result.exit_code == 1
    assert result.stderr.count("\n") == 1 and result.stderr.startswith("error: canary mhs failed")


def test_wait_names_a_rollback_that_no_metric_caused(run, fake):
    deadline = "Rolling back mhs.test progress deadline exceeded canary deployment mhs.test"
    history = samples.canary()["status"]["history"] + [
        samples.entry("2026-11-27T09:59:50Z", deadline, "Warning")
    ]
    samples.release(fake, phase="Failed", weight=0, failed=1, history=history)
    result = run("status", "mhs", "--wait", "-q", "--timeout", "600")
    assert result.exit_code == 1
    assert result.stderr == f"error: canary mhs failed: {deadline}\n"


# ----- -w fits the terminal -----


def test_watch_detail_trims_history_and_cuts_lines_to_the_terminal(run, fake):
    halt = "Halt mhs.test advancement success rate 57.14% < 99%"
    extra = [
        samples.entry(f"2026-11-27T09:59:{50 + i}Z", f"{halt} (check {i}) " * 2, "Warning")
        for i in range(8)
    ]
    samples.release(fake, history=samples.canary()["status"]["history"] + extra)
    result = run("status", "mhs", "-w", "-n", "test", terminal=(70, 30))
    assert result.exit_code == 0, result.output
    frame = result.output.split("\x1b[H\x1b[2J")[-1].rstrip("\n")
    lines = frame.splitlines()
    assert len(lines) == 29  # the whole screen but the cursor's line
    assert max(visible_len(line) for line in lines) == 70
    assert lines[-1].startswith("  2026-11-27T09:59:57Z")  # the newest entry is kept
    earlier = [line for line in lines if "earlier entries" in line]
    assert earlier == ["  … 12 earlier entries, `kubectl canary status mhs` for all"]


def test_watch_list_says_what_does_not_fit(run, fake):
    for i in range(30):
        fake.add(samples.canary(f"app{i:02}"))
    result = run("status", "-w", terminal=(100, 10))
    frame = result.output.split("\x1b[H\x1b[2J")[-1].rstrip("\n").splitlines()
    assert len(frame) == 9
    assert frame[-1] == "… 23 more lines (a taller terminal shows them)"


def test_watch_piped_is_not_cut(run, fake):
    extra = [dict(samples.canary()["status"]["history"][0], message="x" * 200)] * 40
    samples.release(fake, history=extra)
    result = run("status", "mhs", "-w")
    assert result.output.count("x" * 200) == 40


# ----- Invalid -----


def _invalid(fake, reason="InvalidSpec", message=""):
    message = message or (
        "Invalid spec: invalid Canary:\n"
        "  spec.analysis.maxWeight: must be omitted or equal the last of stepWeights (20), got 50\n"
        "  spec.analysis.metrics[1].name: duplicate of metrics[0], got 'request-success-rate'"
    )
    condition = {
        "type": "Valid",
        "status": "False",
        "reason": reason,
        "message": message,
        "lastTransitionTime": "2026-11-27T09:58:00Z",
        "lastUpdateTime": "2026-11-27T09:58:00Z",
    }
    history = samples.canary()["status"]["history"][:1] + [
        samples.entry("2026-11-27T09:58:00Z", message, "Warning", reason)
    ]
    c = samples.canary("broken", phase="Initializing", weight=0, failed=0, history=history)
    c["status"]["conditions"] = [condition]
    return c


def test_table_shows_invalid_and_keeps_one_line_per_row(run, fake, golden):
    samples.release(fake)
    fake.add(_invalid(fake))
    result = run("status", "-o", "wide")
    assert result.exit_code == 0, result.output
    assert len(result.output.splitlines()) == 3
    golden("status_table_wide_invalid.txt", result.output)


def test_wait_says_the_canary_is_invalid(run, fake):
    fake.add(_invalid(fake))
    result = run("status", "broken", "--wait", "--timeout", "3")
    assert result.exit_code == 1
    assert result.stderr.splitlines()[0] == (
        "2026-11-27T10:00:00Z  broken  Invalid, canary weight 0%, failed checks 0/5: "
        "Invalid spec: invalid Canary: spec.analysis.maxWeight: must be omitted or equal the "
        "last of stepWeights (20), got 50 · spec.analysis.metrics[1].name: duplicate of "
        "metrics[0], got 'request-success-rate'"
    )


def test_detail_of_an_unparseable_spec_lists_every_problem(run, fake, golden):
    c = _invalid(fake)
    c["spec"]["analysis"]["stepWeights"] = [10, 20]
    c["spec"]["analysis"]["metrics"][1]["name"] = "request-success-rate"
    fake.add(c)
    result = run("status", "broken")
    assert result.exit_code == 0, result.output
    golden("status_detail_invalid.txt", result.output)


def test_detail_of_a_spec_the_policy_refuses_lists_its_problems(run, fake):
    message = "host * is a wildcard; gateway istio-system/open is not allowed"
    fake.add(_invalid(fake, message=message))
    out = run("status", "broken").output
    assert "Phase:         Invalid since 2m (phase Initializing)" in out
    assert "Problems (InvalidSpec):\n  - host * is a wildcard\n" in out
    assert "  - gateway istio-system/open is not allowed\n" in out


def test_crd_printer_column_shows_the_valid_condition():
    from kubectl_canary.cli.manifests import crd_documents
    from kubectl_canary.sandbox.tables import jsonpath

    crd = next(d for d in crd_documents() if d["spec"]["names"]["kind"] == "Canary")
    columns = crd["spec"]["versions"][0]["additionalPrinterColumns"]
    valid = next(c for c in columns if c["name"] == "Valid")
    assert jsonpath(_invalid(None), valid["jsonPath"]) == ["False"]


# ----- hints carry -n and --context -----


def test_hints_carry_the_namespace_and_context(run, fake):
    fake.add(samples.canary(namespace="prod", paused=True))
    out = run("status", "mhs", "-n", "prod", "--context", "kind").output
    assert "run `kubectl canary resume mhs -n prod --context kind` to continue" in out
    fake.add(samples.canary(namespace="test", phase="Failed"))
    assert "`kubectl canary retry mhs` to analyse" in run("status", "mhs").output


# ----- the provider of a Canary without spec.provider -----


def _agent_account(fake, provider):
    fake.add(
        {
            "apiVersion": "v1",
            "kind": "ServiceAccount",
            "metadata": {
                "name": "kubectl-canary-agent",
                "namespace": "kubectl-canary",
                "annotations": {SETTINGS_ANNOTATION: json.dumps({"provider": provider})},
            },
        }
    )


def test_detail_uses_the_agents_default_provider(run, fake):
    samples.release(fake)
    fake.edit("Canary", "mhs", lambda c: c["spec"].pop("provider"))
    _agent_account(fake, "istio")
    out = run("status", "mhs").output
    assert "Provider:      istio (agent default)" in out
    assert "Routes (VirtualService mhs):" in out


def test_detail_says_when_the_agents_default_is_unknown(run, fake):
    samples.release(fake)
    fake.edit("Canary", "mhs", lambda c: c["spec"].pop("provider"))
    out = run("status", "mhs").output
    assert "Provider:      kubernetes (agent default unknown)" in out
    assert "Routes (Service mhs, by ready pods):" in out
