"""A response's Content-Type, and its content coding undone without inflating past a cap.

``parse_content_type`` is the one reading of a Content-Type field value, for the capture
(which bodies to keep for parsing, and the media type the manifest records) and for ``cite``
(how to turn an archived body into text), so that both see the same media type and charset.

Only what we parse (HTML, CSS) is decoded, and only up to ``limit`` bytes, so a gzip bomb
costs at most ``limit`` bytes of memory (the stored record keeps the coded bytes untouched).
"""

from __future__ import annotations

import re
import zlib
from dataclasses import dataclass, field
from typing import IO

READ_SIZE = 64 * 1024


@dataclass(frozen=True)
class ContentType:
    """A parsed Content-Type: the media type (lower case) and its parameters."""

    media_type: str | None = None
    #: parameter names in lower case; values as sent, quoted strings unquoted
    parameters: dict[str, str] = field(default_factory=dict)

    @property
    def charset(self) -> str | None:
        return self.parameters.get("charset") or None


# One parameter, from just after a ';' to just after the next one that is not quoted: a name,
# then "=" and either a quoted-string (group 2; left open, it runs to the end, and anything
# between its closing quote and the next ';' is dropped) or a token (group 3). Whitespace is
# OWS (RFC 9110 section 5.6.3) and, as before this parser, any other str.strip() drops.
_PARAMETER = re.compile(r'([^;=]*)(?:=\s*(?:"((?:[^"\\]|\\.?)*)"?[^;]*|([^;]*)))?;?', re.DOTALL)
_QUOTED_PAIR = re.compile(r"\\(.)", re.DOTALL)


def parse_content_type(value: str | None) -> ContentType:
    """Parse a Content-Type field value by RFC 9110 section 8.3 (syntax of section 5.6.6).

    ``type/subtype`` and parameter names are case-insensitive, so both are lowered; a
    parameter value is a token or a quoted-string, whose quotes and backslash escapes
    (quoted-pair, section 5.6.4) are removed, so a ``;`` inside quotes does not end it.
    Leniently, as browsers are (WHATWG MIME Sniffing, "parse a MIME type"): whitespace around
    ``=`` is allowed, an unterminated quoted-string runs to the end, a parameter without ``=``
    is skipped, and of a repeated parameter the first counts. The media type is not checked
    for the ``type/subtype`` form: a bad one simply matches no type we handle.
    """
    if not value:
        return ContentType()
    # ';' cannot occur in type/subtype (tokens): the first one ends the media type.
    media, _, rest = value.partition(";")
    parameters: dict[str, str] = {}
    position = 0
    while position < len(rest):
        match = _PARAMETER.match(rest, position)
        assert match is not None  # every part is optional, and each match takes a character
        position = match.end()
        name, quoted, token = match.groups()
        name = name.strip().lower()
        if quoted is not None:
            parameter = _QUOTED_PAIR.sub(r"\1", quoted)
        elif token is not None:
            parameter = token.strip()
        else:
            continue  # no "=": not a parameter
        if name:
            parameters.setdefault(name, parameter)
    return ContentType(media.strip().lower() or None, parameters)


class UnsupportedEncodingError(Exception):
    """The content coding is one we do not decode (e.g. ``br``)."""


def decoded_prefix(
    stream: IO[bytes], content_encoding: str | None, limit: int
) -> tuple[bytes, bool]:
    """Return up to ``limit`` decoded bytes and whether the decoded content went past it."""
    codings = [c.strip().lower() for c in (content_encoding or "").split(",") if c.strip()]
    codings = [c for c in codings if c != "identity"]
    if not codings:
        data = stream.read(limit + 1)
        return data[:limit], len(data) > limit
    if len(codings) > 1 or codings[0] not in ("gzip", "x-gzip", "deflate"):
        raise UnsupportedEncodingError(content_encoding or "")
    coding = codings[0]
    # 16+MAX_WBITS reads the gzip wrapper (RFC 1952); for "deflate" servers send either the
    # zlib wrapper RFC 9110 section 8.4.1.2 asks for or raw deflate, so we sniff.
    first = stream.read(READ_SIZE)
    if coding == "deflate":
        wbits = zlib.MAX_WBITS if first[:1] and (first[0] & 0x0F) == 8 else -zlib.MAX_WBITS
    else:
        wbits = 16 + zlib.MAX_WBITS
    inflater = zlib.decompressobj(wbits)
    out = bytearray()
    chunk = first
    try:
        while chunk:
            out += inflater.decompress(chunk, limit + 1 - len(out))
            while inflater.unconsumed_tail and len(out) <= limit:
                out += inflater.decompress(inflater.unconsumed_tail, limit + 1 - len(out))
            if len(out) > limit:
                del out[limit:]  # in place: a slice would copy up to ``limit`` bytes once more
                return bytes(out), True
            if inflater.eof:
                break
            chunk = stream.read(READ_SIZE)
    except zlib.error:
        pass  # a truncated or corrupt body still yields what decoded cleanly
    return bytes(out), False
