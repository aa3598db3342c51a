"""The agent's command line: defaults, namespaces, and clear refusals of bad values."""

from __future__ import annotations

import pytest

from agent.main import parse_options, split_list


def test_defaults() -> None:
    opts = parse_options([])
    assert opts.namespaces == ()
    assert opts.args.provider == "kubernetes"
    assert opts.args.leader_elect is True
    assert opts.timing.lease_duration == 15.0
    assert opts.listen == ("0.0.0.0", 8080)
    assert opts.args.shards == 1


def test_test_settings() -> None:
    opts = parse_options(
        [
            "--lease-duration",
            "2s",
            "--listen",
            "127.0.0.1:0",
            "--no-leader-elect",
            "--watch-namespace",
            "a,b",
            "--watch-namespace",
            "c",
            "--min-interval",
            "500ms",
        ]
    )
    assert opts.timing.lease_duration == 2.0
    assert opts.listen == ("127.0.0.1", 0)
    assert opts.args.leader_elect is False
    assert opts.namespaces == ("a", "b", "c")
    assert opts.args.min_interval == 0.5


@pytest.mark.parametrize(
    "argv",
    [
        ["--lease-duration", "0.5s"],
        ["--listen", "8080"],
        ["--concurrency", "0"],
        ["--concurrency", "8", "--max-concurrency", "4"],
        ["--namespace-concurrency", "0"],
        ["--provider", "linkerd"],
        ["--shards", "0"],
        ["--shards", "3", "--no-leader-elect"],
    ],
)
def test_bad_values_exit_with_usage(argv: list[str], capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exc:
        parse_options(argv)
    assert exc.value.code == 2
    assert "error:" in capsys.readouterr().err


def test_split_list_dedups() -> None:
    assert split_list(["a, b", "a", ""]) == ("a", "b")
