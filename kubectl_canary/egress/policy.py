"""The egress policy: which URLs the agent (and doctor) may call on a tenant's behalf.

A URL is first parsed strictly: http or https, a host, no userinfo (`user:pw@` would send
credentials nobody configured, and hides the real host from a quick read), no fragment (a `#`
in a metrics server cut the appended `/api/v1/query?...` off, turning the agent into a fetcher
of any path), and for a metrics server no query string either. Then the addresses it resolves
to are judged, every one of them (a name with one bad address is refused):

- the operator's allow-list (`--allow-egress URL`, a scheme+host+port+path prefix) admits a
  URL whatever its address: the operator named it;
- otherwise loopback, link-local (the cloud metadata endpoint 169.254.169.254 lives there),
  unspecified, multicast, broadcast and reserved addresses, and the API server's own addresses,
  are refused; so is everything when the default is `deny`.

The caller connects to one of the addresses judged here, never resolving the name again, so a
name cannot resolve to a public address for the check and to 127.0.0.1 for the connection.
Everything here is pure given the resolver passed in.
"""

from __future__ import annotations

import ipaddress
import urllib.parse
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field

IP = ipaddress.IPv4Address | ipaddress.IPv6Address
Resolver = Callable[[str, int], list[str]]

DEFAULTS = ("allow", "deny")
_PORTS = {"http": 80, "https": 443}
# Addresses of cloud metadata services outside the link-local range (AWS IPv6, Alibaba).
_METADATA = {ipaddress.ip_address("fd00:ec2::254"), ipaddress.ip_address("100.100.100.200")}


class EgressError(ValueError):
    """A URL the policy refuses; the message says why in a few words, never more."""


@dataclass(frozen=True)
class Target:
    """A parsed URL: what the policy judges and the caller connects to."""

    scheme: str
    host: str  # lower case, IPv6 without brackets
    port: int
    path: str  # path plus query, at least "/"

    @property
    def origin(self) -> str:
        host = f"[{self.host}]" if ":" in self.host else self.host
        default = _PORTS[self.scheme] == self.port
        return f"{self.scheme}://{host}" + ("" if default else f":{self.port}")


def parse_url(url: str, *, allow_query: bool = True) -> Target:
    """The URL as a Target, or EgressError naming what is wrong with it."""
    if any(ord(ch) < 0x21 or ord(ch) == 0x7F for ch in url):
        raise EgressError("URL has spaces or control characters")
    try:
        parts = urllib.parse.urlsplit(url)
        port = parts.port
    except ValueError as exc:
        raise EgressError(f"URL cannot be parsed: {exc}") from None
    scheme = parts.scheme.lower()
    if scheme not in _PORTS:
        raise EgressError(f"URL scheme must be http or https, not {parts.scheme or 'none'!r}")
    if "#" in url:
        raise EgressError("URL has a fragment ('#'), which would cut off the request path")
    if parts.username is not None or "@" in parts.netloc:
        raise EgressError("URL has userinfo ('user@'); credentials belong in a Secret")
    if not parts.hostname:
        raise EgressError("URL has no host")
    if parts.query and not allow_query:
        raise EgressError("metrics server URL has a query string ('?')")
    path = parts.path or "/"
    if parts.query:
        path += "?" + parts.query
    return Target(scheme, parts.hostname.lower(), port or _PORTS[scheme], path)


def literal_ip(host: str) -> IP | None:
    try:
        return ipaddress.ip_address(host)
    except ValueError:
        return None


def forbidden_reason(ip: IP) -> str | None:
    """Why an address is never called on a tenant's behalf, or None."""
    if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped is not None:
        return forbidden_reason(ip.ipv4_mapped)
    if ip in _METADATA:
        return "a cloud metadata address"
    for test, what in (
        (ip.is_loopback, "a loopback address"),
        (ip.is_link_local, "a link-local address (cloud metadata lives there)"),
        (ip.is_unspecified, "the unspecified address"),
        (ip.is_multicast, "a multicast address"),
        (ip == ipaddress.IPv4Address("255.255.255.255"), "the broadcast address"),
        (ip.is_reserved, "a reserved address"),
    ):
        if test:
            return what
    return None


@dataclass(frozen=True)
class AllowRule:
    """One `--allow-egress` entry: URLs with this origin whose path starts with `path`."""

    target: Target

    @staticmethod
    def parse(url: str) -> AllowRule:
        return AllowRule(parse_url(url))

    def admits(self, target: Target) -> bool:
        mine = self.target
        if (mine.scheme, mine.host, mine.port) != (target.scheme, target.host, target.port):
            return False
        prefix = mine.path.rstrip("/")
        return not prefix or target.path == prefix or target.path.startswith(prefix + "/")


@dataclass(frozen=True)
class EgressPolicy:
    allow: tuple[AllowRule, ...] = ()
    default: str = "allow"  # "allow": any address not refused above; "deny": the list only
    # The API server's names and addresses: a tenant URL there would make the agent a proxy to it.
    api_hosts: frozenset[str] = field(default_factory=frozenset)

    @staticmethod
    def build(
        allow: Iterable[str], default: str = "allow", api_hosts: Iterable[str] = ()
    ) -> EgressPolicy:
        """From flag values; EgressError names a bad entry."""
        if default not in DEFAULTS:
            raise EgressError(f"egress default must be one of {', '.join(DEFAULTS)}")
        rules = []
        for url in allow:
            try:
                rules.append(AllowRule.parse(url))
            except EgressError as exc:
                raise EgressError(f"--allow-egress {url!r}: {exc}") from None
        return EgressPolicy(tuple(rules), default, frozenset(h.lower() for h in api_hosts if h))

    def admitted(self, target: Target) -> bool:
        return any(rule.admits(target) for rule in self.allow)

    def precheck(self, url: str, *, allow_query: bool = True) -> Target:
        """What can be judged without DNS: the URL's form, and a literal IP or a name the
        policy refuses. Run on every spec, so a bad URL is a Valid=False condition at once."""
        target = parse_url(url, allow_query=allow_query)
        if self.admitted(target):
            return target
        if self.default == "deny":
            raise EgressError(f"egress to {target.origin} denied: not in the allowed list")
        self._judge_name(target)
        ip = literal_ip(target.host)
        if ip is not None:
            self._judge_address(target, ip)
        return target

    def resolve(
        self, url: str, resolver: Resolver, *, allow_query: bool = True
    ) -> tuple[Target, list[str]]:
        """The target and the addresses to connect to, every one judged; EgressError if any
        is refused or the name does not resolve."""
        target = self.precheck(url, allow_query=allow_query)
        try:
            addresses = resolver(target.host, target.port)
        except OSError as exc:
            raise EgressError(f"cannot resolve {target.host}: {exc}") from None
        if not addresses:
            raise EgressError(f"cannot resolve {target.host}: no address")
        if not self.admitted(target):
            for address in addresses:
                self._judge_address(target, ipaddress.ip_address(address))
        return target, addresses

    def _judge_name(self, target: Target) -> None:
        if target.host in self.api_hosts or target.host == "localhost":
            what = "the API server" if target.host in self.api_hosts else "loopback"
            raise EgressError(f"egress to {target.origin} denied: {what}")

    def _judge_address(self, target: Target, ip: IP) -> None:
        if str(ip) in self.api_hosts:
            raise EgressError(f"egress to {target.origin} denied: the API server's address")
        reason = forbidden_reason(ip)
        if reason is not None:
            raise EgressError(f"egress to {target.origin} denied: {ip} is {reason}")
