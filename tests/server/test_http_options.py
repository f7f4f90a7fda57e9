"""Which hosts and origins HTTP accepts by default, and when `--no-auth` is refused."""

from __future__ import annotations

import pytest

from orchestrator_mcp.server.http import HttpOptions, UnsafeOptions, check_options, is_loopback, split_list


def test_defaults_allow_the_loopback_names_with_the_port() -> None:
    options = HttpOptions(port=9000)
    assert options.hosts() == ["127.0.0.1:9000", "localhost:9000", "[::1]:9000"]
    assert options.origins() == ["http://127.0.0.1:9000", "http://localhost:9000", "http://[::1]:9000"]


def test_a_specific_interface_is_allowed_too_but_a_wildcard_one_is_not() -> None:
    assert "10.1.2.3:9000" in HttpOptions(host="10.1.2.3", port=9000).hosts()
    assert HttpOptions(host="0.0.0.0", port=9000).hosts() == HttpOptions(port=9000).hosts()
    configured = HttpOptions(allowed_hosts=["api.example:*"], allowed_origins=["https://app.example"])
    assert configured.hosts() == ["api.example:*"] and configured.origins() == ["https://app.example"]


@pytest.mark.parametrize("host", ["127.0.0.1", "127.5.5.5", "::1", "[::1]", "localhost"])
def test_no_auth_is_allowed_on_loopback(host: str) -> None:
    assert is_loopback(host)
    check_options(HttpOptions(host=host, auth=False))


@pytest.mark.parametrize("host", ["0.0.0.0", "::", "10.0.0.1", "example.com"])
def test_no_auth_is_refused_elsewhere(host: str) -> None:
    with pytest.raises(UnsafeOptions, match="loopback host only"):
        check_options(HttpOptions(host=host, auth=False))
    check_options(HttpOptions(host=host, auth=True))


def test_comma_lists_are_split_and_blank_means_unset() -> None:
    assert split_list(" a:1, b:* ,") == ["a:1", "b:*"]
    assert split_list("") is None and split_list(None) is None
