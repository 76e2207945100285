"""The address a request comes from: its peer's, or, when the peer is a proxy the
operator trusts (``VOICECDR_TRUSTED_PROXIES``), the one the proxies' ``X-Forwarded-For``
chain names. Only that address is used for accounting (failed-authentication lock-outs);
a header from anyone else is ignored, as anyone can write it."""

from __future__ import annotations

import ipaddress
from collections.abc import Sequence

from starlette.requests import Request

from ..config import Network

Address = ipaddress.IPv4Address | ipaddress.IPv6Address


class ClientAddress:
    """Derives the client address from the peer and its ``X-Forwarded-For`` headers."""

    def __init__(self, trusted: Sequence[Network]) -> None:
        self._trusted = tuple(trusted)

    def of(self, request: Request) -> str | None:
        """``request``'s client address (its headers are read only behind a trusted proxy)."""
        peer = request.client.host if request.client else None
        if not self._trusted:
            return peer
        return self.derive(peer, request.headers.getlist("x-forwarded-for"))

    def derive(self, peer: str | None, forwarded_for: Sequence[str]) -> str | None:
        """The rightmost address of the chain ``forwarded_for`` (every header, in order),
        then ``peer``, that is not a trusted proxy, reached only through trusted ones;
        the leftmost address if all are trusted. A hop that is not an IP address stops
        the walk at the trusted proxy that reported it."""
        if not self._trusted or peer is None:
            return peer
        current = _address(peer)
        if current is None:
            return peer
        hops = [hop.strip() for header in forwarded_for for hop in header.split(",")]
        for hop in reversed(hops):
            if not self._is_trusted(current):
                break
            found = _address(hop)
            if found is None:
                break
            current = found
        return str(current)

    def _is_trusted(self, address: Address) -> bool:
        return any(address in network for network in self._trusted)


def _address(text: str) -> Address | None:
    """An IP address, IPv4-mapped IPv6 ones as IPv4 (one client, one key)."""
    try:
        address = ipaddress.ip_address(text)
    except ValueError:
        return None
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
        return address.ipv4_mapped
    return address
