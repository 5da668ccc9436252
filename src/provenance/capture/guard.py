"""The address guard: a page we capture must not steer us into the user's own network.

A hostile page can link to ``http://192.168.1.1/`` or to a name that resolves to ``127.0.0.1``
(or redirect there), turning the capture tool into a probe of the machine and network it runs
on (server-side request forgery). The guard refuses such addresses for every host other than the
article's: the URL the user gave is their own choice, and so are the requisites and sources on
that same host, but nothing else reaches a non-global address unless ``--allow-private``.

The check runs in the recorder on the address actually connected to, after DNS, so a name that
resolves to a public address once and to a private one later (DNS rebinding) gains nothing.
"""

from __future__ import annotations

import ipaddress
from dataclasses import dataclass

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address


def address_kind(address: IPAddress) -> str | None:
    """Why ``address`` is not on the public internet ("loopback", "private", ...), or None.

    The registries' special-purpose tables (RFC 6890, and the IANA registries Python's
    ``ipaddress`` follows) decide what is global; multicast is refused on top of that, since a
    few multicast blocks count as global but are never a web server.
    """
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
        # ::ffff:127.0.0.1 reaches 127.0.0.1 (RFC 4291 section 2.5.5.2): judge the IPv4 address.
        address = address.ipv4_mapped
    checks = (
        ("loopback", address.is_loopback),
        ("link-local", address.is_link_local),
        ("multicast", address.is_multicast),
        ("unspecified", address.is_unspecified),
        ("reserved", address.is_reserved),
        ("private", address.is_private),
    )
    for kind, hit in checks:
        if hit:
            return kind
    return None if address.is_global else "non-global"


@dataclass(frozen=True)
class AddressGuard:
    """Refuses non-global addresses on any host but the article's (``--allow-private`` off)."""

    article_host: str

    def __call__(self, host: str, address: str) -> str | None:
        if host.lower().rstrip(".") == self.article_host:
            return None
        try:
            parsed = ipaddress.ip_address(address.split("%", 1)[0])
        except ValueError:
            return f"blocked: {address} is not an IP address"
        kind = address_kind(parsed)
        if kind is None:
            return None
        return (f"blocked: {host} resolves to {kind} address {address}, on another host than "
                f"the article's (--allow-private to fetch it)")

    @classmethod
    def for_article(cls, article_host: str) -> AddressGuard:
        return cls(article_host=article_host.lower().rstrip("."))
