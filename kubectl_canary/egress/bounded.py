"""One HTTP exchange with a URL the egress policy admits, bounded in every direction.

- one wall-clock deadline for the whole exchange (connect, send, headers, body), enforced by a
  timer that shuts the socket down: a per-read timeout let a server that drips a byte every few
  seconds hold a call for minutes;
- at most `max_bytes` of body are read (a Content-Length over it is refused before reading): a
  200 MiB answer read whole cost the agent ~600 MiB;
- the connection goes to an address the policy judged (TLS still verifies the URL's host name,
  sent as SNI), redirects are never followed and no proxy from the environment is used;
- failures are short messages that never contain the reply body: a body is whatever the server
  behind the URL says, and an internal page copied into Events is a leak.
"""

from __future__ import annotations

import contextlib
import http.client
import socket
import ssl
import threading
import time
from collections.abc import Mapping
from dataclasses import dataclass

from kubectl_canary.egress.policy import EgressError, EgressPolicy, Resolver, Target

_CHUNK = 64 << 10


class CallError(Exception):
    """The exchange failed; the message is safe to show (no body, no credentials)."""


@dataclass(frozen=True)
class Reply:
    status: int
    body: bytes
    reason: str = ""  # the status line's phrase ("Bad Gateway"), cut short


def system_resolver(host: str, port: int) -> list[str]:
    infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    found: list[str] = []
    for info in infos:
        address = str(info[4][0])
        if address not in found:
            found.append(address)
    return found


def clean_text(text: str, limit: int = 120) -> str:
    """A server-chosen string (Prometheus' `error`) made safe to show: printable characters
    only, whitespace collapsed, at most `limit` characters."""
    printable = "".join(ch if ch.isprintable() else " " for ch in text)
    collapsed = " ".join(printable.split())
    return collapsed[:limit] + ("…" if len(collapsed) > limit else "")


def size_text(count: int) -> str:
    if count >= 1 << 20 and count % (1 << 20) == 0:
        return f"{count >> 20} MiB"
    if count >= 1 << 10 and count % (1 << 10) == 0:
        return f"{count >> 10} KiB"
    return f"{count} bytes"


class _Pinned(http.client.HTTPConnection):
    """An HTTP connection to a fixed address, whatever the URL's host resolves to now."""

    def __init__(self, target: Target, address: str, timeout: float) -> None:
        super().__init__(target.host, target.port, timeout=timeout)
        self._address = address
        # Our own reference: http.client drops `sock` once a response that closes the
        # connection is read, and the deadline must still be able to cut that read short.
        self.raw: socket.socket | None = None

    def connect(self) -> None:
        self.sock = self.raw = socket.create_connection((self._address, self.port), self.timeout)
        self.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)


class _PinnedTLS(_Pinned):
    def __init__(self, target: Target, address: str, timeout: float) -> None:
        super().__init__(target, address, timeout)
        self._context = ssl.create_default_context()

    def connect(self) -> None:
        super().connect()
        self.sock = self._context.wrap_socket(self.sock, server_hostname=self.host)


def request(
    policy: EgressPolicy,
    method: str,
    url: str,
    *,
    deadline_seconds: float,
    max_bytes: int,
    body: bytes | None = None,
    headers: Mapping[str, str] | None = None,
    allow_query: bool = True,
    resolver: Resolver = system_resolver,
) -> Reply:
    """The reply to one request; EgressError if the policy refuses the URL, CallError if the
    exchange fails, runs out of time, or the body is larger than `max_bytes`."""
    started = time.monotonic()
    target, addresses = policy.resolve(url, resolver, allow_query=allow_query)
    remaining = deadline_seconds - (time.monotonic() - started)
    if remaining <= 0:
        raise CallError(f"no answer within {deadline_seconds:g}s")
    kind = _PinnedTLS if target.scheme == "https" else _Pinned
    conn = kind(target, addresses[0], remaining)
    expired = threading.Event()

    def expire() -> None:
        expired.set()
        sock = conn.raw
        if sock is not None:
            with contextlib.suppress(OSError):
                sock.shutdown(socket.SHUT_RDWR)

    timer = threading.Timer(remaining, expire)
    timer.daemon = True
    timer.start()
    try:
        sent = dict(headers or {})
        sent.setdefault("User-Agent", "kubectl-canary")
        conn.request(method, target.path, body=body, headers=sent)
        response = conn.getresponse()
        length = response.getheader("Content-Length")
        if length is not None and length.isdigit() and int(length) > max_bytes:
            raise CallError(f"answer larger than {size_text(max_bytes)} ({length} bytes announced)")
        data = bytearray()
        while True:
            chunk = response.read(min(_CHUNK, max_bytes + 1 - len(data)))
            if not chunk:
                break
            data += chunk
            if len(data) > max_bytes:
                raise CallError(f"answer larger than {size_text(max_bytes)}")
        if expired.is_set():
            raise CallError(f"no complete answer within {deadline_seconds:g}s")
        return Reply(response.status, bytes(data), clean_text(response.reason or "", 40))
    except (EgressError, CallError):
        raise
    except (OSError, http.client.HTTPException, ValueError) as exc:
        if expired.is_set() or isinstance(exc, TimeoutError | socket.timeout):
            raise CallError(f"no complete answer within {deadline_seconds:g}s") from None
        raise CallError(_reason(exc)) from None
    finally:
        timer.cancel()
        conn.close()


def _reason(exc: BaseException) -> str:
    """A connection failure in a few words (an OSError's strerror, never a reply's text)."""
    if isinstance(exc, ssl.SSLCertVerificationError):
        return f"TLS certificate not trusted: {exc.verify_message}"
    if isinstance(exc, OSError) and exc.strerror:
        return str(exc.strerror)
    if isinstance(exc, http.client.HTTPException):
        return f"malformed HTTP answer ({type(exc).__name__})"
    return type(exc).__name__
