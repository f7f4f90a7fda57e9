"""The network policy of `http.request`: IP literal forms, address ranges, allow patterns, resolved
names. Nothing here connects anywhere; names resolve through a resolver the test gives."""

from __future__ import annotations

from collections.abc import Sequence
from ipaddress import IPv4Address, IPv6Address, ip_address

import pytest

from tool_catalog.network import (
    DestinationRefused,
    IPAddress,
    NetworkPolicy,
    Resolver,
    classify,
    parse_allow,
    parse_ip_literal,
    system_resolver,
)

LOOPBACK = IPv4Address("127.0.0.1")


@pytest.mark.parametrize(
    ("host", "address"),
    [
        ("127.0.0.1", "127.0.0.1"),
        ("2130706433", "127.0.0.1"),
        ("0x7f000001", "127.0.0.1"),
        ("0X7F000001", "127.0.0.1"),
        ("127.1", "127.0.0.1"),
        ("127.0.1", "127.0.0.1"),
        ("0177.0.0.1", "127.0.0.1"),
        ("0x7f.0.0.1", "127.0.0.1"),
        ("0x7f.1", "127.0.0.1"),
        ("017700000001", "127.0.0.1"),
        ("0", "0.0.0.0"),
        ("2852039166", "169.254.169.254"),
        ("0xa9.0xfe.0xa9.0xfe", "169.254.169.254"),
        ("127.0.0.1.", "127.0.0.1"),
        ("::1", "::1"),
        ("[::1]", "::1"),
        ("::ffff:127.0.0.1", "::ffff:7f00:1"),
        ("[::FFFF:7F00:1]", "::ffff:7f00:1"),
        ("fe80::1%eth0", "fe80::1%eth0"),
    ],
)
def test_every_literal_form_reads_as_the_address_it_spells(host: str, address: str) -> None:
    assert parse_ip_literal(host) == ip_address(address)


@pytest.mark.parametrize(
    "host", ["example.com", "localhost", "08.0.0.1", "1.2.3.4.5", "4294967296", "256.1.1.1", "0x", "1..1", ""]
)
def test_names_and_malformed_numbers_are_not_literals(host: str) -> None:
    assert parse_ip_literal(host) is None


@pytest.mark.parametrize(
    ("address", "kind"),
    [
        ("127.0.0.1", "loopback"),
        ("127.255.0.9", "loopback"),
        ("::1", "loopback"),
        ("10.1.2.3", "private"),
        ("172.16.0.1", "private"),
        ("172.31.255.255", "private"),
        ("192.168.1.1", "private"),
        ("fd00::1", "private"),
        ("fc00::1", "private"),
        ("169.254.169.254", "link-local"),
        ("fe80::1", "link-local"),
        ("100.64.0.1", "shared"),
        ("100.127.255.254", "shared"),
        ("0.0.0.0", "unspecified"),
        ("::", "unspecified"),
        ("224.0.0.1", "multicast"),
        ("239.255.255.250", "multicast"),
        ("ff02::1", "multicast"),
        ("240.0.0.1", "reserved"),
        ("255.255.255.255", "reserved"),
        ("192.0.2.1", "reserved"),
        ("0.1.2.3", "reserved"),
        ("::ffff:127.0.0.1", "loopback"),
        ("::ffff:169.254.169.254", "link-local"),
        ("::ffff:10.0.0.1", "private"),
        ("64:ff9b::a9fe:a9fe", "link-local"),
        ("2002:7f00:1::", "loopback"),
    ],
)
def test_non_public_addresses_are_classified_by_range(address: str, kind: str) -> None:
    assert classify(ip_address(address)) == kind


@pytest.mark.parametrize(
    "address", ["93.184.216.34", "8.8.8.8", "172.32.0.1", "100.128.0.1", "2606:4700::1111"]
)
def test_public_addresses_are_in_no_refused_range(address: str) -> None:
    assert classify(ip_address(address)) is None


@pytest.mark.parametrize(
    ("host", "message"),
    [
        ("169.254.169.254", "destination 169.254.169.254 (link-local) is refused"),
        ("2130706433", "destination 2130706433 (127.0.0.1, loopback) is refused"),
        ("0x7f000001", "destination 0x7f000001 (127.0.0.1, loopback) is refused"),
        ("127.1", "destination 127.1 (127.0.0.1, loopback) is refused"),
        ("[::ffff:127.0.0.1]", "destination ::ffff:127.0.0.1 (::ffff:7f00:1, loopback) is refused"),
        ("[::1]", "destination ::1 (loopback) is refused"),
        ("10.0.0.8", "destination 10.0.0.8 (private) is refused"),
        ("100.64.1.1", "destination 100.64.1.1 (shared) is refused"),
        ("0.0.0.0", "destination 0.0.0.0 (unspecified) is refused"),
        ("224.0.0.251", "destination 224.0.0.251 (multicast) is refused"),
    ],
)
def test_an_untrusted_caller_is_refused_a_literal_with_the_range_and_the_remedy(
    host: str, message: str
) -> None:
    with pytest.raises(DestinationRefused) as refused:
        NetworkPolicy().check_host(host)
    assert str(refused.value) == f"{message}: ask the operator to name this host in ORCH_HTTP_ALLOW"


