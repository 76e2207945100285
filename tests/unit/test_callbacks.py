"""The SSRF matrix, with a resolver the test controls."""

from __future__ import annotations

import pytest

from voicecdr.callbacks import CallbackRefused, check_registration, resolve
from voicecdr.config import Settings


def resolver_for(*addresses: str):  # type: ignore[no-untyped-def]
    def resolver(host: str, port: int) -> list[str]:
        return list(addresses)

    return resolver


@pytest.mark.parametrize(
    ("address", "reason"),
    [
        ("127.0.0.1", "loopback"),
        ("::1", "loopback"),
        ("10.1.2.3", "private"),
        ("172.16.0.1", "private"),
        ("192.168.1.1", "private"),
        ("fc00::1", "private"),
        ("169.254.169.254", "link-local"),
        ("fe80::1", "link-local"),
        ("224.0.0.1", "multicast"),
        ("233.1.1.1", "multicast"),
        ("ff02::1", "multicast"),
        ("0.0.0.0", "unspecified"),
        ("100.64.0.1", "non-public"),
        ("::ffff:127.0.0.1", "IPv4-mapped loopback"),
        ("::ffff:10.0.0.1", "IPv4-mapped private"),
        ("2002:7f00:1::1", "6to4 loopback"),
    ],
)
def test_non_public_addresses_are_refused(address: str, reason: str) -> None:
    with pytest.raises(CallbackRefused, match=reason):
        resolve("https://hooks.example.com/dr", resolver_for(address), allow_private=False)


def test_public_address_is_used_with_the_original_host_kept() -> None:
    target = resolve(
        "https://hooks.example.com:8443/dr?x=1", resolver_for("93.184.216.34"), allow_private=False
    )
    assert target.url == "https://93.184.216.34:8443/dr?x=1"
    assert (target.host, target.ip) == ("hooks.example.com", "93.184.216.34")
    v6 = resolve(
        "http://hooks.example.com/", resolver_for("2606:2800:220:1::1"), allow_private=False
    )
    assert v6.url == "http://[2606:2800:220:1::1]:80/"


def test_one_bad_answer_among_good_ones_refuses_all() -> None:
    with pytest.raises(CallbackRefused, match="loopback"):
        resolve(
            "https://x.example.com/",
            resolver_for("93.184.216.34", "127.0.0.1"),
            allow_private=False,
        )


def test_ip_literals_are_checked_without_resolving() -> None:
    def no_dns(host: str, port: int) -> list[str]:
        raise AssertionError("must not resolve a literal")

    with pytest.raises(CallbackRefused, match="loopback"):
        resolve("http://127.0.0.1:9000/dr", no_dns, allow_private=False)
    with pytest.raises(CallbackRefused, match="IPv4-mapped"):
        resolve("http://[::ffff:192.168.0.1]/dr", no_dns, allow_private=False)


def test_allow_private_lets_loopback_through() -> None:
    target = resolve("http://localhost:9000/dr", resolver_for("127.0.0.1"), allow_private=True)
    assert target.url == "http://127.0.0.1:9000/dr"


@pytest.mark.parametrize(
    ("url", "reason"),
    [
        ("ftp://x.example.com/", "http:// or https://"),
        ("https:///dr", "must have a host"),
        ("https://user:pw@x.example.com/", "must not carry credentials"),
        ("http://x.example.com:99999/", "not a valid URL"),
    ],
)
def test_malformed_urls(url: str, reason: str) -> None:
    with pytest.raises(CallbackRefused, match=reason):
        resolve(url, resolver_for("93.184.216.34"), allow_private=True)


def test_unresolvable_names_fail_delivery_but_pass_registration() -> None:
    def fails(host: str, port: int) -> list[str]:
        raise OSError("Name or service not known")

    with pytest.raises(CallbackRefused, match="cannot resolve"):
        resolve("https://later.example.com/", fails, allow_private=False)
    check_registration("https://later.example.com/", fails, allow_private=False)
    with pytest.raises(CallbackRefused, match="private"):
        check_registration("https://x.example.com/", resolver_for("10.0.0.1"), allow_private=False)


def test_a_refused_address_names_the_setting_that_allows_it() -> None:
    name = Settings.model_config["env_prefix"] + "allow_private_callbacks".upper()
    with pytest.raises(CallbackRefused, match=f"set {name}=true"):
        resolve("http://127.0.0.1:9000/dr", resolver_for("127.0.0.1"), allow_private=False)
