"""Undo a response's content coding for text extraction, never inflating past a cap.

Only what we parse (HTML, CSS) is decoded, and only up to ``limit`` bytes, so a gzip bomb
costs at most ``limit`` bytes of memory (the stored record keeps the coded bytes untouched).
"""

from __future__ import annotations

import zlib
from typing import IO

READ_SIZE = 64 * 1024


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
