"""URL checks and normalisation for fetching (RFC 3986), and the user's include/exclude patterns."""

from __future__ import annotations

import fnmatch
from urllib.parse import SplitResult, quote, urlsplit, urlunsplit

from provenance.errors import UsageError

FETCHABLE_SCHEMES = ("http", "https")
# Characters RFC 3986 section 3.3/3.4 allows unescaped in a path or query; '%' stays so that
# existing escapes are not double-encoded.
_PATH_SAFE = "/%:@!$&'()*+,;=-._~"
_QUERY_SAFE = _PATH_SAFE + "?"


class UnfetchableURLError(UsageError):
    """A URL we will not fetch: not http(s), no host, or not a URL at all."""


def parse_fetchable(url: str) -> SplitResult:
    """Split and normalise an http(s) URL, or raise ``UnfetchableURLError`` saying why."""
    text = url.strip()
    try:
        parts = urlsplit(text)
        port = parts.port
    except ValueError as error:
        raise UnfetchableURLError(f"invalid URL {url!r}: {error}") from None
    scheme = parts.scheme.lower()
    if not scheme:
        raise UnfetchableURLError(f"invalid URL {url!r}: no scheme (did you mean https://{text}?)")
    if scheme not in FETCHABLE_SCHEMES:
        raise UnfetchableURLError(f"unsupported scheme {scheme!r} in {url!r}: only http and https")
    host = parts.hostname
    if not host:
        raise UnfetchableURLError(f"invalid URL {url!r}: no host")
    try:
        ascii_host = host.encode("idna").decode("ascii") if not host.isascii() else host
    except UnicodeError:
        raise UnfetchableURLError(f"invalid URL {url!r}: bad host name") from None
    if any(c in ascii_host for c in " <>\"{}|\\^`%") or any(ord(c) < 33 for c in ascii_host):
        raise UnfetchableURLError(f"invalid URL {url!r}: bad host name")
    netloc = f"[{ascii_host}]" if ":" in ascii_host else ascii_host
    if port is not None:
        netloc = f"{netloc}:{port}"
    if parts.username or parts.password:
        userinfo = parts.netloc.rsplit("@", 1)[0]
        netloc = f"{userinfo}@{netloc}"
    return SplitResult(
        scheme=scheme,
        netloc=netloc,
        path=quote(parts.path, safe=_PATH_SAFE) or "/",
        query=quote(parts.query, safe=_QUERY_SAFE),
        fragment="",
    )


def without_fragment(url: str) -> str:
    try:
        parts = urlsplit(url)
    except ValueError:
        return url.split("#", 1)[0]  # malformed; parse_fetchable will refuse it with a reason
    return urlunsplit(parts._replace(fragment=""))


def scheme_of(url: str) -> str:
    """The lower-cased scheme, or "" for a URL too malformed to split (e.g. ``http://[::1``)."""
    try:
        return urlsplit(url).scheme.lower()
    except ValueError:
        return ""


def first_match(url: str, patterns: tuple[str, ...]) -> str | None:
    """The first shell-style pattern (``*``, ``?``, ``[...]``) that matches the whole URL."""
    for pattern in patterns:
        if fnmatch.fnmatchcase(url, pattern):
            return pattern
    return None
