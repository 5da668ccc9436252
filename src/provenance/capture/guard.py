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
    if isinstance(address, ipaddress.IPv6Address):
        # Addresses that carry an IPv4 address are judged by it: IPv4-mapped ::ffff:a.b.c.d
        # reaches a.b.c.d (RFC 4291 section 2.5.5.2); 6to4 2002:AABB:CCDD::/48 (RFC 3056) and
        # Teredo's client address (RFC 4380) wrap one too.
        embedded = address.ipv4_mapped or address.sixtofour or (
            address.teredo[1] if address.teredo else None)
        if embedded is not None:
            return address_kind(embedded)
        if address.is_site_local:  # fec0::/10, deprecated (RFC 3879) but still not global
            return "site-local"
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


@dataclass
class AddressGuard:
    """Refuses non-global addresses on any host but the article's (``--allow-private`` off).

    The article's host is trusted as far as the user's own URL took us: if that reached a
    non-global address, the user is capturing a local or intranet page and its host may be
    used again; if it reached a public address, a later answer for the same name that points
    inside (a page rebinding its own name to reach, say, 127.0.0.1:6379) is refused too.
    """

    article_host: str
    article_kind: str | None = None  # of the address the user's URL connected to
    article_seen: bool = False

    def __call__(self, host: str, address: str, is_user_url: bool = False) -> str | None:
        try:
            parsed = ipaddress.ip_address(address.split("%", 1)[0])
        except ValueError:
            return None if is_user_url else f"blocked: {address} is not an IP address"
        kind = address_kind(parsed)
        if is_user_url:
            self.article_seen, self.article_kind = True, kind
            return None  # the URL the user gave is always allowed
        if kind is None:
            return None
        if host.lower().rstrip(".") == self.article_host:
            if not self.article_seen or self.article_kind is not None:
                return None
            return (f"blocked: {host} now resolves to {kind} address {address}, but the "
                    f"article came from a public address (DNS rebinding?); --allow-private "
                    f"to fetch it")
        return (f"blocked: {host} resolves to {kind} address {address}, on another host than "
                f"the article's (--allow-private to fetch it)")

    @classmethod
    def for_article(cls, article_host: str) -> AddressGuard:
        return cls(article_host=article_host.lower().rstrip("."))
