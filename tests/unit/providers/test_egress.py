"""The egress policy (pure: URL form, addresses, the allow-list) and the bounded exchange
against local stubs: deadline, body limit, pinned address, no redirects, no body reflected."""

from __future__ import annotations

import time

import pytest

from kubectl_canary.egress import bounded
from kubectl_canary.egress.policy import EgressError, EgressPolicy, parse_url

from .conftest import Answer, HttpStub

OPEN = EgressPolicy()


@pytest.mark.parametrize(
    ("url", "words"),
    [
        ("ftp://prom/", "scheme"),
        ("http://prom/x#", "fragment"),
        ("http://user:pw@prom/", "userinfo"),
        ("http://@prom/", "userinfo"),
        ("http:///path", "no host"),
        ("http://prom /", "spaces"),
        ("http://prom:99999/", "cannot be parsed"),
    ],
)
def test_malformed_urls_are_refused(url: str, words: str) -> None:
    with pytest.raises(EgressError, match=words):
        parse_url(url)


def test_a_metrics_address_has_no_query() -> None:
    assert parse_url("http://prom/?a=1").path == "/?a=1"
    with pytest.raises(EgressError, match="query string"):
        parse_url("http://prom/?a=1", allow_query=False)


@pytest.mark.parametrize(
    ("address", "what"),
    [
        ("127.0.0.1", "loopback"),
        ("127.8.9.1", "loopback"),
        ("::1", "loopback"),
        ("169.254.169.254", "metadata"),
        ("fd00:ec2::254", "metadata"),
        ("100.100.100.200", "metadata"),
        ("0.0.0.0", "unspecified"),
        ("224.0.0.1", "multicast"),
        ("255.255.255.255", "broadcast"),
        ("240.0.0.1", "reserved"),
        ("::ffff:127.0.0.1", "loopback"),
        ("fe80::1", "link-local"),
    ],
)
def test_special_addresses_are_denied(address: str, what: str) -> None:
    host = f"[{address}]" if ":" in address else address
    with pytest.raises(EgressError, match=f"denied: .*{what}"):
        OPEN.precheck(f"http://{host}:9090/")


def test_ordinary_addresses_pass_and_names_wait_for_resolution() -> None:
    for url in ("http://10.0.0.5:9090", "http://prometheus.monitoring:9090", "https://8.8.8.8/"):
        OPEN.precheck(url)
    with pytest.raises(EgressError, match="loopback"):
        OPEN.precheck("http://localhost:9090/")


def test_a_name_is_judged_by_every_address_it_resolves_to() -> None:
    def rebinding(host: str, port: int) -> list[str]:
        return ["10.1.2.3", "127.0.0.1"]

    with pytest.raises(EgressError, match="127.0.0.1 is a loopback address"):
        OPEN.resolve("http://evil.example:80/", rebinding)
    target, addresses = OPEN.resolve("http://ok.example/", lambda h, p: ["10.1.2.3"])
    assert (target.host, target.port, addresses) == ("ok.example", 80, ["10.1.2.3"])


def test_the_api_server_is_denied_by_name_and_address() -> None:
    policy = EgressPolicy.build([], api_hosts=["kubernetes.default.svc", "10.96.0.1"])
    with pytest.raises(EgressError, match="the API server"):
        policy.precheck("https://kubernetes.default.svc/api")
    with pytest.raises(EgressError, match="the API server"):
        policy.resolve("https://k8s.example/", lambda h, p: ["10.96.0.1"])


def test_the_allow_list_admits_by_origin_and_path_prefix() -> None:
    policy = EgressPolicy.build(["http://127.0.0.1:9090/prom"], default="deny")
    policy.precheck("http://127.0.0.1:9090/prom")
    policy.precheck("http://127.0.0.1:9090/prom/api/v1/query?query=up")
    for url in (
        "http://127.0.0.1:9090/prometheus",  # a prefix of the path segment is not enough
        "http://127.0.0.1:9091/prom",
        "https://127.0.0.1:9090/prom",
        "http://10.0.0.1/",  # deny: only the list
    ):
        with pytest.raises(EgressError, match="denied"):
            policy.precheck(url)


def test_bad_policy_entries_are_reported() -> None:
    with pytest.raises(EgressError, match="--allow-egress 'http://a#'"):
        EgressPolicy.build(["http://a#"])
    with pytest.raises(EgressError, match="egress default"):
        EgressPolicy.build([], default="maybe")


# ----- the bounded exchange -----


def admit(stub: HttpStub) -> EgressPolicy:
    return EgressPolicy.build([stub.url])


def test_loopback_is_never_connected_to_without_the_allow_list(http_stub: HttpStub) -> None:
    with pytest.raises(EgressError, match="loopback"):
        bounded.request(OPEN, "GET", http_stub.url, deadline_seconds=2, max_bytes=10)
    assert http_stub.received == []


def test_a_body_over_the_limit_is_refused_announced_or_not(http_stub: HttpStub) -> None:
    for announce in (True, False):
        http_stub.respond = lambda _, a=announce: Answer(stream_bytes=8 << 20, announce=a)
        with pytest.raises(bounded.CallError, match="answer larger than 1 MiB"):
            bounded.request(
                admit(http_stub), "GET", http_stub.url, deadline_seconds=10, max_bytes=1 << 20
            )


def test_the_deadline_bounds_the_whole_exchange_not_each_read(http_stub: HttpStub) -> None:
    # A byte every 0.2 s: each read is quick, the whole answer would take 20 s.
    http_stub.respond = lambda _: Answer(body=b"x" * 100, drip_seconds=0.2)
    began = time.monotonic()
    with pytest.raises(bounded.CallError, match="no complete answer within 1s"):
        bounded.request(admit(http_stub), "GET", http_stub.url, deadline_seconds=1, max_bytes=1000)
    assert time.monotonic() - began < 5


def test_redirects_are_not_followed(http_stub: HttpStub) -> None:
    http_stub.respond = lambda _: Answer(status=302, body=b"moved")
    reply = bounded.request(
        admit(http_stub), "GET", http_stub.url, deadline_seconds=2, max_bytes=99
    )
    assert reply.status == 302 and len(http_stub.received) == 1


def test_the_connection_goes_to_the_judged_address(http_stub: HttpStub) -> None:
    port = int(http_stub.url.rsplit(":", 1)[1])
    policy = EgressPolicy.build([f"http://gate.example:{port}"])
    http_stub.respond = lambda _: Answer(body=b"ok")
    reply = bounded.request(
        policy,
        "GET",
        f"http://gate.example:{port}/x",
        deadline_seconds=2,
        max_bytes=10,
        resolver=lambda host, p: ["127.0.0.1"],
    )
    assert reply.body == b"ok"
    assert http_stub.received[0].headers["Host"] == f"gate.example:{port}"


def test_server_text_is_cleaned_and_cut() -> None:
    assert bounded.clean_text("a\nb\x1b[31m  c" + "x" * 300, 10) == "a b [31m c…"
    assert bounded.size_text(1 << 20) == "1 MiB" and bounded.size_text(1000) == "1000 bytes"
