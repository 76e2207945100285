"""Callback URL safety: receipts only go to public http(s) addresses.

Receipts are POSTs the server makes to URLs its tenants choose, so a URL pointing inside
the operator's network (loopback, private ranges, link-local cloud metadata, multicast,
and the same hidden behind IPv4-mapped or 6to4 IPv6) would turn voicecdr into a proxy
into it (SSRF). URLs are checked when an app is registered and again at every connection:
the host is resolved once, *every* answer must be public, and the connection goes to the
checked address (so a DNS answer that changes in between cannot slip through). Redirects
are never followed. ``VOICECDR_ALLOW_PRIVATE_CALLBACKS`` turns the address checks off for
closed networks and tests.
"""

from __future__ import annotations

import ipaddress
import socket
from collections.abc import Callable
from dataclasses import dataclass
from urllib.parse import urlsplit, urlunsplit

Resolver = Callable[[str, int], list[str]]
IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address


# The one way past the address checks, named where they refuse (config.py declares it).
_ALLOW_PRIVATE_HINT = (
    "receipts go to public addresses only (on a closed network, set "
    "VOICECDR_ALLOW_PRIVATE_CALLBACKS=true)"
)


class CallbackRefused(ValueError):
    """The URL may not receive receipts; the message says why."""


def system_resolver(host: str, port: int) -> list[str]:
    infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    return list(dict.fromkeys(str(info[4][0]) for info in infos))


def blocked_reason(ip: IPAddress) -> str | None:
    """Why an address may not receive receipts, or None when it is public."""
    if isinstance(ip, ipaddress.IPv6Address):
        for kind, inner in (("IPv4-mapped", ip.ipv4_mapped), ("6to4", ip.sixtofour)):
            if inner is not None:
                reason = blocked_reason(inner)
                return f"{kind} {reason}" if reason else None
    for flag, name in (
        ("is_loopback", "loopback"),
        ("is_link_local", "link-local"),
        ("is_multicast", "multicast"),
        ("is_unspecified", "unspecified"),
        ("is_private", "private"),
        ("is_reserved", "reserved"),
    ):
        if getattr(ip, flag):
            return f"{name} address {ip}"
    if not ip.is_global:
        return f"non-public address {ip}"
    return None


@dataclass(frozen=True, slots=True)
class Target:
    """Where to connect for a callback URL: the checked IP, plus the names TLS and the
    ``Host`` header need."""

    url: str  # the URL with its host replaced by the checked IP
    host: str
    ip: str


def parse(url: str) -> tuple[str, str, int]:
    """(scheme, host, port) of an acceptable callback URL; CallbackRefused otherwise."""
    try:
        parts = urlsplit(url)
        port = parts.port
    except ValueError as exc:
        raise CallbackRefused(f"not a valid URL: {exc}") from None
    if parts.scheme not in ("http", "https"):
        raise CallbackRefused("must be an http:// or https:// URL")
    if not parts.hostname:
        raise CallbackRefused("must have a host")
    if parts.username or parts.password:
        raise CallbackRefused("must not carry credentials")
    return parts.scheme, parts.hostname, port or (443 if parts.scheme == "https" else 80)


def resolve(url: str, resolver: Resolver, *, allow_private: bool) -> Target:
    """Check a callback URL and pick the address to connect to."""
    scheme, host, port = parse(url)
    try:
        literal: IPAddress | None = ipaddress.ip_address(host)
    except ValueError:
        literal = None
    if literal is not None:
        addresses = [literal]
    else:
        try:
            addresses = [ipaddress.ip_address(a.split("%")[0]) for a in resolver(host, port)]
        except (OSError, UnicodeError) as exc:
            raise CallbackRefused(f"cannot resolve {host}: {exc}") from None
        if not addresses:
            raise CallbackRefused(f"{host} has no addresses")
    if not allow_private:
        for address in addresses:
            reason = blocked_reason(address)
            if reason:
                raise CallbackRefused(f"{host} resolves to a {reason}; {_ALLOW_PRIVATE_HINT}")
    ip = addresses[0]
    netloc = f"[{ip}]:{port}" if ip.version == 6 else f"{ip}:{port}"
    parts = urlsplit(url)
    return Target(urlunsplit((scheme, netloc, parts.path or "/", parts.query, "")), host, str(ip))


def check_registration(url: str, resolver: Resolver, *, allow_private: bool) -> None:
    """At registration a name that does not resolve (yet) is accepted: it is checked
    again at every delivery. Anything that does resolve must be public."""
    try:
        resolve(url, resolver, allow_private=allow_private)
    except CallbackRefused as exc:
        if not str(exc).startswith("cannot resolve"):
            raise
