"""The client address behind (and not behind) trusted proxies."""

from __future__ import annotations

import pytest

from voicecdr.api.clientaddr import ClientAddress
from voicecdr.config import Settings

PROXIES = ClientAddress(Settings(trusted_proxies="10.0.0.0/8,fd00::/8").trusted_proxies)


def test_without_trusted_proxies_the_peer_is_the_client_whatever_the_headers_say() -> None:
    nobody = ClientAddress(())
    assert nobody.derive("127.0.0.1", ["6.6.6.6"]) == "127.0.0.1"
    assert nobody.derive("203.0.113.9", ["6.6.6.6, 10.0.0.1"]) == "203.0.113.9"
    assert nobody.derive(None, ["6.6.6.6"]) is None


@pytest.mark.parametrize(
    ("peer", "headers", "client"),
    [
        # An untrusted peer's header is ignored.
        ("203.0.113.9", ["6.6.6.6"], "203.0.113.9"),
        # A trusted proxy names its client.
        ("10.0.0.1", ["203.0.113.9"], "203.0.113.9"),
        # The client wrote an address of its own on the left: the proxy's is rightmost.
        ("10.0.0.1", ["6.6.6.6, 203.0.113.9"], "203.0.113.9"),
        # Two trusted proxies in a row, over two headers.
        ("10.0.0.1", ["6.6.6.6, 203.0.113.9", "10.0.0.2"], "203.0.113.9"),
        # Every hop trusted: the leftmost.
        ("10.0.0.1", ["10.0.0.3, 10.0.0.2"], "10.0.0.3"),
        # No header: the proxy itself.
        ("10.0.0.1", [], "10.0.0.1"),
        # Garbage where an address should be: the trusted proxy that reported it.
        ("10.0.0.1", ["203.0.113.9, not-an-ip"], "10.0.0.1"),
        # IPv6, and IPv4-mapped IPv6 as the one IPv4 client it is.
        ("fd00::1", ["2001:DB8::7"], "2001:db8::7"),
        ("::ffff:10.0.0.1", ["::ffff:203.0.113.9"], "203.0.113.9"),
        # A peer that is no IP address (a test client, a socket path) is kept as is.
        ("testclient", ["6.6.6.6"], "testclient"),
    ],
)
def test_the_rightmost_untrusted_address_is_the_client(
    peer: str, headers: list[str], client: str
) -> None:
    assert PROXIES.derive(peer, headers) == client