def test_a_trusted_caller_may_reach_any_address() -> None:
    for host in ("127.0.0.1", "169.254.169.254", "2130706433", "[::1]", "10.0.0.1"):
        NetworkPolicy(trusted=True).check_host(host)


def test_a_public_literal_is_allowed_to_anyone() -> None:
    NetworkPolicy().check_host("93.184.216.34")
    NetworkPolicy().check_host("[2606:4700::1111]")


def test_allow_patterns_match_exact_names_and_subdomains() -> None:
    policy = NetworkPolicy(parse_allow("api.example.com, *.internal.example"), trusted=True)
    for host in ("api.example.com", "API.Example.com.", "db.internal.example", "a.b.internal.example"):
        policy.check_host(host)
    for host in ("example.com", "api.example.com.evil.test", "internal.example", "evil-internal.example"):
        with pytest.raises(DestinationRefused) as refused:
            policy.check_host(host)
        assert str(refused.value).startswith(
            f"host '{host.lower()}' is not allowed: ORCH_HTTP_ALLOW names only"
        )


def test_the_allow_list_binds_trusted_callers_too() -> None:
    with pytest.raises(DestinationRefused, match="not allowed"):
        NetworkPolicy(("api.example.com",), trusted=True).check_host("127.0.0.1")


def test_naming_a_private_host_opens_it_and_every_spelling_of_a_named_address() -> None:
    policy = NetworkPolicy(parse_allow("127.0.0.1,metadata.internal,[::1]"))
    for host in ("127.0.0.1", "2130706433", "0x7f000001", "127.1", "[::ffff:127.0.0.1]", "[::1]"):
        policy.check_host(host)
    policy.check_host("metadata.internal")
    for host in ("127.0.0.2", "[::ffff:127.0.0.2]", "[::2]"):
        with pytest.raises(DestinationRefused, match="not allowed"):
            policy.check_host(host)


def test_a_wildcard_alone_allows_every_host_but_opens_no_private_one() -> None:
    policy = NetworkPolicy(parse_allow("*"))
    policy.check_host("anything.example")
    with pytest.raises(DestinationRefused, match="loopback"):
        policy.check_host("127.0.0.1")


def test_an_unset_or_empty_allow_list_is_none() -> None:
    assert parse_allow(None) is None
    assert parse_allow(" , ") is None
    assert parse_allow("A.example, [::1] ,") == ("a.example", "::1")


def resolving(table: dict[str, Sequence[str]]) -> Resolver:
    """A resolver answering from `table` (and failing, as getaddrinfo does, for other names)."""

    async def resolve(host: str, port: int) -> Sequence[IPAddress]:
        if host not in table:
            raise OSError(f"unknown name {host}")
        return [ip_address(address) for address in table[host]]

    return resolve


RESOLVE = resolving(
    {
        "public.test": ["93.184.216.34", "2606:4700::1111"],
        "mixed.test": ["93.184.216.34", "10.0.0.7"],
        "sneaky.test": ["2606:4700::1111", "::ffff:169.254.169.254"],
        "internal.test": ["10.0.0.5"],
        "empty.test": [],
    }
)


async def test_a_name_is_allowed_when_every_address_it_resolves_to_is_public() -> None:
    found = await NetworkPolicy().addresses("public.test", 443, RESOLVE)
    assert found == [IPv4Address("93.184.216.34"), IPv6Address("2606:4700::1111")]


@pytest.mark.parametrize(
    ("host", "refused"),
    [("mixed.test", "(10.0.0.7, private)"), ("sneaky.test", "(::ffff:a9fe:a9fe, link-local)")],
)
async def test_a_name_is_refused_when_any_address_it_resolves_to_is_not_public(
    host: str, refused: str
) -> None:
    with pytest.raises(DestinationRefused) as error:
        await NetworkPolicy().addresses(host, 80, RESOLVE)
    assert str(error.value).startswith(f"destination {host} {refused} is refused")


async def test_a_name_the_allow_list_names_may_resolve_to_a_private_address() -> None:
    policy = NetworkPolicy(("internal.test",))
    assert await policy.addresses("internal.test", 80, RESOLVE) == [IPv4Address("10.0.0.5")]


async def test_an_address_named_in_the_allow_list_does_not_open_a_name_resolving_to_it() -> None:
    with pytest.raises(DestinationRefused, match="internal.test"):
        await NetworkPolicy(("*", "10.0.0.5")).addresses("internal.test", 80, RESOLVE)


async def test_a_literal_is_never_resolved_and_a_name_resolving_to_nothing_is_an_error() -> None:
    assert await NetworkPolicy(trusted=True).addresses("127.1", 80, RESOLVE) == [LOOPBACK]
    with pytest.raises(OSError, match="resolves to no address"):
        await NetworkPolicy().addresses("empty.test", 80, RESOLVE)
    with pytest.raises(OSError, match="unknown name"):
        await NetworkPolicy().addresses("missing.test", 80, RESOLVE)


async def test_the_system_resolver_finds_localhost_on_loopback_and_the_policy_refuses_it() -> None:
    found = await system_resolver("localhost", 80)
    assert found and all(address.is_loopback for address in found)
    with pytest.raises(DestinationRefused, match=r"destination localhost \(.*, loopback\) is refused"):
        await NetworkPolicy().addresses("localhost", 80, system_resolver)
