"""Where `http.request` may connect: the network policy of SPEC §11.

A destination is a URL's host. Two rules decide whether a call may reach it:

- `ORCH_HTTP_ALLOW`, when set, limits every caller to the hosts its patterns match
  (`api.example.com`, `*.example.com`).
- A caller that is not trusted with the operator's network (see `tool_catalog.trust`) may not reach
  an address in a non-public range (loopback, private, link-local, shared, unspecified, multicast,
  reserved) unless a pattern of `ORCH_HTTP_ALLOW` names the host.

The range rule applies to addresses, never to names: an IP literal in any form a resolver accepts
(`2130706433`, `0x7f000001`, `127.1`, `0177.0.0.1`, `::ffff:127.0.0.1`) is read as the address it
spells, and a name is resolved here and every address it resolves to is checked. `NetworkPolicy.addresses`
returns the checked addresses, and the connection is made to one of them, so DNS cannot answer
differently between the check and the connection.
"""

from __future__ import annotations

import fnmatch
import re
import socket
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from ipaddress import IPv4Address, IPv4Network, IPv6Address, IPv6Network, ip_address

import anyio

IPAddress = IPv4Address | IPv6Address
Resolver = Callable[[str, int], Awaitable[Sequence[IPAddress]]]
"""Resolves a host name (never an IP literal) and a port to the addresses to connect to.

Raises:
    OSError: the name cannot be resolved.
"""

SHARED = IPv4Network("100.64.0.0/10")
PRIVATE_V4 = (IPv4Network("10.0.0.0/8"), IPv4Network("172.16.0.0/12"), IPv4Network("192.168.0.0/16"))
PRIVATE_V6 = (IPv6Network("fc00::/7"), IPv6Network("fec0::/10"))
"""Unique local addresses, and the site-local ones they replaced."""
NAT64 = IPv6Network("64:ff9b::/96")
"""IPv6 addresses that a NAT64 gateway translates to the IPv4 address in their last 32 bits."""
WILDCARDS = frozenset("*?.")

_HEX = re.compile(r"0x[0-9a-f]+")
_OCTAL = re.compile(r"0[0-7]*")
_DECIMAL = re.compile(r"[1-9][0-9]*")


class DestinationRefused(Exception):
    """The policy refuses a destination; the message says which and why."""


def normalise_host(host: str) -> str:
    """`host` as compared: lower case, without IPv6 brackets or the trailing dot of a full name."""
    host = host.strip().lower()
    if host.startswith("[") and host.endswith("]"):
        host = host[1:-1]
    return host[:-1] if host.endswith(".") else host


def parse_ip_literal(host: str) -> IPAddress | None:
    """The address `host` spells, or None if it is a name.

    Besides the usual dotted quad and IPv6 forms, the forms of `inet_aton` that resolvers accept
    are read too: one to four parts, each decimal, octal (leading `0`) or hex (`0x`), the last
    filling the remaining bytes (`2130706433`, `0x7f000001`, `127.1`, `0177.0.0.1`).
    """
    host = normalise_host(host)
    try:
        return ip_address(host)
    except ValueError:
        return _inet_aton(host)


def _inet_aton(host: str) -> IPv4Address | None:
    parts = host.split(".")
    if len(parts) > 4:
        return None
    numbers = [_number(part) for part in parts]
    if None in numbers:
        return None
    *head, last = [number for number in numbers if number is not None]
    if any(number > 0xFF for number in head) or last >= 1 << (8 * (4 - len(head))):
        return None
    value = 0
    for number in head:
        value = value << 8 | number
    return IPv4Address(value << (8 * (4 - len(head))) | last)


def _number(part: str) -> int | None:
    """One part of an `inet_aton` address; None if it is not a number in any of its bases."""
    if _HEX.fullmatch(part):
        return int(part, 16)
    if _OCTAL.fullmatch(part):
        return int(part, 8)
    if _DECIMAL.fullmatch(part):
        return int(part)
    return None


def embedded_ipv4(address: IPv6Address) -> IPv4Address | None:
    """The IPv4 address that `address` reaches: IPv4-mapped (`::ffff:a.b.c.d`), NAT64 or 6to4."""
    if address.ipv4_mapped is not None:
        return address.ipv4_mapped
    if address in NAT64:
        return IPv4Address(int(address) & 0xFFFF_FFFF)
    return address.sixtofour


