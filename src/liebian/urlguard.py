"""Outbound URLs (reward webhooks, monitor channels, journey webhooks): no request to the inside.

A URL that an operator stores is later fetched by the server, so it must not reach what only the
server can reach: the cloud metadata service (169.254.169.254), the loopback, private networks
(10/8, 172.16/12, 192.168/16, fc00::/7), link-local, multicast, shared (100.64/10), reserved and
unspecified addresses. The host is resolved and every address it resolves to is checked; the check
runs when the URL is saved and again before every send (a name can be re-pointed after it was saved:
DNS rebinding). `settings.allow_private_urls` (LIEBIAN_ALLOW_PRIVATE_URLS) lifts the rule for
deployments whose receivers live on the internal network, and for tests with a local receiver.
"""

from __future__ import annotations

import ipaddress
import socket
from urllib.parse import urlsplit

from liebian.config import get_settings
from liebian.errors import DomainError


class UnsafeURL(DomainError):
    """A URL the server must not fetch; a 422 that names the field."""

    def __init__(self, field: str, reason: str):
        message = f"{field}: {reason}"
        super().__init__("unsafe_url", message, 422, field=field, errors=[{"field": field, "reason": reason}])


def _refused(address: ipaddress.IPv4Address | ipaddress.IPv6Address) -> str | None:
    """Why the server must not connect to this address (None: it may)."""
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
        address = address.ipv4_mapped
    for kind in ("loopback", "link_local", "multicast", "private", "reserved", "unspecified"):
        if getattr(address, f"is_{kind}"):
            return kind.replace("_", "-")
    if not address.is_global:  # e.g. 100.64.0.0/10, shared address space of carriers
        return "not globally routable"
    return None


def _addresses(host: str, port: int) -> list[ipaddress.IPv4Address | ipaddress.IPv6Address]:
    try:
        return [ipaddress.ip_address(host)]
    except ValueError:
        pass
    infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    # an IPv6 address may carry a zone ("fe80::1%eth0"): the zone is not part of the address
    return [ipaddress.ip_address(str(info[4][0]).split("%", 1)[0]) for info in infos]


def check_url(url: str, field: str, *, resolve_strict: bool = False) -> str:
    """The URL if the server may post to it; else UnsafeURL naming `field`.

    A host that does not resolve now is accepted when saving (`resolve_strict=False`: the name may
    exist later, and the send-time check resolves it again) and refused before a send.
    """
    parts = urlsplit(url or "")
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise UnsafeURL(field, f"{url!r} is not an http(s) URL")
    if get_settings().allow_private_urls:
        return url
    host = parts.hostname
    try:
        port = parts.port or (443 if parts.scheme == "https" else 80)
    except ValueError:
        raise UnsafeURL(field, f"{url!r} has an invalid port") from None
    try:
        found = _addresses(host, port)
    except (OSError, UnicodeError):
        if resolve_strict:
            raise UnsafeURL(field, f"host {host!r} does not resolve") from None
        return url
    for address in found:
        why = _refused(address)
        if why is not None:
            raise UnsafeURL(
                field,
                f"host {host!r} resolves to {address} ({why}); the server does not send to internal "
                "addresses (set LIEBIAN_ALLOW_PRIVATE_URLS=1 to allow them)",
            )
    return url


def check_before_send(url: str, field: str = "url") -> str:
    """The send-time check: resolves again, and an unresolvable host is refused."""
    return check_url(url, field, resolve_strict=True)