def classify(address: IPAddress) -> str | None:
    """The non-public range `address` is in, as a word for an error message, or None if public.

    Ranges: `unspecified`, `loopback`, `link-local`, `multicast`, `shared` (100.64/10),
    `private` (10/8, 172.16/12, 192.168/16, fc00::/7), and `reserved` for any other address that
    is not globally reachable. An IPv6 address that stands for an IPv4 one is classified as that one.
    """
    if isinstance(address, IPv6Address):
        inner = embedded_ipv4(address)
        if inner is not None:
            return classify(inner)
    checks: list[tuple[str, bool]] = [
        ("unspecified", address.is_unspecified),
        ("loopback", address.is_loopback),
        ("link-local", address.is_link_local),
        ("multicast", address.is_multicast),
        ("shared", isinstance(address, IPv4Address) and address in SHARED),
        ("private", any(address in network for network in _private_networks(address))),
        ("reserved", address.is_reserved or not address.is_global),
    ]
    return next((kind for kind, found in checks if found), None)


def _private_networks(address: IPAddress) -> Sequence[IPv4Network | IPv6Network]:
    return PRIVATE_V4 if isinstance(address, IPv4Address) else PRIVATE_V6


def parse_allow(text: str | None) -> tuple[str, ...] | None:
    """`ORCH_HTTP_ALLOW` as patterns; None when it is unset or names nothing (every host)."""
    patterns = tuple(normalise_host(part) for part in (text or "").split(",") if part.strip())
    return patterns or None


async def system_resolver(host: str, port: int) -> Sequence[IPAddress]:
    """The machine's resolver (`getaddrinfo`): every address `host` has for a TCP connection."""
    infos = await anyio.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    found: list[IPAddress] = []
    for *_, sockaddr in infos:
        address = ip_address(sockaddr[0])
        if address not in found:
            found.append(address)
    return found


@dataclass(frozen=True, slots=True)
class NetworkPolicy:
    """What one call may reach: `allow` patterns (None: any host), and whether its caller is trusted."""

    allow: tuple[str, ...] | None = None
    trusted: bool = False

    def check_host(self, host: str) -> None:
        """Check what can be known of `host` without resolving it: the allow list, and the range of
        an IP literal.

        Raises:
            DestinationRefused: `host` is outside the allow list, or spells a refused address.
        """
        name = normalise_host(host)
        literal = parse_ip_literal(name)
        if self.allow is not None and not self._matches(name, literal):
            raise DestinationRefused(
                f"host '{name}' is not allowed: ORCH_HTTP_ALLOW names only {', '.join(self.allow)}"
            )
        if literal is not None:
            self.check_address(name, literal)

    def check_address(self, host: str, address: IPAddress) -> None:
        """Check one address that `host` stands for.

        Raises:
            DestinationRefused: the caller is not trusted, the address is not public, and no allow
                pattern names the host.
        """
        if self.trusted:
            return
        kind = classify(address)
        if kind is None or self.opens(host):
            return
        name = normalise_host(host)
        what = f"{name} ({kind})" if name == str(address) else f"{name} ({address}, {kind})"
        raise DestinationRefused(
            f"destination {what} is refused: ask the operator to name this host in ORCH_HTTP_ALLOW"
        )

    def opens(self, host: str) -> bool:
        """Whether an allow pattern names `host` (or, for an IP literal, the address it spells),
        which opens its non-public addresses to every caller. A pattern of wildcards alone (`*`)
        names no host, and an address a name resolves to is not the name."""
        if self.allow is None:
            return False
        naming = tuple(pattern for pattern in self.allow if not set(pattern) <= WILDCARDS)
        return _any_match(naming, normalise_host(host), parse_ip_literal(host))

    async def addresses(self, host: str, port: int, resolve: Resolver) -> Sequence[IPAddress]:
        """Every address `host` stands for (the literal it spells, or what `resolve` answers), each
        checked: the only addresses a connection to `host` may use.

        Raises:
            DestinationRefused: the host, or any one of its addresses, is refused.
            OSError: the name cannot be resolved, or resolves to nothing.
        """
        self.check_host(host)
        literal = parse_ip_literal(host)
        found = [literal] if literal is not None else list(await resolve(normalise_host(host), port))
        if not found:
            raise OSError(f"{host} resolves to no address")
        for address in found:
            self.check_address(host, address)
        return found

    def _matches(self, name: str, literal: IPAddress | None) -> bool:
        return self.allow is not None and _any_match(self.allow, name, literal)


def _any_match(patterns: Sequence[str], name: str, literal: IPAddress | None) -> bool:
    """Whether a pattern matches `name` or, for an IP literal, the address's usual spelling (an
    IPv4-mapped IPv6 address is also its IPv4 address: the same destination)."""
    names = {name}
    if literal is not None:
        names.add(str(literal))
        if isinstance(literal, IPv6Address) and literal.ipv4_mapped is not None:
            names.add(str(literal.ipv4_mapped))
    return any(fnmatch.fnmatchcase(candidate, pattern) for pattern in patterns for candidate in names)
